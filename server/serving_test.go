package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/testtool"
	"github.com/cairnstore/cairn/server"
	"github.com/cairnstore/cairn/server/cloudstorage"
	"github.com/cairnstore/cairn/server/internal/auth"
)

// start serves e and returns the URL and a WRITE token on bucket 1.
func start(t *testing.T, cfg server.Config) (string, string) {
	t.Helper()
	_, url, tok := startServer(t, cfg)
	return url, tok
}

// startServer is start that also returns the Server.
func startServer(t *testing.T, cfg server.Config) (*server.Server, string, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = enginetest.Logger(t)
	}
	srv := server.New(cfg)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	users := cloudstorage.NewUsers(cfg.Engine)
	usr, err := users.Get("w")
	if err != nil {
		if usr, err = users.Add(context.Background(), "w", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := users.Grant(context.Background(), "w", "1", cloudstorage.Write); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := auth.SignHS256("w", []byte(usr.Secret), time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return srv, ts.URL, tok
}

func request(t *testing.T, method, url, tok string, body io.Reader, hdr ...string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res, b, err
}

func mustStatus(t *testing.T, want int, method, url, tok string, body []byte, hdr ...string) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	res, b, err := request(t, method, url, tok, rd, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	if res.StatusCode != want {
		t.Fatalf("%s %s = %d %s, want %d", method, url, res.StatusCode, b, want)
	}
	return b
}

func random(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed)}).Read(b)
	return b
}

// flip changes one byte of the segment files where needle is found.
func flip(t *testing.T, dir string, needle []byte) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "segments", "*.seg"))
	for _, p := range segs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, needle); i >= 0 {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte{b[i] ^ 0x40}, int64(i)); err != nil {
				t.Fatal(err)
			}
			f.Close()
			return
		}
	}
	t.Fatal("content not found in any segment")
}

