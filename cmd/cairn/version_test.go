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
// runs `cairn version`: the module version, and, built in a git checkout,
// the commit it was built from.
func TestVersion(t *testing.T) {
	bin := buildCairn(t)
	head, gitErr := exec.Command("git", "rev-parse", "HEAD").Output()
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("cairn version: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if !strings.HasPrefix(lines[0], "cairn ") || !strings.HasSuffix(lines[len(lines)-1], runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH) {
		t.Fatalf("cairn version printed %q", out)
	}
	if gitErr != nil {
		t.Logf("not a git checkout (%v): no commit to check", gitErr)
		return
	}
	if want := "commit " + strings.TrimSpace(string(head)); !strings.HasPrefix(lines[1], want) {
		t.Errorf("cairn version printed %q; want a line %q", out, want)
	}
	if strings.Contains(lines[0], "(devel)") {
		t.Errorf("built in a git checkout, the version is %q", lines[0])
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
