package testtool

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	cairnOnce sync.Once
	cairnPath string
	cairnErr  error
)

// Cairn builds cmd/cairn once per test binary and returns its path, for
// tests that run it as a separate process (crashes, several nodes).
func Cairn(t testing.TB) string {
	t.Helper()
	cairnOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cairn-test-bin")
		if err != nil {
			cairnErr = err
			return
		}
		cairnPath = filepath.Join(dir, "cairn")
		if out, err := exec.Command("go", "build", "-o", cairnPath, "github.com/cairnstore/cairn/cmd/cairn").CombinedOutput(); err != nil {
			cairnErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if cairnErr != nil {
		t.Fatal(cairnErr)
	}
	return cairnPath
}
