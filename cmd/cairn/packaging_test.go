package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/testtool"
)

// TestSystemdUnit checks packaging/cairn.service as systemd would: it
// verifies (systemd-analyze verify), its sandbox leaves little exposed
// (systemd-analyze security, at most 2.0 of 10), and its ExecStart, run
// with its paths moved to a temporary folder and its ports to free ones,
// serves and stops cleanly on the unit's KillSignal, leaving the store
// private.
func TestSystemdUnit(t *testing.T) {
	analyze := testtool.Path(t, "systemd-analyze", "apt-get install -y systemd")
	bin := buildCairn(t)
	raw, err := os.ReadFile("../../packaging/cairn.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.ReplaceAll(string(raw), "/usr/local/bin/cairn", bin)
	path := filepath.Join(t.TempDir(), "cairn.service")
	if err := os.WriteFile(path, []byte(unit), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	if out, err := exec.Command(analyze, "security", "--offline=true", "--threshold=20", path).CombinedOutput(); err != nil {
		t.Fatalf("systemd-analyze security: exposure over 2.0: %v\n%s", err, out)
	}
	for _, want := range []string{"User=cairn", "NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectoryMode=0700", "UMask=0077"} {
		if !strings.Contains(unit, "\n"+want+"\n") {
			t.Errorf("the unit does not set %s", want)
		}
	}

	// Its command, for real.
	m := regexp.MustCompile(`(?m)^ExecStart=(.*)$`).FindStringSubmatch(unit)
	if m == nil {
		t.Fatal("no ExecStart")
	}
	state := t.TempDir()
	listen, metrics := freeAddr(t), freeAddr(t)
	cmdline := strings.NewReplacer("/var/lib/cairn", state, "127.0.0.1:8080", listen, "127.0.0.1:9180", metrics).Replace(m[1])
	args := strings.Fields(cmdline)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = state
	logs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// It logs "serving" once both listeners are open.
	var out strings.Builder
	serving := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "msg=serving") {
				serving <- true
			}
		}
		close(serving)
	}()
	select {
	case ok := <-serving:
		if !ok {
			t.Fatalf("the unit's command ended before serving:\n%s", out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the unit's command is not serving after 20 s")
	}
	if res, err := http.Get("http://" + metrics + "/readyz"); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /readyz on the unit's metrics listener: %v", err)
	}
	if res, err := http.Get("http://" + listen + "/livez"); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /livez on the unit's listener: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
	for _, p := range []string{filepath.Join(state, "data"), filepath.Join(state, "secret.key")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v: open to others", p, fi.Mode().Perm())
		}
	}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr())
}
