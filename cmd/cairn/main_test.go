package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
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

// metricsOf maps a server's base URL (from startServe) to its /metrics URL.
var metricsOf sync.Map

func metricsURL(base string) string {
	u, _ := metricsOf.Load(base)
	return u.(string)
}

// startServe runs `cairn serve` on a free port and returns its base URL
// and a function that stops it (as SIGTERM would) and returns run's error.
// newStore makes an empty store in data with cairn init: the other admin
// commands make none.
func newStore(t *testing.T, data string) {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"init", "--data", data}, noEnv, &out, &out); err != nil || !strings.Contains(out.String(), "init: a store in "+data) {
		t.Fatalf("cairn init: %v, %q", err, out.String())
	}
}

// TestNoStoreMade: an admin command on a folder without a store says so
// and makes nothing there.
func TestNoStoreMade(t *testing.T) {
	data := filepath.Join(t.TempDir(), "nonexistent", "data")
	for _, args := range [][]string{{"check"}, {"user", "add", "alice"}, {"gc", "--dry-run"}, {"reindex"}} {
		var out bytes.Buffer
		err := run(context.Background(), append(args, "--data", data), noEnv, &out, &out)
		if !errors.Is(err, engine.ErrNoStore) {
			t.Errorf("cairn %v on no store: %v, %q", args, err, out.String())
		}
	}
	if _, err := os.Stat(filepath.Dir(data)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an admin command made %s: %v", filepath.Dir(data), err)
	}
}

func startServe(t *testing.T, args []string, getenv func(string) string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-level", "warn"}, args...), getenv, pw, io.Discard)
		pw.CloseWithError(err)
		done <- err
	}()
	br := bufio.NewReader(pr)
	line, err := br.ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("serve did not start: %v", err)
	}
	mline, err := br.ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("serve did not print its metrics address: %v", err)
	}
	go io.Copy(io.Discard, br)
	const prefix, mprefix = "cairn: serving ", "cairn: metrics at "
	if !strings.HasPrefix(line, prefix) || !strings.HasPrefix(mline, mprefix) {
		cancel()
		t.Fatalf("serve printed %q, %q, want lines starting %q, %q", line, mline, prefix, mprefix)
	}
	base := strings.TrimSuffix(strings.Fields(strings.TrimPrefix(line, prefix))[0], "/")
	metricsOf.Store(base, strings.TrimSpace(strings.TrimPrefix(mline, mprefix)))
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
	// Metrics are for operators, on their own listener, never on the APIs'.
	if code, _ := get(t, base+"/metrics"); code != 404 {
		t.Errorf("GET /metrics on the API listener = %d, want 404", code)
	}
	if code, body := get(t, metricsURL(base)); code != 200 || !strings.Contains(body, "cairn_store_dedup_bytes_total") {
		t.Errorf("GET %s = %d %.100q", metricsURL(base), code, body)
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

// TestUserCommands manages users on a stopped store and then, through the
// admin socket, on a running server, and uses the token against the API.
func TestUserCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	newStore(t, data)
	cairn := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append(args, "--data", data), noEnv, &out, io.Discard)
		return out.String(), err
	}
	if out, err := cairn("user", "add", "alice"); err != nil || !strings.Contains(out, "secret: ") {
		t.Fatalf("user add on a stopped store: %q, %v", out, err)
	}
	if _, err := cairn("user", "add", "alice"); err == nil {
		t.Fatal("adding alice twice succeeded")
	}
	if _, err := cairn("user", "add", "shorty", "--secret", "too-short"); err == nil {
		t.Fatal("a short secret was accepted")
	}
	base, stop := startServe(t, []string{"--data", data}, noEnv)
	// Now the store is locked by the server: commands go through it.
	if out, err := cairn("user", "grant", "alice", "277", "write"); err != nil || !strings.Contains(out, "277:WRITE") {
		t.Fatalf("user grant through the server: %q, %v", out, err)
	}
	if _, err := cairn("user", "grant", "nobody", "277", "READ"); err == nil {
		t.Fatal("granting to an unknown user succeeded")
	}
	tok, err := cairn("user", "token", "alice", "--ttl", "5m")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", base+"/protected/277/a.txt", strings.NewReader("hello"))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("upload with the minted token: %d", res.StatusCode)
	}
	if out, err := cairn("user", "rotate", "alice"); err != nil || !strings.Contains(out, "secret: ") {
		t.Fatalf("user rotate: %q, %v", out, err)
	}
	req, _ = http.NewRequest("GET", base+"/protected/277/a.txt", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
	if res, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("old token after rotate: %d, want 401", res.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	out, err := cairn("user", "list")
	if err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, "277:WRITE") {
		t.Fatalf("user list after the server stopped: %q, %v", out, err)
	}
	if _, err := cairn("user", "delete", "alice"); err != nil {
		t.Fatal(err)
	}
	if out, _ := cairn("user", "list"); strings.Contains(out, "alice") {
		t.Fatalf("alice listed after delete: %q", out)
	}
}

