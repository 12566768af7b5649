package storageapi_test

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/internal/testtool"
	"github.com/cairnstore/cairn/server/storageapi"
)

// tusMeta is an Upload-Metadata header: filename and filetype.
func tusMeta(name, ctype string) string {
	m := "filename " + base64.StdEncoding.EncodeToString([]byte(name))
	if ctype != "" {
		m += ",filetype " + base64.StdEncoding.EncodeToString([]byte(ctype))
	}
	return m
}

// tusCreate creates an upload and returns its path.
func (v *env) tusCreate(scope, token string, size int, meta string) string {
	v.t.Helper()
	r := v.do(req{method: "POST", path: "/storage/" + scope + "/uploads", token: token,
		hdr: []string{"Tus-Resumable", "1.0.0", "Upload-Length", fmt.Sprint(size), "Upload-Metadata", meta}})
	v.want(r, 201)
	loc := r.h.Get("Location")
	if !strings.HasPrefix(loc, v.url+"/storage/"+scope+"/uploads/") {
		v.t.Fatalf("Location %q", loc)
	}
	return strings.TrimPrefix(loc, v.url)
}

func (v *env) tusPatch(path, token string, offset int, body []byte) resp {
	v.t.Helper()
	return v.do(req{method: "PATCH", path: path, token: token, body: string(body), ctype: "application/offset+octet-stream",
		hdr: []string{"Tus-Resumable", "1.0.0", "Upload-Offset", fmt.Sprint(offset)}})
}

// TestResumableUploads: the Storage API's tus endpoints, with its
// tokens, roles, limits and answers: an upload sent in parts finishes as
// the file a plain upload makes, answered with the same JSON; another
// user's token finds nothing; a member cannot start one; the size limit
// and the public rate limit hold.
func TestResumableUploads(t *testing.T) {
	v := newEnv(t, storageapi.Config{MaxFile: 4 << 20, PublicRate: 2})
	v.addUser("ann@acme.test", map[string]storageapi.Role{"acme": storageapi.RoleAdmin})
	v.addUser("mia@acme.test", map[string]storageapi.Role{"acme": storageapi.RoleMember})
	v.addUser("bob@example.com", nil)
	content := bytes.Repeat([]byte("%PDF-1.7 resumable "), 100_000)[:1<<20+12345]

	up := v.tusCreate("user", "ann", len(content), tusMeta("report.pdf", "application/pdf"))
	r := v.tusPatch(up, "ann", 0, content[:600_000])
	v.want(r, 204)
	if r.h.Get("Upload-Offset") != "600000" {
		t.Fatalf("Upload-Offset %q", r.h.Get("Upload-Offset"))
	}
	// Another user's token finds no such upload.
	v.want(v.tusPatch(up, "bob", 600_000, content[600_000:]), 404, "not_found")
	if r := v.do(req{method: "HEAD", path: up, token: "bob", hdr: []string{"Tus-Resumable", "1.0.0"}}); r.code != 404 {
		t.Fatalf("HEAD with another user's token: %s", r)
	}
	v.want(v.do(req{method: "GET", path: up, token: "ann"}), 409, "upload_incomplete")
	head := v.do(req{method: "HEAD", path: up, token: "ann", hdr: []string{"Tus-Resumable", "1.0.0"}})
	if head.code != 200 || head.h.Get("Upload-Offset") != "600000" || head.h.Get("Upload-Length") != fmt.Sprint(len(content)) {
		t.Fatalf("HEAD: %s %v", head, head.h)
	}
	// A PATCH at a stale offset is refused.
	if r := v.tusPatch(up, "ann", 0, content[:10]); r.code != 409 {
		t.Fatalf("a PATCH at a stale offset: %s", r)
	}
	done := v.tusPatch(up, "ann", 600_000, content[600_000:])
	v.want(done, 200)
	var f struct {
		FileID, FileName, ContentType string
		Size                          int64
		ETag                          string
	}
	done.json(t, &f)
	if f.FileName != "report.pdf" || f.ContentType != "application/pdf" || f.Size != int64(len(content)) || f.FileID == "" {
		t.Fatalf("the finished upload's answer: %s", done)
	}
	got := v.do(req{method: "GET", path: "/storage/user/files/" + f.FileID, token: "ann"})
	if got.code != 200 || !bytes.Equal(got.body, content) {
		t.Fatalf("the file: %d, %d bytes", got.code, len(got.body))
	}
	again := v.do(req{method: "GET", path: up, token: "ann"})
	if again.code != 200 || !bytes.Equal(again.body, done.body) {
		t.Fatalf("GET of the finished upload: %s, want %s", again, done)
	}
	// The same bytes as a plain upload: the same content (one blob).
	body, ct := form("plain.pdf", "application/pdf", content)
	plain := v.do(req{method: "POST", path: "/storage/user/files", token: "ann", body: body, ctype: ct})
	v.want(plain, 201)
	var p struct{ ETag string }
	plain.json(t, &p)
	if p.ETag != f.ETag {
		t.Fatalf("ETag of the resumable upload %s, of the plain one %s", f.ETag, p.ETag)
	}

	// Roles and limits.
	v.want(v.do(req{method: "POST", path: "/storage/org/uploads", token: "acme:mia",
		hdr: []string{"Tus-Resumable", "1.0.0", "Upload-Length", "10", "Upload-Metadata", tusMeta("x", "")}}), 403)
	org := v.tusCreate("org", "acme:ann", 5, tusMeta("org.txt", "text/plain"))
	v.want(v.tusPatch(org, "acme:ann", 0, []byte("hello")), 200)
	if r := v.do(req{method: "POST", path: "/storage/user/uploads", token: "ann",
		hdr: []string{"Tus-Resumable", "1.0.0", "Upload-Length", fmt.Sprint(5 << 20), "Upload-Metadata", tusMeta("big", "")}}); r.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("an upload over the size limit: %s", r)
	}
	if r := v.do(req{method: "POST", path: "/storage/user/uploads", token: "ann",
		hdr: []string{"Tus-Resumable", "1.0.0", "Upload-Length", "5", "Upload-Metadata", tusMeta("a/b", "")}}); r.code != 400 {
		t.Fatalf("a file name with a slash: %s", r)
	}
	v.want(v.do(req{method: "POST", path: "/storage/user/uploads", hdr: []string{"Tus-Resumable", "1.0.0", "Upload-Length", "5"}}), 401)

	// Public: anonymous, the upload URL its key, rate-limited at creation;
	// the answer carries the delete token, as a plain public upload's.
	pub := v.tusCreate("public", "", 5, tusMeta("p.txt", "text/plain"))
	var pf struct{ DeleteToken, URL string }
	pd := v.tusPatch(pub, "", 0, []byte("hello"))
	v.want(pd, 200)
	pd.json(t, &pf)
	if pf.DeleteToken == "" || pf.URL == "" {
		t.Fatalf("a public upload's answer: %s", pd)
	}
	v.tusCreate("public", "", 5, tusMeta("q.txt", ""))
	v.want(v.do(req{method: "POST", path: "/storage/public/uploads",
		hdr: []string{"Tus-Resumable", "1.0.0", "Upload-Length", "5", "Upload-Metadata", tusMeta("r.txt", "")}}), 429, "rate_limited")

	// Terminated: gone.
	gone := v.tusCreate("user", "ann", 10, tusMeta("gone", ""))
	v.want(v.do(req{method: "DELETE", path: gone, token: "ann", hdr: []string{"Tus-Resumable", "1.0.0"}}), 204)
	v.want(v.do(req{method: "GET", path: gone, token: "ann"}), 404, "not_found")
}

