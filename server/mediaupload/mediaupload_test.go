package mediaupload_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/internal/testtool"
	"github.com/cairnstore/cairn/server"
	"github.com/cairnstore/cairn/server/internal/openapitest"
	"github.com/cairnstore/cairn/server/mediaupload"
)

type env struct {
	t   *testing.T
	e   *engine.Engine
	url string
	now atomic.Int64
	pw  map[string]string
	// client checks every request and response against the API's
	// OpenAPI document, as served; it never follows the documented 302,
	// which is an answer, not a redirect.
	client *http.Client
	// serving counts the requests the server is in, to wait for their
	// handlers' deferred work (a download's pin on its blob).
	serving sync.WaitGroup
}

// t0 is the test clock's start: midday, so "today" is unambiguous.
var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func newEnv(t *testing.T, maxContent int64) *env {
	v := &env{t: t, pw: map[string]string{}}
	v.now.Store(t0.UnixNano())
	clock := func() time.Time { return time.Unix(0, v.now.Load()) }
	v.e = enginetest.Open(t, engine.Options{Now: clock})
	cfg := server.Config{
		Engine: v.e, Logger: enginetest.Logger(t), Now: clock,
		MediaUpload: mediaupload.Config{MaxContent: maxContent},
	}
	srv := http.Handler(server.New(cfg))
	if e2 := enginetest.SecondNode(t, v.e); e2 != nil {
		cfg.Engine = e2
		srv = testtool.Alternate(srv, server.New(cfg))
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.serving.Add(1)
		defer v.serving.Done()
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	v.url = ts.URL
	v.client = openapitest.New(t, ts.URL, "/openapi/mediaupload.json").Client()
	accounts := mediaupload.NewAccounts(v.e)
	for _, name := range []string{"alice", "bob"} {
		pw, err := accounts.Set(context.Background(), name, "", true)
		if err != nil {
			t.Fatal(err)
		}
		v.pw[name] = pw
	}
	return v
}

// settle waits until the server is in no request: a download answered
// has released its blob only once its handler returned.
func (v *env) settle() { v.serving.Wait() }

// fetch GETs a public URL, reads its body, and returns its status.
func fetch(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

type resp struct {
	code int
	h    http.Header
	body []byte
}

func (r resp) String() string { return fmt.Sprintf("%d %.300s", r.code, r.body) }

func (v *env) do(method, path, user string, body io.Reader, hdr ...string) resp {
	v.t.Helper()
	req, _ := http.NewRequest(method, v.url+path, body)
	if user != "" {
		req.SetBasicAuth(user, v.pw[user])
	}
	req.Header.Set("Content-Type", "application/json")
	code, h, b := openapitest.Do(v.t, v.client, req, hdr...)
	return resp{code, h, b}
}

// TestDocumentCoversRoutes: the document's operations are the mounted
// routes.
func TestDocumentCoversRoutes(t *testing.T) {
	var mounted []string
	for _, rt := range mediaupload.New(mediaupload.Config{}).Routes() {
		mounted = append(mounted, rt.Method+" "+rt.Path)
	}
	openapitest.Routes(t, mediaupload.OpenAPI(), mounted)
}

func uploadBody(content []byte, date string) io.Reader {
	m := map[string]any{"content": base64.StdEncoding.EncodeToString(content)}
	if date != "" {
		m["expirationDate"] = date
	}
	b, _ := json.Marshal(m)
	return bytes.NewReader(b)
}

type info struct {
	ID, ExpirationDate, ContentType, Location string
	Size                                      int64
}

func decode(t *testing.T, r resp) info {
	t.Helper()
	var i info
	if err := json.Unmarshal(r.body, &i); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return i
}

var png = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{7, 1, 3}, 3000)...)

