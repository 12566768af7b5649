package storageapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/internal/testtool"
	"github.com/cairnstore/cairn/server"
	"github.com/cairnstore/cairn/server/internal/openapitest"
	"github.com/cairnstore/cairn/server/storageapi"
)

// env is a live server and a client that checks every request it sends
// and every response it gets against the OpenAPI document the server
// serves (openapitest).
type env struct {
	t      *testing.T
	e      *engine.Engine
	iam    *storageapi.IAM
	url    string
	now    atomic.Int64
	client *http.Client
	// tokens by name: "alice" (a user token), "acme:max" (max's token for
	// organization acme).
	tokens map[string]string
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func newEnv(t *testing.T, cfg storageapi.Config) *env {
	return newEnvWrapped(t, cfg, nil)
}

// newEnvWrapped is newEnv with the server's handler wrapped (a flaky
// network, say).
func newEnvWrapped(t *testing.T, cfg storageapi.Config, wrap func(http.Handler) http.Handler) *env {
	v := &env{t: t, tokens: map[string]string{}}
	v.now.Store(t0.UnixNano())
	clock := func() time.Time { return time.Unix(0, v.now.Load()) }
	v.e = enginetest.Open(t, engine.Options{Now: clock})
	v.iam = storageapi.NewIAM(v.e)
	scfg := server.Config{Engine: v.e, Logger: enginetest.Logger(t), Now: clock, StorageAPI: cfg}
	h := http.Handler(server.New(scfg))
	if e2 := enginetest.SecondNode(t, v.e); e2 != nil {
		scfg.Engine = e2
		h = testtool.Alternate(h, server.New(scfg))
	}
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	v.url = ts.URL

	v.client = openapitest.New(t, v.url, "/storage/openapi.json").Client()
	return v
}

func (v *env) advance(d time.Duration) { v.now.Add(int64(d)) }

// addUser makes a user and logs in, keeping the user token and each
// organization token.
func (v *env) addUser(email string, orgs map[string]storageapi.Role) {
	v.t.Helper()
	ctx := context.Background()
	if _, _, err := v.iam.AddUser(ctx, email, "password-of-"+email); err != nil {
		v.t.Fatal(err)
	}
	for org, role := range orgs {
		if _, err := v.iam.OrgByName(org); errors.Is(err, storageapi.ErrNoSuch) {
			if _, err := v.iam.AddOrg(ctx, org); err != nil {
				v.t.Fatal(err)
			}
		}
		if err := v.iam.SetMember(ctx, org, email, role); err != nil {
			v.t.Fatal(err)
		}
	}
	v.login(email)
}

func (v *env) login(email string) {
	v.t.Helper()
	r := v.do(req{method: "POST", path: "/storage/auth/login", body: fmt.Sprintf(`{"email":%q,"password":%q}`, email, "password-of-"+email), ctype: "application/json"})
	v.want(r, 200)
	var out struct {
		Token         string
		Organizations []struct{ Name, Token string }
	}
	json.Unmarshal(r.body, &out)
	name, _, _ := strings.Cut(email, "@")
	v.tokens[name] = out.Token
	for _, o := range out.Organizations {
		v.tokens[o.Name+":"+name] = o.Token
	}
}

type req struct {
	method, path string
	token        string // a key of tokens, or a raw "Bearer …" when it has a space
	body         string
	ctype        string
	hdr          []string
}

type resp struct {
	code int
	h    http.Header
	body []byte
}

func (r resp) String() string { return fmt.Sprintf("%d %.300s", r.code, r.body) }

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("%s: %v", r, err)
	}
}