// flaky cuts the first cuts PATCH requests midway: the handler sees the
// body end after a random share of it, and the client's connection is
// closed before it gets an answer, as when a mobile connection drops.
func flaky(cuts int) func(http.Handler) http.Handler {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(5, 6))
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			mu.Lock()
			cut := req.Method == "PATCH" && cuts > 0 && req.ContentLength > 1<<20
			var n int64
			if cut {
				cuts--
				n = 1 + r.Int64N(req.ContentLength-1)
			}
			mu.Unlock()
			if !cut {
				h.ServeHTTP(w, req)
				return
			}
			req.Body = io.NopCloser(io.LimitReader(req.Body, n))
			h.ServeHTTP(&discard{h: http.Header{}}, req)
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
		})
	}
}

// discard is a ResponseWriter that keeps nothing: the client's
// connection is gone.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// TestTusJSClient: tus-js-client (from npm, under Node) uploads 24 MiB
// in 4 MiB PATCHes through connections cut midway three times; it
// resumes each time from the offset the server reports, and finishes
// with the file a plain upload makes, byte for byte, its JSON the last
// answer's body.
func TestTusJSClient(t *testing.T) {
	node := testtool.Path(t, "node", "apt-get install -y nodejs")
	mods := testtool.TusJSClient(t)
	v := newEnvWrapped(t, storageapi.Config{}, flaky(3))
	v.addUser("ann@acme.test", nil)
	content := make([]byte, 24<<20)
	rr := rand.New(rand.NewPCG(7, 8))
	for i := range content {
		content[i] = byte(rr.Uint32())
	}
	file := filepath.Join(t.TempDir(), "video.mp4")
	if err := os.WriteFile(file, content, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "testdata/tus-upload.js", v.url+"/storage/user/uploads", v.tokens["ann"], file, "video.mp4", "video/mp4")
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tus-js-client: %v\n%s", err, stderr.String())
	}
	var res struct {
		Status   int
		Body     string
		URL      string
		Failures int
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if res.Failures < 3 {
		t.Fatalf("the client saw %d failed requests, want the 3 cut ones", res.Failures)
	}
	var f struct{ FileID, FileName, ContentType string }
	if res.Status != 200 || json.Unmarshal([]byte(res.Body), &f) != nil || f.FileName != "video.mp4" || f.ContentType != "video/mp4" {
		t.Fatalf("the last answer: %d %s", res.Status, res.Body)
	}
	got := v.do(req{method: "GET", path: "/storage/user/files/" + f.FileID, token: "ann"})
	if got.code != 200 || !bytes.Equal(got.body, content) {
		t.Fatalf("the file: %d, %d bytes", got.code, len(got.body))
	}
	t.Logf("24 MiB through 3 cut connections: %d failed requests retried, finished at %s", res.Failures, res.URL)
}

