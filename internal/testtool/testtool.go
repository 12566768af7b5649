// Package testtool is what tests share: it finds the outside programs
// some tests run (b3sum, curl, promtool, …), and measures the heap a
// piece of a test takes (HeapGrowth). Where one is missing the test is skipped with a
// message naming it, so `go test ./...` passes on any machine; with
// CAIRN_REQUIRE_TOOLS=1 (set by .ci/run, which installs them all) a
// missing tool fails the test instead, so CI never skips one silently.
//
// Only tests import this package.
package testtool

import (
	"net/http"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
)

// RequireEnv is the environment variable that turns a missing tool from
// a skip into a failure.
const RequireEnv = "CAIRN_REQUIRE_TOOLS"

// Path returns the path of the named program, or ends the test: skipped
// normally, failed when RequireEnv is set. hint says how to install it.
func Path(t testing.TB, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("%s is required (%s=%s) but not found: %v; install it: %s", name, RequireEnv, os.Getenv(RequireEnv), err, hint)
	}
	t.Skipf("%s not found (%v); install it to run this test: %s", name, err, hint)
	return ""
}

// Root ends the test unless it runs as root (to mount file systems and
// use loop devices): skipped normally, failed when RequireEnv is set
// (CI runs as root).
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("this test needs root (%s) and %s is set", why, RequireEnv)
	}
	t.Skipf("needs root: %s", why)
}

// Alternate serves each request with the next of hs in turn: several
// nodes of one store behind a round-robin load balancer.
func Alternate(hs ...http.Handler) http.Handler {
	var n atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs[(n.Add(1)-1)%uint64(len(hs))].ServeHTTP(w, r)
	})
}

// TusJSClient returns the node_modules folder holding tus-js-client (from
// npm; .ci/run installs it into ~/.cache/cairn-tools/tus, or
// CAIRN_TUS_JS names another), or ends the test as Path does.
func TusJSClient(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CAIRN_TUS_JS")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = home + "/.cache/cairn-tools/tus/node_modules"
	}
	if _, err := os.Stat(dir + "/tus-js-client/package.json"); err != nil {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("tus-js-client is required (%s) but not in %s: npm install --prefix ~/.cache/cairn-tools/tus tus-js-client@4", RequireEnv, dir)
		}
		t.Skipf("tus-js-client not in %s: npm install --prefix ~/.cache/cairn-tools/tus tus-js-client@4 to run this test", dir)
	}
	return dir
}
