package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
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
	listen, metrics := testtool.FreeAddr(t), testtool.FreeAddr(t)
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

// TestDockerfile checks the Dockerfile as far as this machine can
// without a container runtime: its final stage is distroless/static
// under an unprivileged numeric user; its builder's Go is go.mod's; the
// binary its build line makes is static (no ELF interpreter, no shared
// libraries); and its ENTRYPOINT and CMD, run with the volume moved to a
// temporary folder and the ports to free loopback ones, serve and stop
// cleanly on SIGTERM, leaving the store private.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(raw)
	ignore, err := os.ReadFile("../../.dockerignore")
	if err != nil || !strings.Contains(string(ignore), "\n/cairn-data/\n") {
		t.Errorf(".dockerignore must keep the default data folder out of images: %v", err)
	}
	stages := regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(df, -1)
	if len(stages) != 2 || stages[1][1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Fatalf("stages %v: want a builder and distroless/static", stages)
	}
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(gomod))
	if goVersion == nil || !strings.HasPrefix(stages[0][1], "golang:"+goVersion[1]+"-") {
		t.Errorf("builder %s, but go.mod says go %v", stages[0][1], goVersion)
	}
	if !regexp.MustCompile(`(?m)^USER 65532:65532$`).MatchString(df) {
		t.Error("the image does not run as the unprivileged user 65532")
	}

	// The build line, as the builder's shell runs it.
	build := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .* -o /out/cairn \./cmd/cairn)$`).FindStringSubmatch(df)
	if build == nil {
		t.Fatal("no RUN CGO_ENABLED=0 go build … -o /out/cairn ./cmd/cairn")
	}
	goCmd := testtool.Path(t, "go", "install Go from https://go.dev/dl")
	bin := filepath.Join(t.TempDir(), "cairn")
	cmd := exec.Command("sh", "-c", strings.Replace(build[1], "/out/cairn", bin, 1))
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(goCmd)+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (program header %v)", p.Type)
		}
	}
	f.Close()

	// Its command, for real.
	entry := regexp.MustCompile(`(?m)^ENTRYPOINT \["/cairn"\]$`).MatchString(df)
	cmdLine := regexp.MustCompile(`(?m)^CMD (\[.*\])$`).FindStringSubmatch(df)
	if !entry || cmdLine == nil {
		t.Fatal(`want ENTRYPOINT ["/cairn"] and a CMD`)
	}
	var cmdArgs []string
	if err := json.Unmarshal([]byte(cmdLine[1]), &cmdArgs); err != nil {
		t.Fatalf("CMD: %v", err)
	}
	state := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	listen, metrics := testtool.FreeAddr(t), testtool.FreeAddr(t)
	swap := strings.NewReplacer("/var/lib/cairn", state, "0.0.0.0:8080", listen, "0.0.0.0:9180", metrics)
	for i, a := range cmdArgs {
		cmdArgs[i] = swap.Replace(a)
	}
	srv := exec.Command(bin, cmdArgs...)
	srv.Dir = state
	var logs strings.Builder
	srv.Stderr = &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get("http://" + listen + "/livez")
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the image's command is not serving after 20 s: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res, err := http.Get("http://" + metrics + "/readyz"); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /readyz on the image's metrics port: %v", err)
	}
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v\n%s", err, logs.String())
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