// TestResumableChecksum: the tus checksum extension, sha1 (what tus
// requires) and blake3: a PATCH whose bytes match is kept, one that does
// not is refused (460) and keeps nothing, an unknown algorithm is 400.
func TestResumableChecksum(t *testing.T) {
	v := newEnv(t, storageapi.Config{})
	v.addUser("ann@acme.test", nil)
	content := bytes.Repeat([]byte("checksum "), 50_000)
	up := v.tusCreate("user", "ann", len(content), tusMeta("c.txt", "text/plain"))
	part := func(off int, b []byte, sum string) resp {
		return v.do(req{method: "PATCH", path: up, token: "ann", body: string(b), ctype: "application/offset+octet-stream",
			hdr: []string{"Tus-Resumable", "1.0.0", "Upload-Offset", fmt.Sprint(off), "Upload-Checksum", sum}})
	}
	a, b := content[:200_000], content[200_000:]
	sha := sha1.Sum(a)
	if r := part(0, a, "sha1 "+base64.StdEncoding.EncodeToString(make([]byte, 20))); r.code != 460 {
		t.Fatalf("a wrong sha1: %s", r)
	}
	if r := part(0, a, "md5 "+base64.StdEncoding.EncodeToString(make([]byte, 16))); r.code != 400 {
		t.Fatalf("md5: %s", r)
	}
	if h := v.do(req{method: "HEAD", path: up, token: "ann", hdr: []string{"Tus-Resumable", "1.0.0"}}); h.h.Get("Upload-Offset") != "0" {
		t.Fatalf("after refused checksums the offset is %q", h.h.Get("Upload-Offset"))
	}
	v.want(part(0, a, "sha1 "+base64.StdEncoding.EncodeToString(sha[:])), 204)
	b3 := blob.Sum(b)
	r := part(len(a), b, "blake3 "+base64.StdEncoding.EncodeToString(b3[:]))
	v.want(r, 200)
	if r.h.Get("Tus-Checksum-Algorithm") != "sha1,blake3" {
		t.Fatalf("Tus-Checksum-Algorithm %q", r.h.Get("Tus-Checksum-Algorithm"))
	}
}

// TestResumableConcat: a final upload joins the user's own partial
// uploads into the file; naming another user's, finished or not, is
// answered as naming none is.
func TestResumableConcat(t *testing.T) {
	v := newEnv(t, storageapi.Config{})
	v.addUser("ann@acme.test", map[string]storageapi.Role{"acme": storageapi.RoleAdmin})
	v.addUser("bob@acme.test", map[string]storageapi.Role{"acme": storageapi.RoleAdmin})
	// partial is an upload of length bytes, body sent (nil: nothing yet).
	partial := func(token string, length int, body []byte) string {
		r := v.do(req{method: "POST", path: "/storage/user/uploads", token: token,
			hdr: []string{"Tus-Resumable", "1.0.0", "Upload-Length", fmt.Sprint(length), "Upload-Concat", "partial"}})
		v.want(r, 201)
		u := strings.TrimPrefix(r.h.Get("Location"), v.url)
		if body != nil {
			v.want(v.tusPatch(u, token, 0, body), 204)
		}
		return u
	}
	join := func(token string, urls ...string) resp {
		return v.do(req{method: "POST", path: "/storage/user/uploads", token: token,
			hdr: []string{"Tus-Resumable", "1.0.0", "Upload-Concat", "final;" + strings.Join(urls, " "), "Upload-Metadata", tusMeta("joined.txt", "text/plain")}})
	}
	a, b := partial("ann", 7, []byte("first, ")), partial("ann", 6, []byte("second"))
	bobs, unfinished := partial("bob", 5, []byte("bob's")), partial("bob", 3, nil)
	none := join("ann", a, "/storage/user/uploads/"+strings.Repeat("0", 32))
	if none.code != 404 {
		t.Fatalf("joining no upload: %d %s", none.code, none.body)
	}
	for _, theirs := range []string{bobs, unfinished} {
		if r := join("ann", a, theirs); r.code != none.code || !bytes.Equal(r.body, none.body) {
			t.Fatalf("joining another user's partial upload: %d %s; joining none: %d %s", r.code, r.body, none.code, none.body)
		}
	}
	r := join("ann", a, b)
	if r.code != 201 && r.code != 200 {
		t.Fatalf("joining ann's own: %d %s", r.code, r.body)
	}
}