func TestUploadAndManage(t *testing.T) {
	v := newEnv(t, 0)
	r := v.do("POST", "/cms/v2/content", "alice", uploadBody(png, ""))
	if r.code != 201 {
		t.Fatalf("upload: %s", r)
	}
	if !regexp.MustCompile(`^\d{3}-[0-9a-f-]{36}$`).MatchString(r.h.Get("X-Request-Id")) {
		t.Errorf("X-Request-Id %q", r.h.Get("X-Request-Id"))
	}
	up := decode(t, r)
	if up.ExpirationDate != "2026-04-09T00:00:00Z" || up.Size != int64(len(png)) || up.ContentType != "image/png" || up.ID == "" || up.Location != "" {
		t.Fatalf("201 body %s", r.body)
	}
	loc := r.h.Get("Location")
	if !strings.HasPrefix(loc, v.url+"/f/") {
		t.Fatalf("Location %q", loc)
	}
	// The Location serves the bytes publicly, through the download path.
	res, err := http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(got, png) || res.Header.Get("Content-Type") != "image/png" || res.Header.Get("ETag") != `"`+blob.Sum(png).String()+`"` {
		t.Fatalf("public GET: %d %q", res.StatusCode, res.Header)
	}

	r = v.do("GET", "/cms/v2/content/"+up.ID, "alice", nil)
	if g := decode(t, r); r.code != 200 || g.Location != loc || g.ID != up.ID || r.h.Get("Location") != loc {
		t.Fatalf("GET: %s", r)
	}
	// Duplicates: the same account gets 302 with the existing file, its
	// expiration unchanged; another account gets its own file.
	r = v.do("POST", "/cms/v2/content", "alice", uploadBody(png, "2026-12-01"))
	if d := decode(t, r); r.code != 302 || d.ID != up.ID || d.Location != loc || r.h.Get("Location") != loc || d.ExpirationDate != up.ExpirationDate {
		t.Fatalf("duplicate upload: %s", r)
	}
	r = v.do("POST", "/cms/v2/content", "bob", uploadBody(png, ""))
	bobs := decode(t, r)
	if r.code != 201 || bobs.ID == up.ID {
		t.Fatalf("another account's upload of the same bytes: %s", r)
	}
	for _, tc := range []struct{ method, path, user string }{
		{"GET", "/cms/v2/content/" + up.ID, "bob"},
		{"DELETE", "/cms/v2/content/" + up.ID, "bob"},
		{"GET", "/cms/v2/content/nope", "alice"},
	} {
		if r := v.do(tc.method, tc.path, tc.user, nil); r.code != 404 {
			t.Errorf("%s %s as %s: %s, want 404", tc.method, tc.path, tc.user, r)
		}
	}
	body := func(id, date string) io.Reader {
		return strings.NewReader(fmt.Sprintf(`{"id":%q,"expirationDate":%q}`, id, date))
	}
	if r := v.do("PUT", "/cms/v2/content", "alice", body(up.ID, "2027-03-10")); r.code != 200 {
		t.Fatalf("PUT: %s", r)
	}
	if g := decode(t, v.do("GET", "/cms/v2/content/"+up.ID, "alice", nil)); g.ExpirationDate != "2027-03-10T00:00:00Z" {
		t.Fatalf("after PUT: %+v", g)
	}
	for _, b := range []io.Reader{body(up.ID, "2027-03-11"), body(up.ID, "2026-03-09"), body(up.ID, "10/03/2026"), body("nope", "2026-05-01"), strings.NewReader("{")} {
		if r := v.do("PUT", "/cms/v2/content", "alice", b); r.code != 404 {
			t.Errorf("bad PUT: %s, want 404", r)
		}
	}
	if r := v.do("PUT", "/cms/v2/content", "bob", body(up.ID, "2026-05-01")); r.code != 404 {
		t.Errorf("PUT of another account's file: %s", r)
	}
	if r := v.do("DELETE", "/cms/v2/content/"+up.ID, "alice", nil); r.code != 200 {
		t.Fatalf("DELETE: %s", r)
	}
	if r := v.do("GET", "/cms/v2/content/"+up.ID, "alice", nil); r.code != 404 {
		t.Fatalf("GET after DELETE: %s", r)
	}
	if res, _ := http.Get(loc); res.StatusCode != 404 {
		t.Fatalf("public URL after DELETE: %d", res.StatusCode)
	}
	// Deleted, the bytes are new again for alice: 201, not 302.
	if r := v.do("POST", "/cms/v2/content", "alice", uploadBody(png, "")); r.code != 201 {
		t.Fatalf("re-upload after delete: %s", r)
	}
}

func TestAuth(t *testing.T) {
	v := newEnv(t, 0)
	for _, hdr := range [][]string{
		nil,
		{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wrong"))},
		{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("mallory:"+v.pw["alice"]))},
		{"Authorization", "Bearer x"},
	} {
		r := v.do("POST", "/cms/v2/content", "", uploadBody(png, ""), hdr...)
		if r.code != 401 || !strings.HasPrefix(r.h.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%q: %s, want 401 with WWW-Authenticate: Basic", hdr, r)
		}
		if r := v.do("GET", "/cms/v2/content/x", "", nil, hdr...); r.code != 401 {
			t.Errorf("GET %q: %s", hdr, r)
		}
	}
}

