package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to write from the server goroutine
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func noEnv(string) string { return "" }

// startServe runs `cairn serve` on a free port and returns its base URL
// and a function that stops it (as SIGTERM would) and returns run's error.
func startServe(t *testing.T, args []string, getenv func(string) string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0", "--log-level", "warn"}, args...), getenv, pw, io.Discard)
		pw.CloseWithError(err)
		done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("serve did not start: %v", err)
	}
	go io.Copy(io.Discard, pr)
	const prefix = "cairn: serving "
	if !strings.HasPrefix(line, prefix) {
		cancel()
		t.Fatalf("serve printed %q, want a line starting %q", line, prefix)
	}
	base := strings.TrimSuffix(strings.Fields(strings.TrimPrefix(line, prefix))[0], "/")
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = errors.New("serve did not stop within 30s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { stop() })
	return base, stop
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServeLifecycle(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	base, stop := startServe(t, []string{"--data", data}, noEnv)
	for _, p := range []string{"/livez", "/readyz"} {
		if code, body := get(t, base+p); code != 200 {
			t.Errorf("GET %s = %d %q, want 200", p, code, body)
		}
	}
	if code, _ := get(t, base+"/nope"); code != 404 {
		t.Errorf("GET /nope = %d, want 404", code)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve returned %v after shutdown, want nil", err)
	}
	// The store was closed cleanly: check and reindex open it and pass.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"check", "--data", data}, noEnv, &out, io.Discard); err != nil {
		t.Fatalf("check: %v", err)
	}
	if err := run(context.Background(), []string{"reindex", "--data", data}, noEnv, &out, io.Discard); err != nil {
		t.Fatalf("reindex: %v", err)
	}
	if !strings.Contains(out.String(), "check: ok") || !strings.Contains(out.String(), "reindex: 1 segments") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestEnvironment(t *testing.T) {
	data := filepath.Join(t.TempDir(), "from-env")
	env := map[string]string{"CAIRN_DATA": data, "CAIRN_LISTEN": "256.0.0.1:1"}
	getenv := func(k string) string { return env[k] }
	// The command line wins over the environment: --listen is given, so
	// the bad CAIRN_LISTEN is not used, and CAIRN_DATA is.
	_, stop := startServe(t, nil, getenv)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"check"}, getenv, &out, io.Discard); err != nil {
		t.Fatalf("check with CAIRN_DATA=%s: %v", data, err)
	}

	env["CAIRN_SHUTDOWN_TIMEOUT"] = "soon"
	err := run(context.Background(), []string{"serve"}, getenv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "CAIRN_SHUTDOWN_TIMEOUT") {
		t.Errorf("serve with a bad CAIRN_SHUTDOWN_TIMEOUT: %v, want an error naming it", err)
	}
}

func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
		err  bool
	}{
		{[]string{"help"}, "serve", false},
		{[]string{"help", "serve"}, "CAIRN_LISTEN", false},
		{[]string{"help", "check"}, "CAIRN_DATA", false},
		{[]string{"help", "nope"}, "", true},
		{[]string{"nope"}, "", true},
		{nil, "", true},
		{[]string{"serve", "extra"}, "", true},
		{[]string{"check", "--bogus"}, "", true},
	} {
		t.Run(strings.Join(tc.args, "_"), func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), tc.args, noEnv, &out, io.Discard)
			if (err != nil) != tc.err {
				t.Fatalf("run(%q) = %v, want error %v", tc.args, err, tc.err)
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("run(%q) printed %q, want it to mention %q", tc.args, out.String(), tc.want)
			}
			if err != nil && exitCode(err) == 0 {
				t.Errorf("exit code 0 for error %v", err)
			}
		})
	}
	if exitCode(flag.ErrHelp) != 2 {
		t.Errorf("exitCode(ErrHelp) = %d, want 2", exitCode(flag.ErrHelp))
	}
}
