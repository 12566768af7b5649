package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/server"
	"github.com/cairnstore/cairn/server/mediaservice"
	"github.com/cairnstore/cairn/server/mediaupload"
	"github.com/cairnstore/cairn/server/oceanmedia"
	"github.com/cairnstore/cairn/server/storageapi"
)

// dialFrom connects to addr from the loopback address from ("127.0.0.7"),
// so that the server sees several clients.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, from, err)
	}
	return c
}

// inflight is how many requests srv is serving, read from its metrics.
func inflight(t *testing.T, srv *server.Server) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	v, ok := sample(rec.Body.String(), "cairn_http_requests_in_flight")
	if !ok {
		t.Fatal("no cairn_http_requests_in_flight")
	}
	return v - 1 // this scrape
}

// waitFor checks cond every 20 ms until it holds or d has passed, and
// reports whether it held.
func waitFor(d time.Duration, cond func() bool) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(d)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			return cond()
		}
	}
	return true
}

// statusLine reads a response's status line from c, waiting at most d.
func statusLine(c net.Conn, d time.Duration) (string, error) {
	c.SetReadDeadline(time.Now().Add(d))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// trickle starts an anonymous multipart upload to /storage/public/files
// on c that announces a large file and then sends a byte every gap, until
// the server answers or stop is closed; it returns the status line.
func trickle(c net.Conn, gap time.Duration, stop <-chan struct{}) string {
	defer c.Close()
	const boundary = "b0undary"
	fmt.Fprintf(c, "POST /storage/public/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n\r\n", boundary, 10<<20)
	fmt.Fprintf(c, "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n", boundary)
	answer := make(chan string, 1)
	go func() {
		line, _ := statusLine(c, time.Minute)
		answer <- line
	}()
	tick := time.NewTicker(gap)
	defer tick.Stop()
	for {
		select {
		case line := <-answer:
			return line
		case <-stop:
			return ""
		case <-tick.C:
			c.Write([]byte{'x'})
		}
	}
}

// TestUploadShares: anonymous clients trickling uploads from a few
// addresses take no more than the anonymous share of the upload slots,
// never those of clients who signed in, whose uploads go through at once
// in every API; a trickle is cut off (408) once it is under the minimum
// rate, and an upload that finds no slot is refused after a bounded wait
// with Retry-After, never held indefinitely.
func TestUploadShares(t *testing.T) {
	e := enginetest.Open(t, engine.Options{MaxUploads: 6, UploadWait: 2 * time.Second})
	srv, url, tok := startServer(t, server.Config{
		Engine: e, MaxAnonymousUploads: 3, MaxUploadsPerAddress: 2, SlotWait: time.Second,
		BodyMinRate: 1024, BodyRateWindow: 2 * time.Second,
	})
	addr := strings.TrimPrefix(url, "http://")
	pw, err := mediaupload.NewAccounts(e).Set(context.Background(), "shop", "", true)
	if err != nil {
		t.Fatal(err)
	}

	// 4 addresses × 3 connections: twice the engine's slots.
	stop := make(chan struct{})
	defer close(stop)
	answers := make(chan string, 12)
	for i := range 12 {
		c := dialFrom(t, fmt.Sprintf("127.0.0.%d", 2+i%4), addr)
		go func() { answers <- trickle(c, 300*time.Millisecond, stop) }()
	}
	if !waitFor(5*time.Second, func() bool { return inflight(t, srv) >= 12 }) {
		t.Fatalf("only %v of 12 trickling uploads in flight", inflight(t, srv))
	}

	// Signed-in uploads do not wait for the trickles.
	client := &http.Client{Timeout: 3 * time.Second}
	for _, up := range []struct {
		what string
		req  func() *http.Request
	}{
		{"cloud storage", func() *http.Request {
			r, _ := http.NewRequest("POST", url+"/public/1/signed-in", bytes.NewReader(random(1, 300<<10)))
			r.Header.Set("Authorization", "Bearer "+tok)
			return r
		}},
		{"media upload", func() *http.Request {
			body := fmt.Sprintf(`{"content":"%s"}`, base64.StdEncoding.EncodeToString(random(2, 300<<10)))
			r, _ := http.NewRequest("POST", url+"/cms/v2/content", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			r.SetBasicAuth("shop", pw)
			return r
		}},
	} {
		start := time.Now()
		res, err := client.Do(up.req())
		if err != nil {
			t.Fatalf("%s upload while anonymous uploads trickle: %v (after %v)", up.what, err, time.Since(start))
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 201 {
			t.Fatalf("%s upload while anonymous uploads trickle: %d", up.what, res.StatusCode)
		}
	}

	// Every trickle ends soon: cut off for its rate (408) or refused a
	// slot (429 for its address's share, 503 for the anonymous one).
	deadline := time.After(15 * time.Second)
	got := map[string]int{}
	for range 12 {
		select {
		case line := <-answers:
			got[line]++
		case <-deadline:
			t.Fatalf("trickling uploads still held after 15 s; answers so far: %v", got)
		}
	}
	for line := range got {
		if !strings.Contains(line, " 408 ") && !strings.Contains(line, " 429 ") && !strings.Contains(line, " 503 ") {
			t.Errorf("a trickling upload was answered %q", line)
		}
	}
	if got["HTTP/1.1 408 Request Timeout"] == 0 {
		t.Errorf("no trickle cut off for its rate: %v", got)
	}
	t.Logf("trickles: %v", got)

	// A refusal says when to come back.
	var wg sync.WaitGroup
	for i := range 3 {
		c := dialFrom(t, fmt.Sprintf("127.0.0.%d", 9+i%2), addr)
		wg.Go(func() { trickle(c, 100*time.Millisecond, stop) })
	}
	if !waitFor(5*time.Second, func() bool { return inflight(t, srv) >= 3 }) {
		t.Fatalf("only %v of 3 trickling uploads in flight", inflight(t, srv))
	}
	res, _, err := request(t, "POST", url+"/storage/public/files", "", strings.NewReader("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n\r\nabc\r\n--b--\r\n"), "Content-Type", "multipart/form-data; boundary=b")
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" {
		t.Errorf("an anonymous upload with the anonymous share taken: %d, Retry-After %q; want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
}

// TestDeclaredTooLarge: a request that declares a body over its route's
// limit is answered 413 (400 where its API documents no 413) from its headers, at once, even if the body never
// comes (and without a 100 Continue), and its connection is closed.
func TestDeclaredTooLarge(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	url, tok := start(t, server.Config{Engine: e, MediaUpload: mediaupload.Config{MaxContent: 1 << 20}})
	addr := strings.TrimPrefix(url, "http://")
	pw, err := mediaupload.NewAccounts(e).Set(context.Background(), "shop", "", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := oceanmedia.NewUsers(e).Add(context.Background(), "editor", "a-long-password", oceanmedia.ReadWrite); err != nil {
		t.Fatal(err)
	}
	basic := base64.StdEncoding.EncodeToString([]byte("shop:" + pw))
	for _, tc := range []struct {
		what, head string
		want       string
	}{
		{"a 6 GB cloud storage upload", "POST /public/1/big HTTP/1.1\r\nAuthorization: Bearer " + tok + "\r\nContent-Length: 6000000000", "413"},
		{"the same, expecting 100-continue", "POST /public/1/big HTTP/1.1\r\nAuthorization: Bearer " + tok + "\r\nExpect: 100-continue\r\nContent-Length: 6000000000", "413"},
		{"an anonymous Storage API upload", "POST /storage/public/files HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 6000000000", "413"},
		{"a 1 TB media upload (a failed validation, as its document has no 413)", "POST /cms/v2/content HTTP/1.1\r\nAuthorization: Basic " + basic + "\r\nContent-Type: application/json\r\nContent-Length: 1000000000000", "400"},
		{"a login over the 64 KiB JSON limit", "POST /storage/auth/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 1000000", "413"},
		{"a health check with a body", "GET /livez HTTP/1.1\r\nContent-Length: 1000000", "200"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			c := dialFrom(t, "127.0.0.1", addr)
			defer c.Close()
			fmt.Fprintf(c, "%s\r\nHost: x\r\n\r\n", tc.head)
			start := time.Now()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer after %v: %v", time.Since(start), err)
			}
			if !strings.HasPrefix(res.Status, tc.want) {
				t.Errorf("answered %s, want %s", res.Status, tc.want)
			}
			io.Copy(io.Discard, res.Body)
			if !res.Close {
				t.Errorf("the connection is kept open for a body the server will not read")
			}
		})
	}
}

// slowRead starts a GET of path on c and reads its response n bytes
// every gap until the server ends it or stop is closed.
func slowRead(c net.Conn, path string, n int, gap time.Duration, stop <-chan struct{}, started *atomic.Int64) {
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	// The status line, a byte at a time: once it came, the server holds
	// the download's slot.
	c.SetReadDeadline(time.Now().Add(time.Minute))
	for b := make([]byte, 1); ; {
		if _, err := c.Read(b); err != nil {
			return
		}
		if b[0] == '\n' {
			break
		}
	}
	started.Add(1)
	buf := make([]byte, n)
	tick := time.NewTicker(gap)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			c.SetReadDeadline(time.Now().Add(gap))
			if _, err := io.ReadFull(c, buf); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
		}
	}
}

// TestSlowReaders: downloads whose clients read a little now and then
// keep no more decoded chunks between them than the engine's read cache,
// are cut off once they read slower than the minimum rate, and one
// address cannot open more than its share of downloads at once; a normal
// client's download goes on meanwhile.
func TestSlowReaders(t *testing.T) {
	const cache = 8 << 20
	e := enginetest.Open(t, engine.Options{ReadCache: cache})
	reg := prometheus.NewRegistry()
	srv, url, tok := startServer(t, server.Config{
		// A window long enough that no slow download is cut off before
		// the shares are checked, on a loaded machine too: the first write
		// that waits for a slow client is past its deadline a window on.
		Engine: e, Registry: reg, BodyMinRate: 1024, BodyRateWindow: 10 * time.Second,
		MaxDownloadsPerAddress: 12, SlotWait: 500 * time.Millisecond,
	})
	addr := strings.TrimPrefix(url, "http://")
	data := random(7, 24<<20)
	mustStatus(t, 201, "POST", url+"/public/1/big", tok, data)

	// 40 slow downloads from 4 addresses, reading 4 KiB every 8 s.
	stop := make(chan struct{})
	defer close(stop)
	var wg sync.WaitGroup
	var started atomic.Int64 // slow downloads answered: each holds its address's slot
	for i := range 40 {
		c := dialFrom(t, fmt.Sprintf("127.0.0.%d", 2+i%4), addr)
		wg.Go(func() { slowRead(c, "/public/1/big", 4<<10, 8*time.Second, stop, &started) })
	}
	if !waitFor(5*time.Second, func() bool { return started.Load() >= 40 && inflight(t, srv) >= 40 }) {
		t.Fatalf("only %d of 40 slow downloads answered, %v running", started.Load(), inflight(t, srv))
	}
	if st, _ := e.Stats(); st.ReadCacheBytes > cache+5<<20 {
		t.Errorf("40 slow downloads keep %d bytes of chunks; the read cache is %d", st.ReadCacheBytes, cache)
	}
	// An address past its share of downloads is refused after a short
	// wait: 127.0.0.2 has 10 slow ones; two more fill its 12.
	for range 2 {
		c := dialFrom(t, "127.0.0.2", addr)
		wg.Go(func() { slowRead(c, "/public/1/big", 4<<10, 8*time.Second, stop, &started) })
	}
	if !waitFor(5*time.Second, func() bool { return started.Load() >= 42 && inflight(t, srv) >= 42 }) {
		t.Fatalf("only %d of 42 slow downloads answered, %v running", started.Load(), inflight(t, srv))
	}
	c := dialFrom(t, "127.0.0.2", addr)
	fmt.Fprintf(c, "GET /public/1/big HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n\r\n")
	if line, _ := statusLine(c, 5*time.Second); !strings.Contains(line, " 429 ") {
		t.Errorf("a 13th download from an address whose share is 12: %q, want 429", line)
	}
	c.Close()
	other := dialFrom(t, "127.0.0.9", addr)
	fmt.Fprintf(other, "GET /public/1/big HTTP/1.1\r\nHost: x\r\nRange: bytes=0-0\r\n\r\n")
	if line, _ := statusLine(other, 5*time.Second); !strings.Contains(line, " 206 ") {
		t.Errorf("a download from another address meanwhile: %q, want 206", line)
	}
	other.Close()

	// A normal download is not held up.
	start := time.Now()
	if got := mustStatus(t, 200, "GET", url+"/public/1/big", "", nil); !bytes.Equal(got, data) {
		t.Fatal("wrong bytes")
	}
	t.Logf("a 24 MiB download beside 40 slow ones: %v", time.Since(start))

	// The slow ones are cut off: they read under 1 KiB/s.
	if !waitFor(30*time.Second, func() bool { return inflight(t, srv) == 0 }) {
		t.Errorf("%v slow downloads still running 30 s on", inflight(t, srv))
	}
}

// TestFastThenStalled: a client that reads quickly, so that the
// response goes out in larger pieces, and then stops reading is still cut
// off within about a window of the minimum rate; a fast client gets its
// whole download.
func TestFastThenStalled(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	reg := prometheus.NewRegistry()
	srv, url, tok := startServer(t, server.Config{Engine: e, Registry: reg, BodyMinRate: 1024, BodyRateWindow: 2 * time.Second})
	addr := strings.TrimPrefix(url, "http://")
	data := random(8, 48<<20)
	mustStatus(t, 201, "POST", url+"/public/1/big", tok, data)
	if got := mustStatus(t, 200, "GET", url+"/public/1/big", "", nil); !bytes.Equal(got, data) {
		t.Fatal("a fast client got wrong bytes")
	}

	c := dialFrom(t, "127.0.0.2", addr)
	defer c.Close()
	fmt.Fprintf(c, "GET /public/1/big HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := io.ReadFull(c, make([]byte, 8<<20)); err != nil { // fast: the pieces grow
		t.Fatal(err)
	}
	stalled := time.Now()
	if !waitFor(15*time.Second, func() bool { return inflight(t, srv) == 0 }) {
		t.Fatalf("a stalled download still running %v after it stopped reading", time.Since(stalled))
	}
	t.Logf("a stalled download cut off %v after it stopped reading (window 2 s)", time.Since(stalled).Round(100*time.Millisecond))
}

// TestRangeStorm: a GET of thousands of one-byte ranges, alternating
// between an object's first and last chunk, costs what its bytes do:
// near ranges are merged, each chunk is read once, and past MaxRanges
// (64) the whole object is the answer.
func TestRangeStorm(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	url, tok := start(t, server.Config{Engine: e})
	data := random(9, 8<<20)
	size := int64(len(data))
	mustStatus(t, 201, "POST", url+"/public/1/obj", tok, data)
	r, err := e.GetRecord(engine.Key{Namespace: "cloudstorage", Tenant: "public/1", Name: "obj"})
	if err != nil {
		t.Fatal(err)
	}
	info, err := e.Stat(r.Blob)
	if err != nil || info.Chunks < 4 {
		t.Fatalf("want an object of several chunks: %+v, %v", info, err)
	}
	reads := func() uint64 {
		st, err := e.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st.ChunkReads
	}
	storm := func(step int64) string {
		var parts []string
		for i := range int64(1500) {
			parts = append(parts, fmt.Sprintf("%d-%d", i*step, i*step), fmt.Sprintf("%d-%d", size-1-i*step, size-1-i*step))
		}
		return "bytes=" + strings.Join(parts, ",")
	}

	// Near each other: two ranges, one at each end, two chunks read.
	before := reads()
	res, body, err := request(t, "GET", url+"/public/1/obj", "", nil, "Range", storm(2))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 206 {
		t.Fatalf("near ranges: %d, want 206", res.StatusCode)
	}
	_, params, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	parts := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var first, last, total int64
		fmt.Sscanf(p.Header.Get("Content-Range"), "bytes %d-%d/%d", &first, &last, &total)
		got, _ := io.ReadAll(p)
		if total != size || !bytes.Equal(got, data[first:last+1]) {
			t.Fatalf("part %q: %d bytes, not the object's", p.Header.Get("Content-Range"), len(got))
		}
		parts++
	}
	if n := reads() - before; parts != 2 || n > 2 {
		t.Errorf("3000 one-byte ranges at both ends: %d parts, %d chunk reads; want 2 and at most 2", parts, n)
	}

	// Far apart: more than 64 ranges even merged; the whole object, each
	// chunk read once.
	before = reads()
	res, body, err = request(t, "GET", url+"/public/1/obj", "", nil, "Range", storm(2000))
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("3000 spread ranges: %d, %d bytes; want 200 and the whole object", res.StatusCode, len(body))
	}
	if n := reads() - before; n > uint64(info.Chunks) {
		t.Errorf("serving the whole object read %d chunks, it has %d", n, info.Chunks)
	}
}