func TestValidation(t *testing.T) {
	v := newEnv(t, 1000)
	for _, tc := range []struct {
		name, body string
		ctype      string
		want       []string
	}{
		{"missing content", `{"expirationDate":"2026-04-01"}`, "", []string{"content is required"}},
		{"bad base64", `{"content":"!!!!"}`, "", []string{"content is not valid base64"}},
		{"content not a string", `{"content":12}`, "", []string{"content must be a base64 string"}},
		{"empty content", `{"content":""}`, "", []string{"content is empty"}},
		{"too large", fmt.Sprintf(`{"content":%q}`, base64.StdEncoding.EncodeToString(make([]byte, 1001))), "", []string{"content is larger than 1000 bytes"}},
		{"bad date", `{"content":"aGVsbG8=","expirationDate":"01/04/2026"}`, "", []string{"expirationDate must be a date in the format YYYY-MM-DD"}},
		{"date not a string", `{"content":"aGVsbG8=","expirationDate":20260401}`, "", []string{"expirationDate must be a date in the format YYYY-MM-DD"}},
		{"past", `{"content":"aGVsbG8=","expirationDate":"2026-03-09"}`, "", []string{"expirationDate cannot be in the past"}},
		{"beyond a year", `{"content":"aGVsbG8=","expirationDate":"2027-03-11"}`, "", []string{"expirationDate cannot be more than one year from the current date"}},
		{"every reason", `{"expirationDate":"2020-01-01"}`, "", []string{"content is required", "expirationDate cannot be in the past"}},
		{"two reasons", `{"content":"","expirationDate":"tomorrow"}`, "", []string{"content is empty", "expirationDate must be a date in the format YYYY-MM-DD"}},
		{"not JSON", `content=abc`, "", []string{"the body is not a valid JSON object: want '{', got 'c'"}},
		{"not a JSON content type", `{"content":"aGVsbG8="}`, "text/plain", []string{"Content-Type must be application/json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.ctype != "" {
				hdr = []string{"Content-Type", tc.ctype}
			}
			r := v.do("POST", "/cms/v2/content", "alice", strings.NewReader(tc.body), hdr...)
			var got struct {
				InvalidReasons []string
				Valid          *bool
			}
			json.Unmarshal(r.body, &got)
			if r.code != 400 || got.Valid == nil || *got.Valid || fmt.Sprint(got.InvalidReasons) != fmt.Sprint(tc.want) {
				t.Errorf("%s: %s, want 400 with %q", tc.body[:min(40, len(tc.body))], r, tc.want)
			}
		})
	}
	st, _ := v.e.Stats()
	if st.Records != 2 { // the two accounts
		t.Errorf("refused uploads left %d records", st.Records)
	}
}

func TestDateBoundaries(t *testing.T) {
	v := newEnv(t, 0)
	for i, tc := range []struct {
		date string
		ok   bool
	}{{"2026-03-10", true}, {"2027-03-10", true}, {"2027-03-11", false}, {"2026-03-09", false}} {
		content := []byte(fmt.Sprintf("file %d", i))
		r := v.do("POST", "/cms/v2/content", "alice", uploadBody(content, tc.date))
		if (r.code == 201) != tc.ok {
			t.Errorf("expirationDate %s: %s, want ok=%v", tc.date, r, tc.ok)
		}
		if tc.ok && decode(t, r).ExpirationDate != tc.date+"T00:00:00Z" {
			t.Errorf("expirationDate %s stored as %s", tc.date, r.body)
		}
	}
}