func (v *env) do(q req) resp {
	v.t.Helper()
	build := func() *http.Request {
		r, err := http.NewRequest(q.method, v.url+q.path, strings.NewReader(q.body))
		if err != nil {
			v.t.Fatal(err)
		}
		if q.ctype != "" {
			r.Header.Set("Content-Type", q.ctype)
		}
		switch {
		case strings.Contains(q.token, " "):
			r.Header.Set("Authorization", q.token)
		case q.token != "":
			tok, ok := v.tokens[q.token]
			if !ok {
				v.t.Fatalf("no token %q", q.token)
			}
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		for i := 0; i+1 < len(q.hdr); i += 2 {
			r.Header.Set(q.hdr[i], q.hdr[i+1])
		}
		return r
	}
	code, h, body := openapitest.Do(v.t, v.client, build())
	return resp{code, h, body}
}

func (v *env) want(r resp, code int, errCode ...string) {
	v.t.Helper()
	if r.code != code {
		v.t.Fatalf("got %s, want %d %v", r, code, errCode)
	}
	if len(errCode) > 0 {
		var e struct{ Error, Message string }
		if json.Unmarshal(r.body, &e) != nil || e.Error != errCode[0] || e.Message == "" {
			v.t.Fatalf("got %s, want error %q", r, errCode[0])
		}
	}
}

// form is a multipart body as browsers and SDKs send it: a file part with
// a filename and a type, and another field.
func form(filename, ctype string, content []byte) (string, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("note", "ignored")
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, filename))
	h.Set("Content-Type", ctype)
	pw, _ := mw.CreatePart(h)
	pw.Write(content)
	mw.Close()
	return b.String(), mw.FormDataContentType()
}

type file struct {
	FileID, FileName, ContentType, Scope, ETag, URL, UploadedBy, DeleteToken string
	Size                                                                     int64
	CreatedAt                                                                time.Time
}

func (v *env) upload(mode, token, name string, content []byte) file {
	v.t.Helper()
	body, ct := form(name, "application/octet-stream", content)
	r := v.do(req{method: "POST", path: "/storage/" + mode + "/files", token: token, body: body, ctype: ct})
	v.want(r, 201)
	var f file
	r.json(v.t, &f)
	if f.Size != int64(len(content)) || f.ETag != `"`+blob.Sum(content).String()+`"` || f.FileName != name {
		v.t.Fatalf("upload answered %+v", f)
	}
	if loc := r.h.Get("Location"); loc != v.url+"/storage/"+mode+"/files/"+f.FileID {
		v.t.Fatalf("Location %q", loc)
	}
	return f
}

// fetch GETs a URL with no credentials at all.
func fetch(t *testing.T, url string) (int, []byte) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestDocumentCoversRoutes: the document's operations are the mounted
// routes.
func TestDocumentCoversRoutes(t *testing.T) {
	var mounted []string
	for _, rt := range storageapi.New(storageapi.Config{}).Routes() {
		mounted = append(mounted, rt.Method+" "+rt.Path)
	}
	openapitest.Routes(t, storageapi.OpenAPI(), mounted)
}

