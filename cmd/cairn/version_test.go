package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/testtool"
)

// buildCairn builds the binary as the README's install section does,
// stamped with the commit when built in a git checkout, and returns its
// path.
func buildCairn(t *testing.T) string {
	t.Helper()
	goCmd := testtool.Path(t, "go", "install Go from https://go.dev/dl")
	bin := filepath.Join(t.TempDir(), "cairn")
	args := []string{"build", "-o", bin}
	if exec.Command("git", "rev-parse", "HEAD").Run() == nil {
		args = append(args, "-buildvcs=true") // whatever GOFLAGS says
	}
	if out, err := exec.Command(goCmd, append(args, ".")...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestVersion builds the binary as the README's install section does and
// runs `cairn version`: the module version, and the commit and commit
// time exactly as the Go toolchain recorded them in the binary (`go
// version -m`), which, built in a git checkout, is the checkout's HEAD.
func TestVersion(t *testing.T) {
	bin := buildCairn(t)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("cairn version: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if !strings.HasPrefix(lines[0], "cairn ") || !strings.HasSuffix(lines[len(lines)-1], runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH) {
		t.Fatalf("cairn version printed %q", out)
	}
	meta, err := exec.Command(testtool.Path(t, "go", "install Go"), "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]string{}
	for _, l := range strings.Split(string(meta), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "build" {
			k, v, _ := strings.Cut(f[1], "=")
			recorded[k] = v
		}
	}
	rev, ok := recorded["vcs.revision"]
	if !ok {
		// Not a checkout the toolchain reads (an export, a git worktree).
		t.Logf("no commit recorded in the binary: cairn version prints none: %q", out)
		if strings.Contains(string(out), "commit ") {
			t.Errorf("cairn version printed a commit the binary does not record: %q", out)
		}
		return
	}
	if want := "commit " + rev; !strings.HasPrefix(lines[1], want) {
		t.Errorf("cairn version printed %q; want a line %q", out, want)
	}
	if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil && strings.TrimSpace(string(head)) != rev {
		t.Errorf("the binary records commit %s, the checkout is at %s", rev, head)
	}
	if want := "committed " + recorded["vcs.time"]; !strings.Contains(string(out), want) {
		t.Errorf("cairn version printed %q; want a line %q", out, want)
	}
}

// TestStoreInUse: a command that opens a store another process serves
// says so and names that process, rather than what the index's lock
// said ("resource temporarily unavailable").
func TestStoreInUse(t *testing.T) {
	bin := buildCairn(t)
	data := filepath.Join(t.TempDir(), "data")
	_, stop := startServe(t, []string{"--data", data}, noEnv)
	defer stop()
	out, err := exec.Command(bin, "check", "--data", data).CombinedOutput()
	want := fmt.Sprintf("store in use: %s is open in another process (pid %d, ", data, os.Getpid())
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("cairn check on a served store: %v, %q; want %q", err, out, want)
	}
}