// TestExpiry: a file is kept through its whole expiration date ("The date
// on which the media should be deleted from the CMS") and deleted when
// that UTC day ends.
func TestExpiry(t *testing.T) {
	v := newEnv(t, 0)
	r := v.do("POST", "/cms/v2/content", "alice", uploadBody(png, "2026-03-11"))
	up := decode(t, r)
	loc := r.h.Get("Location")
	for _, at := range []time.Time{time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 11, 23, 59, 59, 0, time.UTC)} {
		v.now.Store(at.UnixNano())
		if n, err := v.e.Expire(context.Background()); err != nil || n != 0 {
			t.Fatalf("Expire on the expiration date = %d, %v; want 0", n, err)
		}
		if r := v.do("GET", "/cms/v2/content/"+up.ID, "alice", nil); r.code != 200 || decode(t, r).ExpirationDate != "2026-03-11T00:00:00Z" {
			t.Fatalf("GET at %v, on the expiration date: %s", at, r)
		}
		if code := fetch(t, loc); code != 200 {
			t.Fatalf("public URL at %v, on the expiration date: %d", at, code)
		}
	}
	v.now.Store(time.Date(2026, 3, 12, 0, 0, 0, 0, time.UTC).UnixNano())
	if r := v.do("GET", "/cms/v2/content/"+up.ID, "alice", nil); r.code != 404 {
		t.Fatalf("GET once the expiration date ended: %s", r)
	}
	if code := fetch(t, loc); code != 404 {
		t.Fatalf("public URL once the expiration date ended: %d", code)
	}
	v.settle()
	n, err := v.e.Expire(context.Background())
	if err != nil || n != 4 { // the file, its duplicate entry, its request ID, its public link
		t.Fatalf("Expire = %d, %v; want 4", n, err)
	}
	enginetest.Collect(t, v.e, func(d time.Duration) { v.now.Add(int64(d)) })
	st, _ := v.e.Stats()
	if st.Records != 2 || st.Blobs != 0 {
		t.Fatalf("after the sweep: %d records, %d blobs; the space was not given back", st.Records, st.Blobs)
	}
	// Expired, the same bytes upload anew.
	if r := v.do("POST", "/cms/v2/content", "alice", uploadBody(png, "")); r.code != 201 {
		t.Fatalf("upload after expiry: %s", r)
	}
}

// TestExpiresToday: "it cannot be in the past" allows today, so a file
// that expires today is kept until today ends, not deleted at once; the
// same for a PUT to today.
func TestExpiresToday(t *testing.T) {
	v := newEnv(t, 0)
	r := v.do("POST", "/cms/v2/content", "alice", uploadBody(png, "2026-03-10"))
	up := decode(t, r)
	if r.code != 201 || up.ExpirationDate != "2026-03-10T00:00:00Z" {
		t.Fatalf("upload expiring today: %s", r)
	}
	r = v.do("POST", "/cms/v2/content", "alice", uploadBody([]byte("another file"), ""))
	other := decode(t, r)
	body := fmt.Sprintf(`{"id":%q,"expirationDate":"2026-03-10"}`, other.ID)
	if r := v.do("PUT", "/cms/v2/content", "alice", strings.NewReader(body)); r.code != 200 || decode(t, r).ExpirationDate != "2026-03-10T00:00:00Z" {
		t.Fatalf("PUT to today: %s", r)
	}
	v.now.Store(time.Date(2026, 3, 10, 23, 59, 59, 0, time.UTC).UnixNano())
	if n, err := v.e.Expire(context.Background()); err != nil || n != 0 {
		t.Fatalf("Expire before today ends = %d, %v; want 0", n, err)
	}
	for _, id := range []string{up.ID, other.ID} {
		if r := v.do("GET", "/cms/v2/content/"+id, "alice", nil); r.code != 200 {
			t.Fatalf("a file expiring today, before today ends: %s", r)
		}
	}
	v.now.Store(time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC).UnixNano())
	for _, id := range []string{up.ID, other.ID} {
		if r := v.do("GET", "/cms/v2/content/"+id, "alice", nil); r.code != 404 {
			t.Fatalf("a file that expired yesterday: %s", r)
		}
	}
}