func TestPublicMode(t *testing.T) {
	v := newEnv(t, storageapi.Config{})
	content := randomBytes(1, 100_000)
	f := v.upload("public", "", "photo one.jpg", content)
	if f.Scope != "public" || f.URL == "" || f.DeleteToken == "" || f.UploadedBy != "" {
		t.Fatalf("public upload: %+v", f)
	}
	base := "/storage/public/files/" + f.FileID

	r := v.do(req{method: "GET", path: base})
	v.want(r, 200)
	if !bytes.Equal(r.body, content) || r.h.Get("ETag") != f.ETag {
		t.Fatalf("download: %d bytes, ETag %s", len(r.body), r.h.Get("ETag"))
	}
	r = v.do(req{method: "GET", path: base, hdr: []string{"Range", "bytes=10-19"}})
	v.want(r, 206)
	if !bytes.Equal(r.body, content[10:20]) {
		t.Fatalf("range: %q", r.body)
	}
	v.want(v.do(req{method: "GET", path: base, hdr: []string{"Range", "bytes=200000-"}}), 416)
	v.want(v.do(req{method: "GET", path: base, hdr: []string{"If-None-Match", f.ETag}}), 304)
	v.want(v.do(req{method: "HEAD", path: base}), 200)

	var info file
	r = v.do(req{method: "GET", path: base + "/info"})
	v.want(r, 200)
	r.json(t, &info)
	if info.FileID != f.FileID || info.DeleteToken != "" || info.URL != f.URL {
		t.Fatalf("info: %+v", info)
	}
	var u struct{ URL string }
	r = v.do(req{method: "GET", path: base + "/url"})
	v.want(r, 200)
	r.json(t, &u)
	if u.URL != f.URL {
		t.Fatalf("url %q, upload said %q", u.URL, f.URL)
	}
	if code, got := fetch(t, f.URL); code != 200 || !bytes.Equal(got, content) {
		t.Fatalf("public URL: %d, %d bytes", code, len(got))
	}

	// Deleting needs the delete token the upload returned.
	v.want(v.do(req{method: "DELETE", path: base}), 403, "forbidden")
	v.want(v.do(req{method: "DELETE", path: base, hdr: []string{"X-Delete-Token", "not-it"}}), 403, "forbidden")
	v.want(v.do(req{method: "DELETE", path: base, hdr: []string{"X-Delete-Token", f.DeleteToken}}), 204)
	v.want(v.do(req{method: "GET", path: base}), 404, "not_found")
	v.want(v.do(req{method: "DELETE", path: base, hdr: []string{"X-Delete-Token", f.DeleteToken}}), 404, "not_found")
	if code, _ := fetch(t, f.URL); code != 404 {
		t.Fatalf("public URL after delete: %d", code)
	}

	// Bad uploads: not multipart, no file part, a bad file name.
	v.want(v.do(req{method: "POST", path: "/storage/public/files", body: "raw", ctype: "application/octet-stream"}), 400, "bad_request")
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	mw.WriteField("other", "x")
	mw.Close()
	v.want(v.do(req{method: "POST", path: "/storage/public/files", body: b.String(), ctype: mw.FormDataContentType()}), 400, "bad_request")
	body, ct := form("bad\x01name", "text/plain", []byte("x"))
	v.want(v.do(req{method: "POST", path: "/storage/public/files", body: body, ctype: ct}), 400, "bad_request")
	v.want(v.do(req{method: "GET", path: "/storage/public/files/not-a-uuid"}), 404, "not_found")
}

func TestUserScope(t *testing.T) {
	v := newEnv(t, storageapi.Config{})
	v.addUser("alice@example.com", map[string]storageapi.Role{"acme": storageapi.RoleAdmin})
	v.addUser("bob@example.com", nil)
	content := []byte("%PDF-1.4\nalice's private document")
	f := v.upload("user", "alice", "cv.pdf", content)
	if f.Scope != "user" || f.URL != "" || f.DeleteToken != "" || f.ContentType != "application/pdf" || f.UploadedBy == "" {
		t.Fatalf("user upload: %+v", f)
	}
	base := "/storage/user/files/" + f.FileID
	r := v.do(req{method: "GET", path: base, token: "alice"})
	v.want(r, 200)
	if !bytes.Equal(r.body, content) || r.h.Get("Content-Type") != "application/pdf" {
		t.Fatalf("download: %q %s", r.body, r.h.Get("Content-Type"))
	}

	// Only alice sees it; bob gets what a missing file gets.
	var list struct {
		Files []file
		Next  string
	}
	r = v.do(req{method: "GET", path: "/storage/user/files", token: "alice"})
	v.want(r, 200)
	r.json(t, &list)
	if len(list.Files) != 1 || list.Files[0].FileID != f.FileID || list.Next != "" {
		t.Fatalf("alice's list: %s", r)
	}
	r = v.do(req{method: "GET", path: "/storage/user/files", token: "bob"})
	v.want(r, 200)
	if strings.TrimSpace(string(r.body)) != `{"files":[]}` {
		t.Fatalf("bob's list: %s", r)
	}
	missing := v.do(req{method: "GET", path: "/storage/user/files/00000000-0000-7000-8000-000000000000", token: "alice"})
	for _, q := range []req{
		{method: "GET", path: base, token: "bob"},
		{method: "GET", path: base + "/info", token: "bob"},
		{method: "GET", path: base + "/url", token: "bob"},
		{method: "POST", path: base + "/url", token: "bob"},
		{method: "DELETE", path: base, token: "bob"},
	} {
		r := v.do(q)
		if r.code != 404 || !bytes.Equal(r.body, missing.body) {
			t.Fatalf("bob %s %s: %s, want the missing file's %s", q.method, q.path, r, missing)
		}
	}

	// Tokens: none, garbage, the wrong type, expired.
	v.want(v.do(req{method: "GET", path: "/storage/user/files"}), 401, "unauthorized")
	v.want(v.do(req{method: "GET", path: "/storage/user/files", token: "Bearer not.a.jwt"}), 401, "invalid_token")
	v.want(v.do(req{method: "GET", path: "/storage/user/files", token: "acme:alice"}), 403, "wrong_token_type")
	v.want(v.do(req{method: "GET", path: "/storage/org/files", token: "alice"}), 403, "wrong_token_type")
	if r := v.do(req{method: "GET", path: "/storage/user/files"}); !strings.HasPrefix(r.h.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("401 without WWW-Authenticate: %v", r.h)
	}

	// Sharing makes a public URL that needs no token; unsharing ends it.
	v.want(v.do(req{method: "GET", path: base + "/url", token: "alice"}), 404, "not_shared")
	var u struct{ URL string }
	r = v.do(req{method: "POST", path: base + "/url", token: "alice"})
	v.want(r, 200)
	r.json(t, &u)
	if code, got := fetch(t, u.URL); code != 200 || !bytes.Equal(got, content) {
		t.Fatalf("shared URL: %d %q", code, got)
	}
	var again struct{ URL string }
	v.do(req{method: "POST", path: base + "/url", token: "alice"}).json(t, &again)
	if again.URL != u.URL {
		t.Fatalf("sharing twice made a second URL: %s, %s", u.URL, again.URL)
	}
	v.want(v.do(req{method: "DELETE", path: base + "/url", token: "alice"}), 204)
	if code, _ := fetch(t, u.URL); code != 404 {
		t.Fatalf("unshared URL: %d", code)
	}

	v.want(v.do(req{method: "DELETE", path: base, token: "alice"}), 204)
	v.want(v.do(req{method: "GET", path: base, token: "alice"}), 404, "not_found")

	v.advance(61 * time.Minute)
	v.want(v.do(req{method: "GET", path: "/storage/user/files", token: "alice"}), 401, "invalid_token")
}