// TestGracefulShutdown stops the server while an upload is in flight: the
// upload finishes and is acknowledged, and it is there after a restart.
func TestGracefulShutdown(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	newStore(t, data)
	cairn := func(args ...string) string {
		var out bytes.Buffer
		if err := run(context.Background(), append(args, "--data", data), noEnv, &out, io.Discard); err != nil {
			t.Fatalf("cairn %q: %v", args, err)
		}
		return strings.TrimSpace(out.String())
	}
	cairn("user", "add", "w")
	cairn("user", "grant", "w", "1", "WRITE")
	tok := cairn("user", "token", "w")
	base, stop := startServe(t, []string{"--data", data}, noEnv)

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", base+"/public/1/inflight", pr)
	req.Header.Set("Authorization", "Bearer "+tok)
	done := make(chan int, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("in-flight upload: %v", err)
			done <- 0
			return
		}
		res.Body.Close()
		done <- res.StatusCode
	}()
	part := bytes.Repeat([]byte("x"), 1<<20)
	pw.Write(part)
	// The server is handling it once /metrics counts two requests in
	// flight: the upload and the scrape.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(10 * time.Second); ; <-tick.C {
		if _, body := get(t, metricsURL(base)); strings.Contains(body, "\ncairn_http_requests_in_flight 2\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the upload never reached the server")
		}
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	for range 3 {
		pw.Write(part)
	}
	pw.Close()
	if code := <-done; code != 201 {
		t.Fatalf("in-flight upload during shutdown: %d, want 201", code)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("serve: %v", err)
	}
	base, _ = startServe(t, []string{"--data", data}, noEnv)
	res, err := http.Get(base + "/public/1/inflight")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || n != 4<<20 {
		t.Fatalf("after restart: %d, %d bytes", res.StatusCode, n)
	}
}

// TestServeDefaults runs `cairn serve` as the README does: no flags, data
// in ./cairn-data relative to the working directory.
func TestServeDefaults(t *testing.T) {
	t.Chdir(t.TempDir())
	base, stop := startServe(t, nil, noEnv)
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("GET /readyz = %d %q", code, body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"check"}, noEnv, &out, io.Discard); err != nil {
		t.Fatalf("check in ./cairn-data: %v", err)
	}
}

// TestGCAndScrubCommands deletes data through the API, then runs
// `cairn gc` and `cairn scrub` through the running server's admin socket
// and on the stopped store; scrub exits non-zero naming a damaged record.
func TestGCAndScrubCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	newStore(t, data)
	cairn := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append(args, "--data", data), noEnv, &out, io.Discard)
		return out.String(), err
	}
	cairn("user", "add", "w")
	cairn("user", "grant", "w", "1", "WRITE")
	tok, _ := cairn("user", "token", "w")
	base, stop := startServe(t, []string{"--data", data, "--gc-interval", "0", "--scrub-interval", "0"}, noEnv)
	put := func(name string, body []byte) {
		req, _ := http.NewRequest("POST", base+"/public/1/"+name, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	del := func(name string) {
		req, _ := http.NewRequest("DELETE", base+"/public/1/"+name, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	// Enough to seal segments is too much for a unit test at 1 GiB, so the
	// commands are checked for what they report, not for compaction.
	kept := make([]byte, 40000) // incompressible and over the 16 KiB kept inline: stored raw in a segment, findable on disk
	rand.NewChaCha8([32]byte{1}).Read(kept)
	put("kept", kept)
	put("gone", bytes.Repeat([]byte("gone "), 1000))
	del("gone")
	if out, err := cairn("gc", "--dry-run"); err != nil || !strings.Contains(out, "reclaimable: ") {
		t.Fatalf("gc --dry-run through the server: %q, %v", out, err)
	}
	if out, err := cairn("gc"); err != nil || !strings.Contains(out, "compacted: ") {
		t.Fatalf("gc through the server: %q, %v", out, err)
	}
	if out, err := cairn("scrub", "--sample", "50%"); err != nil || !strings.Contains(out, "scrub: ") {
		t.Fatalf("scrub through the server: %q, %v", out, err)
	}
	if _, body := get(t, metricsURL(base)); !strings.Contains(body, "cairn_store_gc_runs_total 1") || !strings.Contains(body, "cairn_store_scrub_runs_total 1") {
		t.Errorf("metrics do not show the gc and scrub runs")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Damage the kept file's bytes on disk: scrub names it and fails.
	segs, _ := filepath.Glob(filepath.Join(data, "segments", "*.seg"))
	for _, p := range segs {
		b, _ := os.ReadFile(p)
		if i := bytes.Index(b, kept[:64]); i >= 0 {
			b[i+10] ^= 0xff
			os.WriteFile(p, b, 0o600)
		}
	}
	out, err := cairn("scrub")
	if err == nil || exitCode(err) != 1 || !strings.Contains(out, `damaged: namespace="cloudstorage" tenant="public/1" name="kept"`) {
		t.Fatalf("scrub of a damaged store: %q, %v", out, err)
	}
	if _, err := cairn("scrub", "--sample", "0%"); err == nil {
		t.Error("scrub --sample 0% accepted")
	}
}