// TestRequestID: "The response header contains the request ID, which is
// used to identify the media in other tasks", and the document's GET
// example uses it (GET …/content/053-8a767024-…): the upload's
// X-Request-Id names the file in GET, PUT and DELETE as its id does, for
// its own account only.
func TestRequestID(t *testing.T) {
	v := newEnv(t, 0)
	r := v.do("POST", "/cms/v2/content", "alice", uploadBody(png, ""))
	up, rid := decode(t, r), r.h.Get("X-Request-Id")
	if r.code != 201 || rid == up.ID {
		t.Fatalf("upload: %s, X-Request-Id %q", r, rid)
	}
	r = v.do("GET", "/cms/v2/content/"+rid, "alice", nil)
	if g := decode(t, r); r.code != 200 || g.ID != up.ID || r.h.Get("X-Request-Id") != rid {
		t.Fatalf("GET by request ID: %s, X-Request-Id %q", r, r.h.Get("X-Request-Id"))
	}
	// The same bytes again: 302 with the request ID that names the file.
	if r := v.do("POST", "/cms/v2/content", "alice", uploadBody(png, "")); r.code != 302 || r.h.Get("X-Request-Id") != rid {
		t.Fatalf("duplicate: %s, X-Request-Id %q, want %q", r, r.h.Get("X-Request-Id"), rid)
	}
	// Another account: the same 404 as a missing file.
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/cms/v2/content/" + rid, ""},
		{"DELETE", "/cms/v2/content/" + rid, ""},
		{"PUT", "/cms/v2/content", fmt.Sprintf(`{"id":%q,"expirationDate":"2026-05-01"}`, rid)},
	} {
		r := v.do(tc.method, tc.path, "bob", strings.NewReader(tc.body))
		missing := v.do(tc.method, strings.Replace(tc.path, rid, "000-"+uuid.NewString(), 1), "bob", strings.NewReader(strings.Replace(tc.body, rid, "000-"+uuid.NewString(), 1)))
		if r.code != 404 || string(r.body) != string(missing.body) {
			t.Errorf("bob: %s %s: %s; a missing one: %s", tc.method, tc.path, r, missing)
		}
	}
	body := fmt.Sprintf(`{"id":%q,"expirationDate":"2026-12-24"}`, rid)
	if r := v.do("PUT", "/cms/v2/content", "alice", strings.NewReader(body)); r.code != 200 || decode(t, r).ExpirationDate != "2026-12-24T00:00:00Z" {
		t.Fatalf("PUT by request ID: %s", r)
	}
	if g := decode(t, v.do("GET", "/cms/v2/content/"+up.ID, "alice", nil)); g.ExpirationDate != "2026-12-24T00:00:00Z" {
		t.Fatalf("after PUT by request ID: %+v", g)
	}
	if r := v.do("DELETE", "/cms/v2/content/"+rid, "alice", nil); r.code != 200 {
		t.Fatalf("DELETE by request ID: %s", r)
	}
	for _, id := range []string{up.ID, rid} {
		if r := v.do("GET", "/cms/v2/content/"+id, "alice", nil); r.code != 404 {
			t.Errorf("GET %s after DELETE: %s", id, r)
		}
	}
	if st, _ := v.e.Stats(); st.Records != 2 {
		t.Errorf("after DELETE: %d records; want the two accounts", st.Records)
	}
}

// TestTooLarge: "The maximum size can be no larger than 100 MB", and the
// document's statuses for an upload are 201, 302, 400, 401 and 500: too
// much content is a failed validation, 400 with one reason, whether the
// client declared its length or sent it chunked, and the server stops
// reading at the limit.
func TestTooLarge(t *testing.T) {
	v := newEnv(t, 1000)
	want := `{"invalidReasons":["content is larger than 1000 bytes"],"valid":false}`
	big := uploadBody(make([]byte, 100_000), "")
	declared, _ := io.ReadAll(big)
	for _, tc := range []struct {
		what string
		body io.Reader
	}{
		{"with Content-Length, over the body limit", bytes.NewReader(declared)},
		{"with Content-Length, under the body limit", uploadBody(make([]byte, 1001), "")},
		{"chunked", io.MultiReader(bytes.NewReader(declared))},
		{"chunked and endless", io.MultiReader(strings.NewReader(`{"content":"`), endless{})},
	} {
		r := v.do("POST", "/cms/v2/content", "alice", tc.body)
		if r.code != 400 || strings.TrimSpace(string(r.body)) != want {
			t.Errorf("%s: %s, want 400 %s", tc.what, r, want)
		}
	}
	if st, _ := v.e.Stats(); st.Records != 2 {
		t.Errorf("refused uploads left %d records", st.Records)
	}
}

// endless is base64 that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'A'
	}
	return len(p), nil
}