func TestOrganizationScope(t *testing.T) {
	v := newEnv(t, storageapi.Config{})
	v.addUser("ann@acme.test", map[string]storageapi.Role{"acme": storageapi.RoleAdmin})
	v.addUser("max@acme.test", map[string]storageapi.Role{"acme": storageapi.RoleManager})
	v.addUser("mia@acme.test", map[string]storageapi.Role{"acme": storageapi.RoleMember})
	v.addUser("gus@globex.test", map[string]storageapi.Role{"globex": storageapi.RoleAdmin})

	content := randomBytes(2, 5000)
	f := v.upload("org", "acme:max", "plan.bin", content)
	if f.Scope != "organization" {
		t.Fatalf("org upload: %+v", f)
	}
	base := "/storage/org/files/" + f.FileID
	// Members share files: every role reads and lists.
	for _, tok := range []string{"acme:ann", "acme:max", "acme:mia"} {
		r := v.do(req{method: "GET", path: base, token: tok})
		v.want(r, 200)
		if !bytes.Equal(r.body, content) {
			t.Fatalf("%s downloads other bytes", tok)
		}
		var list struct{ Files []file }
		v.do(req{method: "GET", path: "/storage/org/files", token: tok}).json(t, &list)
		if len(list.Files) != 1 {
			t.Fatalf("%s lists %d files", tok, len(list.Files))
		}
	}
	// A member may not write.
	body, ct := form("x.txt", "text/plain", []byte("member upload"))
	v.want(v.do(req{method: "POST", path: "/storage/org/files", token: "acme:mia", body: body, ctype: ct}), 403, "forbidden")
	v.want(v.do(req{method: "DELETE", path: base, token: "acme:mia"}), 403, "forbidden")
	v.want(v.do(req{method: "POST", path: base + "/url", token: "acme:mia"}), 403, "forbidden")
	// Another organization sees nothing.
	v.want(v.do(req{method: "GET", path: base, token: "globex:gus"}), 404, "not_found")
	v.want(v.do(req{method: "DELETE", path: base, token: "globex:gus"}), 404, "not_found")
	var list struct{ Files []file }
	v.do(req{method: "GET", path: "/storage/org/files", token: "globex:gus"}).json(t, &list)
	if len(list.Files) != 0 {
		t.Fatalf("globex lists acme's files: %+v", list.Files)
	}
	// Nor does a user token of a member, in the user area or here.
	v.want(v.do(req{method: "GET", path: "/storage/user/files/" + f.FileID, token: "max"}), 404, "not_found")
	v.want(v.do(req{method: "GET", path: base, token: "max"}), 403, "wrong_token_type")

	// Roles are looked up per request: promoting mia lets her token
	// write at once; removing max ends his.
	ctx := context.Background()
	if err := v.iam.SetMember(ctx, "acme", "mia@acme.test", storageapi.RoleManager); err != nil {
		t.Fatal(err)
	}
	v.want(v.do(req{method: "POST", path: "/storage/org/files", token: "acme:mia", body: body, ctype: ct}), 201)
	if err := v.iam.RemoveMember(ctx, "acme", "max@acme.test"); err != nil {
		t.Fatal(err)
	}
	v.want(v.do(req{method: "GET", path: base, token: "acme:max"}), 401, "invalid_token")

	// The admin deletes; the file is gone for everyone.
	v.want(v.do(req{method: "DELETE", path: base, token: "acme:ann"}), 204)
	v.want(v.do(req{method: "GET", path: base, token: "acme:mia"}), 404, "not_found")
}