// TestCorruptDownloads: a corrupt chunk found before the response starts
// is a 500; found mid-stream it aborts the connection. Never wrong bytes.
func TestCorruptDownloads(t *testing.T) {
	dir := t.TempDir()
	e, err := engine.Open(dir, engine.Options{Logger: enginetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	url, tok := start(t, server.Config{Engine: e})
	small, large := random(1, 40<<10), random(2, 8<<20) // small: over the 16 KiB kept in the index, in a segment
	mustStatus(t, 201, "POST", url+"/public/1/small", tok, small)
	mustStatus(t, 201, "POST", url+"/public/1/large", tok, large)
	flip(t, dir, small[5000:5064])
	flip(t, dir, large[len(large)-4096:len(large)-4000])

	res, body, err := request(t, "GET", url+"/public/1/small", "", nil)
	if err != nil || res.StatusCode != 500 || !strings.Contains(string(body), `"error":"internal"`) || res.Header.Get("ETag") != "" {
		t.Fatalf("GET corrupt small file: %v %v %s %q", err, res.StatusCode, body, res.Header.Get("ETag"))
	}
	res, body, err = request(t, "GET", url+"/public/1/large", "", nil)
	if err == nil {
		t.Fatalf("GET of a file corrupt at its end: %d, %d bytes, no error; want an aborted transfer", res.StatusCode, len(body))
	}
	if !bytes.Equal(body, large[:len(body)]) {
		t.Fatal("the aborted transfer sent wrong bytes")
	}
	// The intact part is still served.
	if _, body, err = request(t, "GET", url+"/public/1/large", "", nil, "Range", "bytes=0-99999"); err != nil || !bytes.Equal(body, large[:100000]) {
		t.Fatalf("range over intact chunks: %v", err)
	}
}

// TestDiskFull: below the free-space reserve uploads answer 507 and store
// nothing, while reads and deletes go on.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	e := enginetest.OpenDir(t, dir, engine.Options{})
	url, tok := start(t, server.Config{Engine: e})
	mustStatus(t, 201, "POST", url+"/public/1/a", tok, []byte("kept"))
	mustStatus(t, 201, "POST", url+"/public/1/b", tok, []byte("deleted later"))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	full := enginetest.OpenDir(t, dir, engine.Options{MinFreeBytes: 1 << 62})
	url, tok = start(t, server.Config{Engine: full})
	body := mustStatus(t, 507, "POST", url+"/public/1/c", tok, random(3, 100<<10))
	if !strings.Contains(string(body), "insufficient_storage") {
		t.Errorf("507 body %s", body)
	}
	mustStatus(t, 507, "POST", url+"/public/1/a", tok, []byte("overwrite"))
	mustStatus(t, 404, "GET", url+"/public/1/c", "", nil)
	if got := mustStatus(t, 200, "GET", url+"/public/1/a", "", nil); string(got) != "kept" {
		t.Errorf("GET a = %q", got)
	}
	mustStatus(t, 204, "DELETE", url+"/public/1/b", tok, nil)
	mustStatus(t, 503, "GET", url+"/readyz", "", nil)
	mustStatus(t, 200, "GET", url+"/livez", "", nil)
}

// TestSlowUploads: an upload that keeps sending outlives the idle
// timeout; one that stops is cut off and stores nothing.
func TestSlowUploads(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	const idle = 400 * time.Millisecond
	url, tok := start(t, server.Config{Engine: e, BodyIdleTimeout: idle})
	addr := strings.TrimPrefix(url, "http://")

	send := func(path string, pieces int, gap time.Duration, stallAfter int) (string, error) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", path, tok, pieces*10)
		tick := time.NewTicker(gap)
		defer tick.Stop()
		for i := range pieces {
			if i == stallAfter {
				break
			}
			<-tick.C
			if _, err := conn.Write([]byte("0123456789")); err != nil {
				return "", err
			}
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(conn).ReadString('\n')
		return line, err
	}
	// 8 pieces 150 ms apart: 1.2 s in all, three idle timeouts.
	line, err := send("/public/1/slow", 8, 150*time.Millisecond, -1)
	if err != nil || !strings.Contains(line, "201") {
		t.Fatalf("slow but live upload: %q, %v; want 201", line, err)
	}
	start := time.Now()
	line, err = send("/public/1/stalled", 8, 50*time.Millisecond, 2)
	if err == nil && strings.Contains(line, "201") {
		t.Fatalf("stalled upload answered %q", line)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stalled upload cut off after %v, idle timeout %v (%q, %v)", d, idle, line, err)
	}
	mustStatus(t, 404, "GET", url+"/public/1/stalled", "", nil)
	if got := mustStatus(t, 200, "GET", url+"/public/1/slow", "", nil); len(got) != 80 {
		t.Errorf("slow upload stored %d bytes", len(got))
	}
}

// TestMetrics scrapes /metrics after some traffic and, where promtool is
// installed, checks the exposition with `promtool check metrics`.
func TestMetrics(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	reg := prometheus.NewRegistry()
	srv, url, tok := startServer(t, server.Config{Engine: e, Registry: reg, Version: "v-test"})
	ops := httptest.NewServer(srv.MetricsHandler())
	t.Cleanup(ops.Close)
	data := random(4, 2<<20)
	mustStatus(t, 201, "POST", url+"/public/1/a", tok, data)
	mustStatus(t, 201, "POST", url+"/public/1/b", tok, data)
	mustStatus(t, 200, "GET", url+"/public/1/a", "", nil)
	mustStatus(t, 404, "GET", url+"/public/1/zzz", "", nil)
	mustStatus(t, 404, "GET", url+"/nowhere", "", nil)
	// The metrics tell what was deduplicated: an API client must not
	// read them (a dedup oracle across tenants).
	mustStatus(t, 404, "GET", url+"/metrics", "", nil)
	before := time.Now()
	if _, err := e.GC(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Scrub(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	res, body, err := request(t, "GET", ops.URL+"/metrics", "", nil, "X-Request-Id", "my-id.1")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /metrics: %v", err)
	}
	if res.Header.Get("X-Request-Id") != "my-id.1" {
		t.Errorf("X-Request-Id %q, want the client's", res.Header.Get("X-Request-Id"))
	}
	text := string(body)
	for _, want := range []string{
		`cairn_http_requests_total{api="cloudstorage",code="201",method="POST",route="/public/:bucket/*path"} 2`,
		`cairn_http_requests_total{api="cloudstorage",code="404",method="GET",route="/public/:bucket/*path"} 1`,
		`cairn_http_requests_total{api="none",code="404",method="",route="unmatched"} 2`,
		`cairn_http_request_duration_seconds_bucket{api="cloudstorage",method="GET",route="/public/:bucket/*path",le="+Inf"} 2`,
		`cairn_store_read_only 0`,
		`cairn_store_fsync_duration_seconds_count`,
		`cairn_build_info{goversion="`,
		`version="v-test"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for name, want := range map[string]float64{
		`cairn_http_request_body_bytes_total{api="cloudstorage",route="/public/:bucket/*path"}`: float64(2 * len(data)),
		`cairn_store_records`:       3, // two files and the user
		`cairn_store_logical_bytes`: float64(2 * len(data)),
		`cairn_store_blob_bytes`:    float64(len(data)),
	} {
		if got, ok := sample(text, name); !ok || got != want {
			t.Errorf("%s = %v (found %v), want %v", name, got, ok, want)
		}
	}
	for _, name := range []string{"cairn_store_gc_last_run_timestamp_seconds", "cairn_store_scrub_last_run_timestamp_seconds"} {
		if got, ok := sample(text, name); !ok || got < float64(before.Unix()) || got > float64(time.Now().Unix()+1) {
			t.Errorf("%s = %v (found %v), want the time of the run just made", name, got, ok)
		}
	}
	free, _ := sample(text, "cairn_store_filesystem_free_bytes")
	if size, _ := sample(text, "cairn_store_filesystem_size_bytes"); free <= 0 || size < free {
		t.Errorf("filesystem free %v of %v bytes", free, size)
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", text)
	}
	promtool := testtool.Path(t, "promtool", "apt-get install -y prometheus")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// sample finds the value of the series name (with its labels) in a
// text exposition.
func sample(text, name string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// TestCacheControl: downloads anyone may read may be kept by shared
// caches, which revalidate them (public, no-cache); everything else,
// and every error, is for its client alone (private, no-store).
func TestCacheControl(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	url, tok := start(t, server.Config{Engine: e})
	mustStatus(t, 201, "POST", url+"/public/1/a.txt", tok, []byte("public"))
	mustStatus(t, 201, "POST", url+"/protected/1/b.txt", tok, []byte("protected"))
	for _, tc := range []struct {
		method, path, tok string
		code              int
		want              string
	}{
		{"GET", "/public/1/a.txt", "", 200, "public, no-cache"},
		{"HEAD", "/public/1/a.txt", "", 200, "public, no-cache"},
		{"GET", "/protected/1/b.txt", tok, 200, "private, no-store"},
		{"GET", "/protected/1/b.txt", "", 401, "private, no-store"},
		{"GET", "/public/1/missing", "", 404, "private, no-store"},
		{"GET", "/public/1", tok, 200, "private, no-store"},
		{"GET", "/livez", "", 200, "private, no-store"},
	} {
		res, _, err := request(t, tc.method, url+tc.path, tc.tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != tc.code || res.Header.Get("Cache-Control") != tc.want {
			t.Errorf("%s %s: %d, Cache-Control %q; want %d, %q", tc.method, tc.path, res.StatusCode, res.Header.Get("Cache-Control"), tc.code, tc.want)
		}
	}

	// With a max age, public media may be kept that long; the rest as
	// before.
	url, tok = start(t, server.Config{Engine: e, PublicMaxAge: time.Hour})
	for path, want := range map[string]string{"/public/1/a.txt": "public, max-age=3600", "/protected/1/b.txt": "private, no-store"} {
		res, _, err := request(t, "GET", url+path, tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != 200 || res.Header.Get("Cache-Control") != want {
			t.Errorf("GET %s with a max age: %d, Cache-Control %q; want %q", path, res.StatusCode, res.Header.Get("Cache-Control"), want)
		}
	}
}

// TestCORS: with allowed origins, a preflight from one of them gets the
// route's methods and the headers it asked for, and every answer to it
// (errors too) says it may read it and which headers; another origin gets
// none of that and its preflight 403; without origins configured,
// nothing changes. Preflights are counted like any request.
func TestCORS(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	reg := prometheus.NewRegistry()
	srv, url, tok := startServer(t, server.Config{Engine: e, Registry: reg, CORSOrigins: []string{"https://app.example"}})
	mustStatus(t, 201, "POST", url+"/public/1/a.txt", tok, []byte("cross-origin"))
	const app, evil = "https://app.example", "https://evil.example"

	res, _, err := request(t, "OPTIONS", url+"/public/1/a.txt", "", nil, "Origin", app, "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization, range")
	if err != nil || res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != app ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "GET") || res.Header.Get("Access-Control-Allow-Headers") != "authorization, range" {
		t.Fatalf("preflight from an allowed origin: %v %d %v", err, res.StatusCode, res.Header)
	}
	if res, _, err := request(t, "OPTIONS", url+"/public/1/a.txt", "", nil, "Origin", evil, "Access-Control-Request-Method", "GET"); err != nil || res.StatusCode != 403 || res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %v %d %v", err, res.StatusCode, res.Header)
	}
	if res, _, err := request(t, "OPTIONS", url+"/public/1/a.txt", "", nil, "Origin", app, "Access-Control-Request-Method", "PATCH"); err != nil || res.StatusCode != 403 {
		t.Fatalf("preflight for a method the route lacks: %v %d", err, res.StatusCode)
	}
	for _, tc := range []struct {
		origin string
		path   string
		code   int
		allow  string
	}{
		{app, "/public/1/a.txt", 200, app},
		{app, "/public/1/missing", 404, app},
		{evil, "/public/1/a.txt", 200, ""},
		{"", "/public/1/a.txt", 200, ""},
	} {
		var hdr []string
		if tc.origin != "" {
			hdr = []string{"Origin", tc.origin}
		}
		res, _, err := request(t, "GET", url+tc.path, "", nil, hdr...)
		if err != nil || res.StatusCode != tc.code || res.Header.Get("Access-Control-Allow-Origin") != tc.allow {
			t.Errorf("GET %s from %q: %v %d, Allow-Origin %q; want %d, %q", tc.path, tc.origin, err, res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), tc.code, tc.allow)
		}
		if tc.allow != "" && !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "ETag") {
			t.Errorf("GET %s from %q: exposes %q", tc.path, tc.origin, res.Header.Get("Access-Control-Expose-Headers"))
		}
	}
	ops := httptest.NewServer(srv.MetricsHandler())
	defer ops.Close()
	_, body, err := request(t, "GET", ops.URL+"/metrics", "", nil)
	if err != nil || !strings.Contains(string(body), `cairn_http_requests_total{api="server",code="204",method="OPTIONS",route="preflight"} 1`) {
		t.Errorf("preflights not counted: %v", err)
	}

	// No origins configured: no CORS headers at all.
	url, _ = start(t, server.Config{Engine: e})
	if res, _, err := request(t, "GET", url+"/public/1/a.txt", "", nil, "Origin", app); err != nil || res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("without origins configured: %v %v", err, res.Header)
	}
}