func TestEscapedBase64(t *testing.T) {
	v := newEnv(t, 0)
	content := bytes.Repeat([]byte{0xfb, 0xff, 0xfe}, 200) // base64 full of '/' and '+'
	enc := base64.StdEncoding.EncodeToString(content)
	// Some encoders escape '/', and some break base64 into lines.
	odd := strings.ReplaceAll(enc[:400], "/", `\/`) + `\n` + enc[400:]
	r := v.do("POST", "/cms/v2/content", "alice", strings.NewReader(`{ "expirationDate" : "2026-05-01", "extra": {"a":[1,true,null]}, "content" : "`+odd+`" }`))
	if r.code != 201 || decode(t, r).Size != int64(len(content)) {
		t.Fatalf("escaped base64: %s", r)
	}
	res, _ := http.Get(r.h.Get("Location"))
	got, _ := io.ReadAll(res.Body)
	if !bytes.Equal(got, content) {
		t.Fatal("escaped base64 decoded to other bytes")
	}
}

// base64Body streams {"content":"<base64 of n random bytes>"} without
// ever holding it.
func base64Body(n int64) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"content":"`))
		enc := base64.NewEncoder(base64.StdEncoding, pw)
		if _, err := io.CopyN(enc, rand.NewChaCha8([32]byte{9}), n); err != nil {
			pw.CloseWithError(err)
			return
		}
		enc.Close()
		pw.Write([]byte(`","expirationDate":"2026-04-01"}`))
		pw.Close()
	}()
	return pr
}

// TestLargeUploadMemory uploads 100 MB of content (a 133 MB JSON body) and
// samples the heap while it streams: the peak stays far below the body.
func TestLargeUploadMemory(t *testing.T) {
	n := int64(100_000_000)
	if testing.Short() {
		n = 20_000_000 // -short (and so -race in CI): a fifth of it
	}
	v := newEnv(t, n)
	var r resp
	grew := testtool.HeapGrowth(func() { r = v.do("POST", "/cms/v2/content", "alice", base64Body(n)) })
	if r.code != 201 || decode(t, r).Size != n {
		t.Fatalf("100 MB upload: %s", r)
	}
	t.Logf("the heap peaked %d MiB above where it was for a %d MB body", grew>>20, (n*4/3)/1_000_000)
	if grew > 48<<20 {
		t.Errorf("the heap grew by %d MiB during a 100 MB upload", grew>>20)
	}
	if r := v.do("POST", "/cms/v2/content", "alice", base64Body(n+1)); r.code != 400 {
		t.Errorf("content of 100 MB + 1 byte: %s, want 400", r)
	}
}

// TestAccountMadeAgain: an account made again under a deleted account's
// name never sees the old one's files: deleting an account that has
// files is refused unless purged, which deletes them (and their public
// URLs), and the new account keeps its files apart even so.
func TestAccountMadeAgain(t *testing.T) {
	v := newEnv(t, 0)
	accounts := mediaupload.NewAccounts(v.e)
	r := v.do("POST", "/cms/v2/content", "alice", uploadBody(png, ""))
	if r.code != 201 {
		t.Fatalf("upload: %s", r)
	}
	old, loc := decode(t, r).ID, r.h.Get("Location")
	if err := accounts.Delete(context.Background(), "alice", false); !errors.Is(err, mediaupload.ErrHasFiles) {
		t.Fatalf("deleting an account with files: %v, want ErrHasFiles", err)
	}
	if err := accounts.Delete(context.Background(), "alice", true); err != nil {
		t.Fatal(err)
	}
	pw, err := accounts.Set(context.Background(), "alice", "", true)
	if err != nil {
		t.Fatal(err)
	}
	v.pw["alice"] = pw
	if r := v.do("GET", "/cms/v2/content/"+old, "alice", nil); r.code != 404 {
		t.Errorf("the new alice reading the old one's file: %s, want 404", r)
	}
	if r := v.do("DELETE", "/cms/v2/content/"+old, "alice", nil); r.code != 404 {
		t.Errorf("the new alice deleting the old one's file: %s, want 404", r)
	}
	res, err := http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Errorf("the old file's public URL after its account was purged: %d", res.StatusCode)
	}
	// The same bytes again are a new file of the new account (201), not
	// the old account's (302).
	if r := v.do("POST", "/cms/v2/content", "alice", uploadBody(png, "")); r.code != 201 {
		t.Errorf("the new alice uploading the old one's bytes: %s, want 201", r)
	}
	// An account with no files is deleted without purging.
	if err := accounts.Delete(context.Background(), "bob", false); err != nil {
		t.Errorf("deleting an account without files: %v", err)
	}
}