func TestLogin(t *testing.T) {
	v := newEnv(t, storageapi.Config{})
	v.addUser("carol@example.com", map[string]storageapi.Role{"zeta": storageapi.RoleMember, "alpha": storageapi.RoleManager})
	r := v.do(req{method: "POST", path: "/storage/auth/login", body: `{"email":"carol@example.com","password":"password-of-carol@example.com"}`, ctype: "application/json"})
	v.want(r, 200)
	var out struct {
		User          struct{ ID, Email string }
		Token         string
		Organizations []struct{ Name, Role, Token string }
	}
	r.json(t, &out)
	if out.User.Email != "carol@example.com" || len(out.Organizations) != 2 || out.Organizations[0].Name != "alpha" || out.Organizations[0].Role != "manager" {
		t.Fatalf("login: %s", r)
	}
	if r.h.Get("Cache-Control") != "no-store" {
		t.Fatal("tokens answered without Cache-Control: no-store")
	}
	wrong := v.do(req{method: "POST", path: "/storage/auth/login", body: `{"email":"carol@example.com","password":"not-her-password"}`, ctype: "application/json"})
	v.want(wrong, 401, "invalid_credentials")
	unknown := v.do(req{method: "POST", path: "/storage/auth/login", body: `{"email":"nobody@example.com","password":"not-her-password"}`, ctype: "application/json"})
	if unknown.code != 401 || !bytes.Equal(unknown.body, wrong.body) {
		t.Fatalf("unknown email: %s, wrong password: %s", unknown, wrong)
	}
	v.want(v.do(req{method: "POST", path: "/storage/auth/login", body: `not json`, ctype: "application/json"}), 400, "bad_request")

	// A new password ends the tokens issued before it.
	v.advance(2 * time.Second)
	v.want(v.do(req{method: "GET", path: "/storage/user/files", token: "carol"}), 200)
	if _, err := v.iam.SetPassword(context.Background(), "carol@example.com", "a-brand-new-password"); err != nil {
		t.Fatal(err)
	}
	v.want(v.do(req{method: "GET", path: "/storage/user/files", token: "carol"}), 401, "invalid_token")
	v.want(v.do(req{method: "GET", path: "/storage/org/files", token: "alpha:carol"}), 401, "invalid_token")
}