// clientFrom is an HTTP client whose connections come from the loopback
// address from.
func clientFrom(from string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestLoginGuessing: every password check (Storage API login,
// /oauth/token, /v1/authentications, media upload's Basic auth) stops an
// address that keeps failing (429 with Retry-After) before it checks the
// password, and an identity failed at from many addresses; the owner
// still signs in from an address they signed in from before, and from a
// new one once the wait it is told is over: an attacker cannot lock them
// out for good.
func TestLoginGuessing(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	e := enginetest.Open(t, engine.Options{Now: clock})
	url, _ := start(t, server.Config{Engine: e, Now: clock})
	ctx := context.Background()
	if _, _, err := storageapi.NewIAM(e).AddUser(ctx, "ann@example.com", "ann-long-password"); err != nil {
		t.Fatal(err)
	}
	secret, err := mediaservice.NewClients(e).Add(ctx, "shop-app", "shop", []string{mediaservice.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := oceanmedia.NewUsers(e).Add(ctx, "editor", "a-long-password", oceanmedia.ReadOnly); err != nil {
		t.Fatal(err)
	}
	if _, err := mediaupload.NewAccounts(e).Set(ctx, "shop", "correct-horse-battery", true); err != nil {
		t.Fatal(err)
	}
	basic := func(u, p string) string { return base64.StdEncoding.EncodeToString([]byte(u + ":" + p)) }
	for _, api := range []struct {
		name string
		// try signs in from the address with the right or a wrong
		// password and returns the status.
		try func(c *http.Client, right bool) *http.Response
		ok  int
	}{
		{"Storage API login", func(c *http.Client, right bool) *http.Response {
			pw := "ann-long-password"
			if !right {
				pw = "guess-guess-guess"
			}
			res, err := c.Post(url+"/storage/auth/login", "application/json", strings.NewReader(`{"email":"ann@example.com","password":"`+pw+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			return res
		}, 200},
		{"/oauth/token", func(c *http.Client, right bool) *http.Response {
			pw := secret
			if !right {
				pw = "guess"
			}
			req, _ := http.NewRequest("POST", url+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("shop-app", pw)
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}, 200},
		{"/v1/authentications", func(c *http.Client, right bool) *http.Response {
			pw := "a-long-password"
			if !right {
				pw = "guess-guess-guess"
			}
			req, _ := http.NewRequest("POST", url+"/v1/authentications", nil)
			req.Header.Set("X-API-Authenticate", basic("editor", pw))
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}, 201},
		{"media upload Basic auth", func(c *http.Client, right bool) *http.Response {
			pw := "correct-horse-battery"
			if !right {
				pw = "guess-guess-guess"
			}
			req, _ := http.NewRequest("GET", url+"/cms/v2/content/no-such-id", nil)
			req.SetBasicAuth("shop", pw)
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}, 404},
	} {
		t.Run(api.name, func(t *testing.T) {
			status := func(c *http.Client, right bool) (int, string) {
				res := api.try(c, right)
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				return res.StatusCode, res.Header.Get("Retry-After")
			}
			owner, attacker := clientFrom("127.0.1.1"), clientFrom("127.0.1.2")
			if code, _ := status(owner, true); code != api.ok {
				t.Fatalf("the owner signing in: %d, want %d", code, api.ok)
			}
			// One address guessing: stopped within a dozen tries.
			stopped := -1
			for i := range 30 {
				if code, wait := status(attacker, false); code == 429 {
					if wait == "" {
						t.Fatal("429 without Retry-After")
					}
					stopped = i
					break
				}
			}
			if stopped < 0 || stopped > 12 {
				t.Fatalf("an address guessing 30 times was stopped after %d", stopped)
			}
			if code, _ := status(attacker, true); code != 429 {
				t.Errorf("the stopped address with the right password: %d, want 429 (it is not checked)", code)
			}
			if code, _ := status(clientFrom("127.0.1.3"), true); code != api.ok {
				t.Errorf("another address meanwhile: %d, want %d", code, api.ok)
			}
			// Many addresses guessing: the identity is stopped for new
			// addresses, never for the owner's.
			for i := range 40 {
				status(clientFrom(fmt.Sprintf("127.0.2.%d", 1+i)), false)
			}
			if code, _ := status(clientFrom("127.0.3.1"), false); code != 429 {
				t.Errorf("a 41st address guessing at the identity: %d, want 429", code)
			}
			if code, _ := status(owner, true); code != api.ok {
				t.Errorf("the owner during the attack, from where they signed in before: %d, want %d", code, api.ok)
			}
			newAddr := clientFrom("127.0.3.2")
			if code, wait := status(newAddr, true); code != 429 || wait == "" {
				t.Errorf("the owner from a new address during the attack: %d (Retry-After %q), want 429 and a wait", code, wait)
			} else {
				secs, _ := strconv.Atoi(wait)
				if secs < 1 || secs > 120 {
					t.Errorf("Retry-After %q", wait)
				}
				now.Add(int64(time.Duration(secs) * time.Second))
			}
			if code, _ := status(newAddr, true); code != api.ok {
				t.Errorf("the owner from a new address once the wait is over: %d, want %d", code, api.ok)
			}
			now.Add(int64(time.Hour)) // the next API starts afresh
		})
	}
}
