package resumable_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"
	"golang.org/x/exp/slog"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/server/internal/resumable"
)

// env is a tusd handler on a Store over a real engine, at /files/.
type env struct {
	t      *testing.T
	dir    string
	e      *engine.Engine
	srv    *httptest.Server
	store  *resumable.Store
	now    atomic.Int64
	failOn atomic.Int32 // Finish fails this many times (a crash before the finish committed)
	mu     sync.Mutex
	head   []byte      // what the last Finish was shown
	deny   atomic.Bool // Owns says no
}

var t0 = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func newEnv(t *testing.T) *env {
	v := &env{t: t, dir: filepath.Join(t.TempDir(), "data")}
	v.now.Store(t0.UnixNano())
	v.open()
	return v
}

func (v *env) clock() time.Time { return time.Unix(0, v.now.Load()) }

// open opens the engine and starts the handler; restart does it again.
func (v *env) open() {
	t := v.t
	v.e = enginetest.OpenDir(t, v.dir, engine.Options{Now: v.clock, GCGrace: -1})
	v.store = &resumable.Store{
		Engine: v.e, Namespace: "test.tus", TTL: 24 * time.Hour, Now: v.clock,
		Owns: func(context.Context, map[string]string) bool { return !v.deny.Load() },
		Finish: func(ctx context.Context, tx *engine.Tx, info handler.FileInfo, up *engine.Upload, head []byte) ([]byte, error) {
			if v.failOn.Load() > 0 {
				v.failOn.Add(-1)
				return nil, errors.New("crash before the finish committed")
			}
			v.mu.Lock()
			v.head = bytes.Clone(head)
			v.mu.Unlock()
			k := engine.Key{Namespace: "test.files", Tenant: "t", Name: info.MetaData["filename"]}
			if _, err := tx.Put(k, engine.Record{ContentType: info.MetaData["filetype"]}, up); err != nil {
				return nil, err
			}
			return []byte(up.ID().String()), nil
		},
	}
	c := handler.NewStoreComposer()
	v.store.UseIn(c)
	h, err := handler.NewHandler(handler.Config{BasePath: "/files/", StoreComposer: c, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	v.srv = httptest.NewServer(http.StripPrefix("/files/", h))
	t.Cleanup(v.srv.Close)
}

func (v *env) restart() {
	v.srv.Close()
	if err := v.e.Close(); err != nil {
		v.t.Fatal(err)
	}
	v.open()
}

// do sends a tus request to path (on the server as it is now).
func (v *env) do(method, path string, body io.Reader, hdr ...string) (*http.Response, error) {
	req, _ := http.NewRequest(method, v.srv.URL+path, body)
	req.Header.Set("Tus-Resumable", "1.0.0")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if method == "PATCH" {
		req.Header.Set("Content-Type", "application/offset+octet-stream")
	}
	res, err := http.DefaultClient.Do(req)
	if err == nil {
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	return res, err
}

// create makes an upload of size bytes named name, and returns its path.
func (v *env) create(name string, size int64, hdr ...string) string {
	v.t.Helper()
	meta := "filename " + b64(name) + ",filetype " + b64("application/octet-stream")
	h := append([]string{"Upload-Length", strconv.FormatInt(size, 10), "Upload-Metadata", meta}, hdr...)
	res, err := v.do("POST", "/files/", nil, h...)
	if err != nil || res.StatusCode != 201 {
		v.t.Fatalf("create: %v %v", res, err)
	}
	return "/files/" + filepath.Base(res.Header.Get("Location"))
}

func b64(s string) string {
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var out []byte
	b := []byte(s)
	for len(b) > 0 {
		var n uint32
		k := min(3, len(b))
		for i := range 3 {
			n <<= 8
			if i < k {
				n |= uint32(b[i])
			}
		}
		for i := range 4 {
			if i <= k {
				out = append(out, enc[(n>>(18-6*i))&63])
			} else {
				out = append(out, '=')
			}
		}
		b = b[k:]
	}
	return string(out)
}

func (v *env) offset(url string) int64 {
	v.t.Helper()
	res, err := v.do("HEAD", url, nil)
	if err != nil || res.StatusCode != 200 {
		v.t.Fatalf("HEAD %s: %v %v", url, res, err)
	}
	n, err := strconv.ParseInt(res.Header.Get("Upload-Offset"), 10, 64)
	if err != nil {
		v.t.Fatal(err)
	}
	return n
}

// cutReader gives n bytes, then fails: the client's connection drops.
type cutReader struct {
	b []byte
	n int
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errors.New("connection dropped")
	}
	k := copy(p, c.b[:min(len(c.b), c.n, len(p))])
	c.b, c.n = c.b[k:], c.n-k
	return k, nil
}

// TestResume: an upload whose connection drops at random points, and
// whose server restarts once, resumes from the offset the server reports
// each time and finishes as the same file a plain upload makes (same
// BLAKE3); bytes sent twice are not stored twice.
func TestResume(t *testing.T) {
	v := newEnv(t)
	content := make([]byte, 40<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range content {
		content[i] = byte(r.Uint32())
	}
	url := v.create("big.bin", int64(len(content)))
	cuts := 0
	for attempt := 0; ; attempt++ {
		off := v.offset(url)
		if off == int64(len(content)) {
			break
		}
		if attempt > 50 {
			t.Fatalf("no progress after %d attempts (offset %d)", attempt, off)
		}
		if attempt == 3 {
			// Restarted (once what the cut PATCH brought is in: the
			// server finishes a request whose client went away), and
			// then again: the offset is what was synced, both times.
			v.restart()
			off = v.offset(url)
			v.restart()
			if got := v.offset(url); got != off {
				t.Fatalf("offset after a restart: %d, before %d", got, off)
			}
		}
		rest := content[off:]
		var body io.Reader = bytes.NewReader(rest)
		if cuts < 4 && len(rest) > 1<<20 {
			body = &cutReader{b: rest, n: 1<<20 + r.IntN(len(rest)-1<<20)}
			cuts++
		}
		res, err := v.do("PATCH", url, body, "Upload-Offset", strconv.FormatInt(off, 10))
		// 409: the cut PATCH before this one was still storing what it
		// brought, and moved the offset; as a tus client does, ask again.
		if err == nil && res.StatusCode != 204 && res.StatusCode != 409 {
			t.Fatalf("PATCH at %d: %d", off, res.StatusCode)
		}
	}
	if cuts < 4 {
		t.Fatalf("only %d cut connections", cuts)
	}
	rec, err := v.e.GetRecord(engine.Key{Namespace: "test.files", Tenant: "t", Name: "big.bin"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Blob != blob.Sum(content) || rec.Size != int64(len(content)) {
		t.Fatalf("the finished file: blob %s, %d bytes; want %s", rec.Blob, rec.Size, blob.Sum(content))
	}
	id := filepath.Base(url)
	if res, done, err := v.store.Result(id); err != nil || !done || string(res) != rec.Blob.String() {
		t.Fatalf("Result = %q, %v, %v", res, done, err)
	}
	st, _ := v.e.Stats()
	// The parts are deleted; what the engine holds is the file, once
	// (the parts' chunks were found stored when it was streamed again).
	enginetest.Collect(t, v.e, nil)
	if _, err := v.e.GC(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	st, _ = v.e.Stats()
	if st.BlobBytes != int64(len(content)) || st.ChunkBytes > int64(len(content))+int64(len(content))/8 {
		t.Fatalf("after GC: %d blob bytes, %d chunk bytes for a %d-byte file", st.BlobBytes, st.ChunkBytes, len(content))
	}
}

// TestOnePatch: an upload sent in one PATCH is finished from its part
// without streaming it again (one engine upload, not two), but for a
// content kept in the index; the file is what a plain upload makes, and
// Finish is shown its first bytes. Afterwards GC leaves the files' bytes,
// once each.
func TestOnePatch(t *testing.T) {
	v := newEnv(t)
	var total int64
	for i, size := range []int{100, 16 << 10, 16<<10 + 1, 1 << 20, 5<<20 + 3} {
		content := make([]byte, size)
		r := rand.New(rand.NewPCG(uint64(i), 9))
		for j := range content {
			content[j] = byte(r.Uint32())
		}
		name := fmt.Sprintf("one-%d.bin", size)
		url := v.create(name, int64(size))
		before, _ := v.e.Stats()
		if res, err := v.do("PATCH", url, bytes.NewReader(content), "Upload-Offset", "0"); err != nil || res.StatusCode != 204 {
			t.Fatalf("size %d: PATCH: %v %v", size, res, err)
		}
		after, _ := v.e.Stats()
		if got, want := after.Uploads-before.Uploads, map[bool]uint64{true: 1, false: 2}[size > 16<<10]; got != want {
			t.Errorf("size %d: %d engine uploads, want %d", size, got, want)
		}
		rec, err := v.e.GetRecord(engine.Key{Namespace: "test.files", Tenant: "t", Name: name})
		if err != nil || rec.Blob != blob.Sum(content) || rec.Size != int64(size) {
			t.Fatalf("size %d: the file: %+v, %v; want %s", size, rec, err, blob.Sum(content))
		}
		v.mu.Lock()
		head := v.head
		v.mu.Unlock()
		if !bytes.Equal(head, content[:min(size, resumable.HeadSize)]) {
			t.Errorf("size %d: Finish was shown %d bytes, not the content's first", size, len(head))
		}
		total += int64(size)
	}
	enginetest.Collect(t, v.e, nil)
	if _, err := v.e.GC(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if err := v.e.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, _ := v.e.Stats(); st.BlobBytes != total || st.Blobs != 5 {
		t.Fatalf("after GC: %d blobs of %d bytes, want 5 of %d", st.Blobs, st.BlobBytes, total)
	}
}

// TestRacingPatches: two clients PATCH one upload at the same offset at
// once: one is taken, the other refused (409), and the file is whole.
func TestRacingPatches(t *testing.T) {
	v := newEnv(t)
	content := bytes.Repeat([]byte("racing "), 300_000)
	url := v.create("race.bin", int64(len(content)))
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i := range 2 {
		wg.Go(func() {
			res, err := v.do("PATCH", url, bytes.NewReader(content[:len(content)/2]), "Upload-Offset", "0")
			if err != nil {
				t.Error(err)
				return
			}
			codes[i] = res.StatusCode
		})
	}
	wg.Wait()
	ok, conflict := 0, 0
	for _, c := range codes {
		switch c {
		case 204:
			ok++
		case 409, 423:
			conflict++
		}
	}
	if ok != 1 || conflict != 1 {
		t.Fatalf("two PATCHes at offset 0: %v, want one 204 and one 409", codes)
	}
	if off := v.offset(url); off != int64(len(content)/2) {
		t.Fatalf("offset %d after the race", off)
	}
	res, err := v.do("PATCH", url, bytes.NewReader(content[len(content)/2:]), "Upload-Offset", strconv.Itoa(len(content)/2))
	if err != nil || res.StatusCode != 204 {
		t.Fatalf("the rest: %v %v", res, err)
	}
	rec, err := v.e.GetRecord(engine.Key{Namespace: "test.files", Tenant: "t", Name: "race.bin"})
	if err != nil || rec.Blob != blob.Sum(content) {
		t.Fatalf("the raced file: %v, %v", rec.Blob, err)
	}
}

// TestFinishAfterCrash: the last part commits but the finish does not (a
// crash between the two); the next request that reads the upload
// finishes it, so a client that finds its offset complete finds the
// file made.
func TestFinishAfterCrash(t *testing.T) {
	v := newEnv(t)
	content := bytes.Repeat([]byte("finish "), 100_000)
	url := v.create("late.bin", int64(len(content)))
	v.failOn.Store(1)
	if res, err := v.do("PATCH", url, bytes.NewReader(content), "Upload-Offset", "0"); err != nil || res.StatusCode == 204 {
		t.Fatalf("the PATCH whose finish failed: %v %v", res, err)
	}
	if _, err := v.e.GetRecord(engine.Key{Namespace: "test.files", Tenant: "t", Name: "late.bin"}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("the file before any finish: %v", err)
	}
	v.restart()
	if off := v.offset(url); off != int64(len(content)) {
		t.Fatalf("offset %d", off)
	}
	rec, err := v.e.GetRecord(engine.Key{Namespace: "test.files", Tenant: "t", Name: "late.bin"})
	if err != nil || rec.Blob != blob.Sum(content) {
		t.Fatalf("the file once the upload was read again: %v, %v", rec.Blob, err)
	}
}

// TestAbandoned: an upload left unfinished expires with its parts, and
// GC gives their space back; terminating one does at once.
func TestAbandoned(t *testing.T) {
	v := newEnv(t)
	content := make([]byte, 8<<20)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range content {
		content[i] = byte(r.Uint32())
	}
	url := v.create("left.bin", int64(len(content))*2)
	if res, err := v.do("PATCH", url, bytes.NewReader(content), "Upload-Offset", "0"); err != nil || res.StatusCode != 204 {
		t.Fatalf("PATCH: %v %v", res, err)
	}
	gone := v.create("gone.bin", 100)
	if res, err := v.do("PATCH", gone, bytes.NewReader(content[:50]), "Upload-Offset", "0"); err != nil || res.StatusCode != 204 {
		t.Fatalf("PATCH: %v %v", res, err)
	}
	if res, err := v.do("DELETE", gone, nil); err != nil || res.StatusCode != 204 {
		t.Fatalf("terminate: %v %v", res, err)
	}
	if res, _ := v.do("HEAD", gone, nil); res.StatusCode != 404 {
		t.Fatalf("HEAD of a terminated upload: %d", res.StatusCode)
	}
	if st, _ := v.e.Stats(); st.ChunkBytes < int64(len(content)) {
		t.Fatalf("the part is not stored: %+v", st.Totals)
	}
	v.now.Add(int64(25 * time.Hour))
	if n, err := v.e.Expire(context.Background()); err != nil || n != 2 {
		t.Fatalf("Expire = %d, %v; want the info and the part", n, err)
	}
	if res, _ := v.do("HEAD", url, nil); res.StatusCode != 404 {
		t.Fatalf("HEAD of an expired upload: %d", res.StatusCode)
	}
	if _, err := v.e.GC(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if st, _ := v.e.Stats(); st.Records != 0 || st.Blobs != 0 || st.Chunks != 0 {
		t.Fatalf("after expiry and GC: %+v", st.Totals)
	}
}

// TestConcat: partial uploads made in parallel and a final upload that
// concatenates them make the file, without copying the bytes.
func TestConcat(t *testing.T) {
	v := newEnv(t)
	a, b := bytes.Repeat([]byte("first "), 200_000), bytes.Repeat([]byte("second "), 150_000)
	var urls []string
	for _, part := range [][]byte{a, b} {
		u := v.create("", int64(len(part)), "Upload-Concat", "partial")
		if res, err := v.do("PATCH", u, bytes.NewReader(part), "Upload-Offset", "0"); err != nil || res.StatusCode != 204 {
			t.Fatalf("partial PATCH: %v %v", res, err)
		}
		urls = append(urls, u)
	}
	meta := "filename " + b64("joined.bin")
	res, err := v.do("POST", "/files/", nil, "Upload-Concat", fmt.Sprintf("final;%s %s", urls[0], urls[1]), "Upload-Metadata", meta)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("final: %v %v", res, err)
	}
	rec, err := v.e.GetRecord(engine.Key{Namespace: "test.files", Tenant: "t", Name: "joined.bin"})
	if err != nil || rec.Blob != blob.Sum(append(append([]byte(nil), a...), b...)) {
		t.Fatalf("the concatenated file: %v, %v", rec.Blob, err)
	}
}

// TestOwns: an upload the request does not own (Store.Owns) is not
// found, by every request, and a final upload naming it as a partial one
// is answered as one naming none is, complete or not.
func TestOwns(t *testing.T) {
	v := newEnv(t)
	done := v.create("", 3, "Upload-Concat", "partial")
	if res, err := v.do("PATCH", done, strings.NewReader("abc"), "Upload-Offset", "0"); err != nil || res.StatusCode != 204 {
		t.Fatalf("PATCH: %v %v", res, err)
	}
	unfinished := v.create("", 3, "Upload-Concat", "partial")
	none := "/files/" + strings.Repeat("0", 32)
	answer := func(method, url string, hdr ...string) string {
		res, err := v.do(method, url, nil, hdr...)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return fmt.Sprintf("%d %s", res.StatusCode, b)
	}
	join := func(url string) string {
		return answer("POST", "/files/", "Upload-Concat", "final;"+done+" "+url, "Upload-Metadata", "filename "+b64("j.bin"))
	}
	if got := answer("HEAD", unfinished); !strings.HasPrefix(got, "200") {
		t.Fatalf("HEAD of an upload owned: %s", got)
	}
	if got := join(unfinished); !strings.HasPrefix(got, "400") {
		t.Fatalf("joining an unfinished upload owned: %s", got)
	}
	want := join(none)
	if !strings.HasPrefix(want, "404") {
		t.Fatalf("joining no upload: %s", want)
	}
	v.deny.Store(true)
	for _, url := range []string{done, unfinished} {
		if got := answer("HEAD", url); !strings.HasPrefix(got, "404") {
			t.Errorf("HEAD of an upload not owned: %s", got)
		}
		if got := answer("PATCH", url, "Upload-Offset", "0"); !strings.HasPrefix(got, "404") {
			t.Errorf("PATCH of an upload not owned: %s", got)
		}
		if got := join(url); got != want {
			t.Errorf("joining an upload not owned: %q; joining none: %q", got, want)
		}
	}
}