func TestPublicLimits(t *testing.T) {
	v := newEnv(t, storageapi.Config{MaxPublicFile: 1000, PublicRate: 3})
	small := []byte("small enough")
	for range 3 {
		v.upload("public", "", "a.txt", small)
	}
	body, ct := form("a.txt", "text/plain", small)
	r := v.do(req{method: "POST", path: "/storage/public/files", body: body, ctype: ct})
	v.want(r, 429, "rate_limited")
	if r.h.Get("Retry-After") != "21" {
		t.Fatalf("Retry-After %q, want 21 (one upload per 20 s)", r.h.Get("Retry-After"))
	}
	v.advance(20 * time.Second)
	v.upload("public", "", "a.txt", small)

	v.advance(time.Minute)
	body, ct = form("big.bin", "application/octet-stream", make([]byte, 1001))
	v.want(v.do(req{method: "POST", path: "/storage/public/files", body: body, ctype: ct}), 413, "too_large")

	// Switched off: anonymous uploads are refused; users still upload.
	off := newEnv(t, storageapi.Config{NoPublicUploads: true})
	off.addUser("dave@example.com", nil)
	body, ct = form("a.txt", "text/plain", small)
	off.want(off.do(req{method: "POST", path: "/storage/public/files", body: body, ctype: ct}), 403, "public_uploads_disabled")
	off.upload("user", "dave", "a.txt", small)
}

func TestListPaging(t *testing.T) {
	v := newEnv(t, storageapi.Config{})
	v.addUser("erin@example.com", nil)
	var want []string
	for i := range 7 {
		want = append(want, v.upload("user", "erin", fmt.Sprintf("f%d.txt", i), []byte(fmt.Sprint("file ", i))).FileID)
		v.advance(time.Millisecond)
	}
	var got []string
	path := "/storage/user/files?limit=3"
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("paging does not end")
		}
		var list struct {
			Files []file
			Next  string
		}
		r := v.do(req{method: "GET", path: path, token: "erin"})
		v.want(r, 200)
		r.json(t, &list)
		for _, f := range list.Files {
			got = append(got, f.FileID)
		}
		if list.Next == "" {
			break
		}
		if link := r.h.Get("Link"); !strings.Contains(link, "after="+list.Next) {
			t.Fatalf("Link %q", link)
		}
		path = "/storage/user/files?limit=3&after=" + list.Next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages give %v, uploads were %v (upload order)", got, want)
	}
	v.want(v.do(req{method: "GET", path: "/storage/user/files?limit=0", token: "erin"}), 400, "bad_request")
	v.want(v.do(req{method: "GET", path: "/storage/user/files?after=x", token: "erin"}), 400, "bad_request")
}

// TestDeleteOwners: a user or organization with files is deleted only
// with a purge, which takes their files, public links and space with it.
func TestDeleteOwners(t *testing.T) {
	v := newEnv(t, storageapi.Config{})
	ctx := context.Background()
	v.addUser("fay@example.com", map[string]storageapi.Role{"acme": storageapi.RoleAdmin})
	content := randomBytes(3, 300_000)
	f := v.upload("user", "fay", "big.bin", content)
	v.upload("org", "acme:fay", "big.bin", randomBytes(4, 1000))
	var u struct{ URL string }
	v.do(req{method: "POST", path: "/storage/user/files/" + f.FileID + "/url", token: "fay"}).json(t, &u)

	if err := v.iam.DeleteUser(ctx, "fay@example.com", false); !errors.Is(err, storageapi.ErrHasFiles) {
		t.Fatalf("deleting a user with files: %v", err)
	}
	if err := v.iam.DeleteOrg(ctx, "acme", false); !errors.Is(err, storageapi.ErrHasFiles) {
		t.Fatalf("deleting an organization with files: %v", err)
	}
	if err := v.iam.DeleteUser(ctx, "fay@example.com", true); err != nil {
		t.Fatal(err)
	}
	if err := v.iam.DeleteOrg(ctx, "acme", true); err != nil {
		t.Fatal(err)
	}
	v.want(v.do(req{method: "GET", path: "/storage/user/files", token: "fay"}), 401, "invalid_token")
	if code, _ := fetch(t, u.URL); code != 404 {
		t.Fatalf("a purged file's public URL: %d", code)
	}
	enginetest.Collect(t, v.e, v.advance)
	if _, err := v.e.Stat(blob.Sum(content)); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("a purged file's blob is still referenced: %v", err)
	}
	if err := v.e.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
