package mediaservice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/internal/testtool"
	"github.com/cairnstore/cairn/server"
	"github.com/cairnstore/cairn/server/internal/openapitest"
	"github.com/cairnstore/cairn/server/mediaservice"
)

type env struct {
	t       *testing.T
	e       *engine.Engine
	url     string
	now     atomic.Int64
	secrets map[string]string
	tokens  map[string]string
	// client checks every request and response against the API's
	// OpenAPI document, as served; it does not follow redirects.
	client *http.Client
}

var t0 = time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)

func newEnv(t *testing.T, maxFile int64) *env {
	v := &env{t: t, secrets: map[string]string{}, tokens: map[string]string{}}
	v.now.Store(t0.UnixNano())
	clock := func() time.Time { return time.Unix(0, v.now.Load()) }
	v.e = enginetest.Open(t, engine.Options{Now: clock})
	cfg := server.Config{
		Engine: v.e, Logger: enginetest.Logger(t), Now: clock,
		MediaService: mediaservice.Config{MaxFile: maxFile},
	}
	h := http.Handler(server.New(cfg))
	if e2 := enginetest.SecondNode(t, v.e); e2 != nil {
		cfg.Engine = e2
		h = testtool.Alternate(h, server.New(cfg))
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	v.url = ts.URL
	v.client = openapitest.New(t, ts.URL, "/openapi/mediaservice.json").Client()
	clients := mediaservice.NewClients(v.e)
	for _, c := range []struct {
		id, tenant string
		scopes     []string
	}{
		{"manager", "acme", []string{mediaservice.ScopeManage, mediaservice.ScopeRead}},
		{"reader", "acme", []string{mediaservice.ScopeRead}},
		{"writeonly", "acme", []string{mediaservice.ScopeManage}},
		{"other", "globex", []string{mediaservice.ScopeManage, mediaservice.ScopeRead}},
	} {
		secret, err := clients.Add(context.Background(), c.id, c.tenant, c.scopes)
		if err != nil {
			t.Fatal(err)
		}
		v.secrets[c.id] = secret
		v.tokens[c.id] = v.token(c.id, secret)
	}
	return v
}

func (v *env) token(id, secret string) string {
	req, _ := http.NewRequest("POST", v.url+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	res, err := v.client.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer res.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&tok)
	if res.StatusCode != 200 || tok.AccessToken == "" {
		v.t.Fatalf("token for %s: %d", id, res.StatusCode)
	}
	return tok.AccessToken
}

type resp struct {
	code int
	h    http.Header
	body []byte
}

func (r resp) String() string { return fmt.Sprintf("%d %.300s", r.code, r.body) }

func (v *env) do(method, path, client string, body io.Reader, ctype string, hdr ...string) resp {
	v.t.Helper()
	req, _ := http.NewRequest(method, v.url+path, body)
	if client != "" {
		req.Header.Set("Authorization", "Bearer "+v.tokens[client])
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	code, h, b := openapitest.Do(v.t, v.client, req, hdr...)
	return resp{code, h, b}
}

// TestDocumentCoversRoutes: the document's operations are the mounted
// routes.
func TestDocumentCoversRoutes(t *testing.T) {
	var mounted []string
	for _, rt := range mediaservice.New(mediaservice.Config{}).Routes() {
		mounted = append(mounted, rt.Method+" "+rt.Path)
	}
	openapitest.Routes(t, mediaservice.OpenAPI(), mounted)
}

func (v *env) want(r resp, code int, body string) {
	v.t.Helper()
	if r.code != code || body != "" && strings.TrimSpace(string(r.body)) != body {
		v.t.Fatalf("got %s, want %d %s", r, code, body)
	}
}

// multipartBody builds a BLOB request as the document describes it, and
// as a client generated from it sends it: a `file` part and a `body` part
// holding the asset as JSON (application/json, the part's declared
// encoding). Browsers and curl send the body part as a plain text field,
// which the server takes too (TestCurlForm).
func multipartBody(bodyJSON, filename string, file []byte) (io.Reader, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, _ := mw.CreateFormFile("file", filename)
	fw.Write(file)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="body"`)
	h.Set("Content-Type", "application/json")
	bw, _ := mw.CreatePart(h)
	bw.Write([]byte(bodyJSON))
	mw.Close()
	return &b, mw.FormDataContentType()
}

type asset struct {
	ID, Type, Access, URL string
	RefIDs                []struct{ ID, Type string } `json:"refIds"`
	Details               *struct {
		Filename, MimeType, ETag string
		Bytes                    *int64
	}
	Metadata struct {
		Version               int
		CreatedAt, ModifiedAt string
	}
}

func (v *env) get(tenant, id, client string) asset {
	v.t.Helper()
	r := v.do("GET", "/media/"+tenant+"/assets/"+id, client, nil, "")
	v.want(r, 200, "")
	var a asset
	json.Unmarshal(r.body, &a)
	return a
}

func idOf(t *testing.T, r resp) string {
	t.Helper()
	var x struct{ ID string }
	if err := json.Unmarshal(r.body, &x); err != nil || x.ID == "" || r.code != 201 {
		t.Fatalf("create: %s", r)
	}
	return x.ID
}

const (
	fault401 = `{"fault":{"detail":{"errorcode":"oauth.v2.InvalidAccessToken"},"faultstring":"Invalid access token"}}`
	expired  = `{"fault":{"detail":{"errorcode":"keymanagement.service.access_token_expired"},"faultstring":"Access Token expired"}}`
	forbid   = `{"code":403,"status":"Bad request","message":"The access to the requested resource has been forbidden by the server..","details":["Missing required scopes"]}`
	notFound = `{"code":404,"status":"element_resource_non_existing","message":"The asset with the requested code does not exist."}`
)

func TestAuth(t *testing.T) {
	v := newEnv(t, 0)
	link := `{"type":"LINK","access":"PUBLIC","url":"https://example.com/a.png"}`
	v.want(v.do("GET", "/media/acme/assets", "", nil, ""), 401, fault401)
	v.want(v.do("GET", "/media/acme/assets", "", nil, "", "Authorization", "Bearer x.y.z"), 401, fault401)
	v.want(v.do("POST", "/media/acme/assets", "reader", strings.NewReader(link), "application/json"), 403, forbid)
	v.want(v.do("GET", "/media/acme/assets", "reader", nil, ""), 200, "[]")
	v.want(v.do("GET", "/media/acme/assets", "writeonly", nil, ""), 200, "[]") // list: either scope
	id := idOf(t, v.do("POST", "/media/acme/assets", "writeonly", strings.NewReader(link), "application/json"))
	v.want(v.do("GET", "/media/acme/assets/"+id, "writeonly", nil, ""), 403, forbid) // retrieve: read scope
	// Another tenant's asset does not exist for it.
	v.want(v.do("GET", "/media/globex/assets/"+id, "other", nil, ""), 404, notFound)
	v.want(v.do("DELETE", "/media/globex/assets/"+id, "other", nil, ""), 404, notFound)
	// Tokens expire; bad client credentials are refused.
	v.now.Add(int64(2 * time.Hour))
	v.want(v.do("GET", "/media/acme/assets", "reader", nil, ""), 401, expired)
	req, _ := http.NewRequest("POST", v.url+"/oauth/token", strings.NewReader("grant_type=client_credentials&client_id=reader&client_secret=wrong"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, _ := http.DefaultClient.Do(req)
	if res.StatusCode != 401 {
		t.Errorf("bad client secret: %d", res.StatusCode)
	}
	res.Body.Close()
	req, _ = http.NewRequest("POST", v.url+"/oauth/token", strings.NewReader("grant_type=password&client_id=reader&client_secret="+url.QueryEscape(v.secrets["reader"])))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, _ = http.DefaultClient.Do(req)
	if res.StatusCode != 400 {
		t.Errorf("password grant: %d", res.StatusCode)
	}
	res.Body.Close()
	if tok := v.token("reader", v.secrets["reader"]); tok == "" {
		t.Fatal("form-field client credentials refused")
	}
}

func TestAssets(t *testing.T) {
	v := newEnv(t, 64<<10)
	file := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{1, 2, 3}, 3000)...)
	body, ct := multipartBody(`{"type":"BLOB","access":"PRIVATE","details":{"filename":"banner.png"}}`, "local.png", file)
	id := idOf(t, v.do("POST", "/media/acme/assets", "manager", body, ct))
	a := v.get("acme", id, "reader")
	if a.Type != "BLOB" || a.Access != "PRIVATE" || a.Details == nil || a.Details.Filename != "banner.png" || a.Details.MimeType != "image/png" ||
		*a.Details.Bytes != int64(len(file)) || a.Details.ETag != `"`+blob.Sum(file).String()+`"` || a.Metadata.Version != 1 ||
		a.Metadata.CreatedAt != "2026-02-01T09:00:00.000Z" || a.URL != v.url+"/media/acme/assets/"+id+"/download" {
		t.Fatalf("asset: %+v", a)
	}
	r := v.do("GET", "/media/acme/assets/"+id+"/download", "reader", nil, "")
	if r.code != 200 || !bytes.Equal(r.body, file) || r.h.Get("ETag") != a.Details.ETag || r.h.Get("Content-Type") != "image/png" {
		t.Fatalf("download: %d %q", r.code, r.h)
	}
	r = v.do("GET", "/media/acme/assets/"+id+"/download", "reader", nil, "", "Range", "bytes=8-11")
	if r.code != 206 || !bytes.Equal(r.body, file[8:12]) {
		t.Fatalf("ranged download: %s", r)
	}
	v.want(v.do("GET", "/media/acme/assets/"+id+"/download", "reader", nil, "", "If-None-Match", a.Details.ETag), 304, "")

	// PUBLIC BLOB: download redirects to its public URL, which serves it.
	body, ct = multipartBody(`{"type":"BLOB","access":"PUBLIC","refIds":[{"id":"c1","type":"CATEGORY"}]}`, "pub.txt", []byte("public text"))
	pub := idOf(t, v.do("POST", "/media/acme/assets", "manager", body, ct))
	r = v.do("GET", "/media/acme/assets/"+pub+"/download", "reader", nil, "")
	pa := v.get("acme", pub, "reader")
	if r.code != 301 || r.h.Get("Location") != pa.URL || !strings.Contains(pa.URL, "/f/") {
		t.Fatalf("public download: %s %q, asset url %q", r, r.h.Get("Location"), pa.URL)
	}
	res, _ := http.Get(pa.URL)
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(got) != "public text" {
		t.Fatalf("public URL served %q", got)
	}
	// LINK: stored, never fetched; download redirects to it.
	r = v.do("POST", "/media/acme/assets", "manager", strings.NewReader(`{"id":"my-link","type":"LINK","access":"PUBLIC","url":"http://127.0.0.1:1/never-fetched.png"}`), "application/json")
	if idOf(t, r) != "my-link" {
		t.Fatalf("client id: %s", r)
	}
	r = v.do("GET", "/media/acme/assets/my-link/download", "reader", nil, "")
	if r.code != 301 || r.h.Get("Location") != "http://127.0.0.1:1/never-fetched.png" {
		t.Fatalf("link download: %s", r)
	}
	v.want(v.do("POST", "/media/acme/assets", "manager", strings.NewReader(`{"id":"my-link","type":"LINK","access":"PUBLIC","url":"https://x.example"}`), "application/json"), 409, "")
	for _, bad := range []string{
		`{"type":"LINK","access":"PUBLIC","url":"ftp://x.example/a"}`,
		`{"type":"LINK","access":"PUBLIC","url":"javascript:alert(1)"}`,
		`{"type":"LINK","access":"PUBLIC"}`,
		`{"type":"LINK","access":"SECRET","url":"https://x.example"}`,
		`{"type":"BLOB","access":"PUBLIC","url":"https://x.example"}`,
		`{"id":"bad id","type":"LINK","access":"PUBLIC","url":"https://x.example"}`,
		`not json`,
	} {
		v.want(v.do("POST", "/media/acme/assets", "manager", strings.NewReader(bad), "application/json"), 400, "")
	}
	body, ct = multipartBody(`{"type":"BLOB","access":"PRIVATE"}`, "big.bin", make([]byte, 64<<10+1))
	v.want(v.do("POST", "/media/acme/assets", "manager", body, ct), 413, `{"code":413,"status":"Request Entity Too Large","message":"The part named [file] exceeds the maximum allowed content length."}`)

	// Update: version required and checked; type and access immutable.
	newFile := []byte("GIF89a replaced")
	put := func(bodyJSON string) resp {
		body, ct := multipartBody(bodyJSON, "new.gif", newFile)
		return v.do("PUT", "/media/acme/assets/"+id, "manager", body, ct)
	}
	v.want(put(`{"type":"BLOB","access":"PRIVATE"}`), 400, `{"code":400,"status":"Bad request","message":"The document version has to be provided on update operations.","details":["https://saas-ag.com/patterns/errortypes.html"]}`)
	v.want(put(`{"type":"BLOB","access":"PRIVATE","metadata":{"version":7}}`), 409, `{"code":409,"status":"Conflict","message":"Conflict"}`)
	v.want(put(`{"type":"BLOB","access":"PUBLIC","metadata":{"version":1}}`), 400, "")
	v.now.Add(int64(time.Minute))
	v.want(put(`{"type":"BLOB","access":"PRIVATE","metadata":{"version":1},"refIds":[{"id":"x","type":"LABEL"}]}`), 204, "")
	a = v.get("acme", id, "reader")
	if a.Metadata.Version != 2 || a.Metadata.ModifiedAt != "2026-02-01T09:01:00.000Z" || a.Metadata.CreatedAt != "2026-02-01T09:00:00.000Z" || len(a.RefIDs) != 1 || a.Details.MimeType != "image/gif" {
		t.Fatalf("after update: %+v", a)
	}
	if r := v.do("GET", "/media/acme/assets/"+id+"/download", "reader", nil, ""); !bytes.Equal(r.body, newFile) {
		t.Fatal("the new file did not replace the bytes")
	}
	v.want(v.do("PUT", "/media/acme/assets/my-link", "manager", strings.NewReader(`{"type":"LINK","access":"PUBLIC","url":"https://new.example/b","metadata":{"version":1}}`), "application/json"), 204, "")
	v.want(v.do("PUT", "/media/acme/assets/nope", "manager", strings.NewReader(`{"type":"LINK","access":"PUBLIC","url":"https://new.example/b","metadata":{"version":1}}`), "application/json"), 404, notFound)

	v.want(v.do("DELETE", "/media/acme/assets/"+id, "manager", nil, ""), 204, "")
	v.want(v.do("GET", "/media/acme/assets/"+id, "reader", nil, ""), 404, notFound)
	v.want(v.do("DELETE", "/media/acme/assets/"+pub, "manager", nil, ""), 204, "")
	if res, _ := http.Get(pa.URL); res.StatusCode != 404 {
		t.Fatalf("public URL after delete: %d", res.StatusCode)
	}
}

// TestOtherTenant: a path naming another tenant than the token's is
// answered with a status the contract lists for the operation: the 400
// "Ambiguous tenant" where it is documented (create and update: "Tenant
// in the header is not matching with the one provided in the URI."),
// 404 exactly as a missing asset for retrieve, download and delete, and
// 403 for a list, whether or not the tenant exists.
func TestOtherTenant(t *testing.T) {
	v := newEnv(t, 0)
	link := `{"type":"LINK","access":"PUBLIC","url":"https://example.com/a.png"}`
	id := idOf(t, v.do("POST", "/media/globex/assets", "other", strings.NewReader(link), "application/json"))
	ambiguous := `{"code":400,"status":"Bad request","message":"Tenant in the header is not matching with the one provided in the URI.","details":["https://saas-ag.com/patterns/errortypes.html"]}`
	update := `{"type":"LINK","access":"PUBLIC","url":"https://example.com/b.png","metadata":{"version":1}}`
	for _, tenant := range []string{"globex", "nosuchtenant"} {
		v.want(v.do("POST", "/media/"+tenant+"/assets", "manager", strings.NewReader(link), "application/json"), 400, ambiguous)
		v.want(v.do("PUT", "/media/"+tenant+"/assets/"+id, "manager", strings.NewReader(update), "application/json"), 400, ambiguous)
		for _, path := range []string{id, id + "/download", "missing", "missing/download"} {
			v.want(v.do("GET", "/media/"+tenant+"/assets/"+path, "manager", nil, ""), 404, notFound)
		}
		v.want(v.do("DELETE", "/media/"+tenant+"/assets/"+id, "manager", nil, ""), 404, notFound)
		v.want(v.do("GET", "/media/"+tenant+"/assets", "manager", nil, ""), 403, forbid)
	}
	// Nothing of globex's changed.
	if a := v.get("globex", id, "other"); a.URL != "https://example.com/a.png" || a.Metadata.Version != 1 {
		t.Fatalf("globex's asset after another tenant's requests: %+v", a)
	}
}

// TestRefIDs: the 2025-04 contract's RefId.type is an enum (BRAND,
// CATEGORY, LABEL, PRODUCT), so another type is a 400; and it has no rule
// tying references to PUBLIC: its own example "Asset of the LINK type
// added for a product" is PRIVATE with a PRODUCT reference.
func TestRefIDs(t *testing.T) {
	v := newEnv(t, 0)
	example := `{"id":"123e06ecf0452c2d6c0b81390","type":"LINK","access":"PRIVATE","url":"https://emporix.io/docs/index.html","refIds":[{"id":"567e06ecf0452c2d6c0b81392","type":"PRODUCT"}]}`
	if id := idOf(t, v.do("POST", "/media/acme/assets", "manager", strings.NewReader(example), "application/json")); id != "123e06ecf0452c2d6c0b81390" {
		t.Fatalf("the contract's example made %q", id)
	}
	if a := v.get("acme", "123e06ecf0452c2d6c0b81390", "reader"); a.Access != "PRIVATE" || len(a.RefIDs) != 1 || a.RefIDs[0].Type != "PRODUCT" {
		t.Fatalf("the contract's example stored as %+v", a)
	}
	for _, typ := range []string{"BRAND", "CATEGORY", "LABEL"} {
		body, ct := multipartBody(`{"type":"BLOB","access":"PRIVATE","refIds":[{"id":"r1","type":"`+typ+`"}]}`, "a.txt", []byte("private, referenced by "+typ))
		idOf(t, v.do("POST", "/media/acme/assets", "manager", body, ct))
	}
	for _, typ := range []string{"WIDGET", "MODULE", "product", ""} {
		body := `{"type":"LINK","access":"PUBLIC","url":"https://example.com/x","refIds":[{"id":"r1","type":"` + typ + `"}]}`
		r := v.do("POST", "/media/acme/assets", "manager", strings.NewReader(body), "application/json")
		var e struct {
			Code            int
			Status, Message string
		}
		if json.Unmarshal(r.body, &e) != nil || r.code != 400 || e.Code != 400 || e.Status == "" || e.Message == "" {
			t.Errorf("refIds type %q: %s, want 400 in the error shape", typ, r)
		}
		put := `{"type":"LINK","access":"PRIVATE","url":"https://emporix.io/docs/index.html","metadata":{"version":1},"refIds":[{"id":"r1","type":"` + typ + `"}]}`
		v.want(v.do("PUT", "/media/acme/assets/123e06ecf0452c2d6c0b81390", "manager", strings.NewReader(put), "application/json"), 400, "")
	}
}

// TestCurlForm creates a BLOB exactly as the documentation's curl does.
func TestCurlForm(t *testing.T) {
	curl := testtool.Path(t, "curl", "apt-get install -y curl")
	v := newEnv(t, 0)
	f := filepath.Join(t.TempDir(), "category-banner.png")
	os.WriteFile(f, append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 100)...), 0o600)
	out, err := exec.Command(curl, "-sS", "-X", "POST", v.url+"/media/acme/assets",
		"-H", "Authorization: Bearer "+v.tokens["manager"],
		"--form", "file=@"+f,
		"--form", `body={"type":"BLOB","access":"PUBLIC","refIds":[{"id":"c1","type":"CATEGORY"}]}`).CombinedOutput()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, out)
	}
	var x struct{ ID string }
	if json.Unmarshal(out, &x) != nil || x.ID == "" {
		t.Fatalf("curl --form answered %s", out)
	}
	a := v.get("acme", x.ID, "reader")
	if a.Details.Filename != "category-banner.png" || a.Details.MimeType != "image/png" || *a.Details.Bytes != 108 {
		t.Fatalf("asset from curl: %+v", a.Details)
	}
}

// TestListing checks q, sort, paging and X-Total-Count against a model.
func TestListing(t *testing.T) {
	v := newEnv(t, 0)
	rng := rand.New(rand.NewPCG(4, 5))
	type m struct {
		id, access, typ, mime, created, file string
		refs                                 []string
		bytes                                int64
	}
	var model []m
	for i := range 40 {
		v.now.Add(int64(time.Minute))
		access := []string{"PUBLIC", "PRIVATE"}[rng.IntN(2)]
		var refs []string
		var refJSON []string
		for range rng.IntN(3) {
			r := fmt.Sprint("r", rng.IntN(5))
			refs = append(refs, r)
			typ := "LABEL"
			if access == "PUBLIC" {
				typ = "CATEGORY"
			}
			refJSON = append(refJSON, fmt.Sprintf(`{"id":%q,"type":%q}`, r, typ))
		}
		x := m{access: access, refs: refs, created: time.Unix(0, v.now.Load()).UTC().Format("2006-01-02T15:04:05.000Z")}
		refsJ := "[" + strings.Join(refJSON, ",") + "]"
		if i%3 == 0 {
			x.typ = "LINK"
			x.id = idOf(t, v.do("POST", "/media/acme/assets", "manager", strings.NewReader(fmt.Sprintf(`{"type":"LINK","access":%q,"url":"https://x.example/%d","refIds":%s}`, access, i, refsJ)), "application/json"))
		} else {
			x.typ = "BLOB"
			x.bytes = int64(50 + rng.IntN(400))
			content := bytes.Repeat([]byte{byte(i)}, int(x.bytes))
			x.mime = "application/octet-stream"
			if i%2 == 0 {
				content = append([]byte("%PDF-1.4\n"), content...)
				x.bytes += 9
				x.mime = "application/pdf"
			}
			x.file = fmt.Sprintf("f%d.bin", i)
			body, ct := multipartBody(fmt.Sprintf(`{"type":"BLOB","access":%q,"refIds":%s}`, access, refsJ), x.file, content)
			x.id = idOf(t, v.do("POST", "/media/acme/assets", "manager", body, ct))
		}
		model = append(model, x)
	}
	created := func(i int) string { return model[i].created }
	for _, tc := range []struct {
		q    string
		keep func(m) bool
	}{
		{"", func(m) bool { return true }},
		{"refIds.id:r2", func(x m) bool { return slices.Contains(x.refs, "r2") }},
		{"refIds.id:(r1,r3)", func(x m) bool { return slices.Contains(x.refs, "r1") || slices.Contains(x.refs, "r3") }},
		{"access:PUBLIC type:BLOB", func(x m) bool { return x.access == "PUBLIC" && x.typ == "BLOB" }},
		{"details.mimeType:application/pdf", func(x m) bool { return x.mime == "application/pdf" }},
		{"details.bytes:>200", func(x m) bool { return x.typ == "BLOB" && x.bytes > 200 }},
		{"details.bytes:(>=100 AND <300)", func(x m) bool { return x.typ == "BLOB" && x.bytes >= 100 && x.bytes < 300 }},
		{fmt.Sprintf(`metadata.createdAt:(>=%q AND <%q)`, created(5), created(20)), func(x m) bool { return x.created >= created(5) && x.created < created(20) }},
		{fmt.Sprintf(`metadata.createdAt:>%q`, created(30)), func(x m) bool { return x.created > created(30) }},
		{"details:null", func(x m) bool { return x.typ == "LINK" }},
		{"details:exists", func(x m) bool { return x.typ == "BLOB" }},
		{"details.filename:~^f1", func(x m) bool { return x.typ == "BLOB" && strings.HasPrefix(x.file, "f1") }},
		{"refIds.id:missing", func(x m) bool { return len(x.refs) == 0 }}, // no element has an id
		{"id:" + model[7].id, func(x m) bool { return x.id == model[7].id }},
	} {
		var want []string
		for _, x := range model {
			if tc.keep(x) {
				want = append(want, x.id)
			}
		}
		slices.Sort(want) // default order: id
		r := v.do("GET", "/media/acme/assets?pageSize=1000&q="+url.QueryEscape(tc.q), "reader", nil, "", "X-Total-Count", "true")
		var got []asset
		if err := json.Unmarshal(r.body, &got); err != nil || r.code != 200 {
			t.Fatalf("q=%s: %s", tc.q, r)
		}
		var ids []string
		for _, a := range got {
			ids = append(ids, a.ID)
		}
		if !slices.Equal(ids, want) || r.h.Get("X-Total-Count") != fmt.Sprint(len(want)) {
			t.Errorf("q=%s:\n got %q (total %s)\nwant %q", tc.q, ids, r.h.Get("X-Total-Count"), want)
		}
	}
	// Sort and paging.
	r := v.do("GET", "/media/acme/assets?sort=metadata.createdAt:desc&pageNumber=2&pageSize=7", "reader", nil, "")
	var page []asset
	json.Unmarshal(r.body, &page)
	if len(page) != 7 || page[0].ID != model[len(model)-8].id || r.h.Get("X-Total-Count") != "" {
		t.Fatalf("sorted page 2: %d items, first %s, want %s", len(page), page[0].ID, model[len(model)-8].id)
	}
	for _, bad := range []string{"q=id", "q=id:(a", "pageNumber=0", "pageSize=x", "q=" + url.QueryEscape("id:~(")} {
		v.want(v.do("GET", "/media/acme/assets?"+bad, "reader", nil, ""), 400, "")
	}
}

// TestLockingRace: two updates with the same version race; one wins.
func TestLockingRace(t *testing.T) {
	v := newEnv(t, 0)
	id := idOf(t, v.do("POST", "/media/acme/assets", "manager", strings.NewReader(`{"type":"LINK","access":"PUBLIC","url":"https://x.example"}`), "application/json"))
	for version := 1; version <= 10; version++ {
		codes := make([]int, 2)
		var wg sync.WaitGroup
		for i := range 2 {
			wg.Go(func() {
				codes[i] = v.do("PUT", "/media/acme/assets/"+id, "manager", strings.NewReader(fmt.Sprintf(`{"type":"LINK","access":"PUBLIC","url":"https://x.example/%d","metadata":{"version":%d}}`, i, version)), "application/json").code
			})
		}
		wg.Wait()
		slices.Sort(codes)
		if codes[0] != 204 || codes[1] != 409 {
			t.Fatalf("version %d: %v, want one 204 and one 409", version, codes)
		}
	}
}

// TestListCost: a read client's q of costly regular expressions over an
// asset with 100 long refIds, or a sort by refIds, costs at most the
// request's budget: 400, at once, instead of hundreds of milliseconds of
// CPU; a sort by a documented scalar works, and one by a name no asset
// has (the document's own example, sort=name) leaves the order alone.
// Paging numbers are bounded (400), never overflowed into a panic.
func TestListCost(t *testing.T) {
	v := newEnv(t, 0)
	var refs []string
	for i := range 100 {
		refs = append(refs, fmt.Sprintf(`{"id":"%s","type":"LABEL"}`, strings.Repeat(fmt.Sprint(i%10), 255)+"x"))
	}
	body := `{"type":"LINK","access":"PRIVATE","url":"https://example.com/a.png","refIds":[` + strings.Join(refs, ",") + `]}`
	for range 3 {
		idOf(t, v.do("POST", "/media/acme/assets", "manager", strings.NewReader(body), "application/json"))
	}
	q := strings.TrimSpace(strings.Repeat(`refIds.id:~[0-9a-z]{200}x `, 7) + `refIds.id:~[0-9a-z]{200}y`)
	start := time.Now()
	r := v.do("GET", "/media/acme/assets?q="+url.QueryEscape(q), "reader", nil, "")
	d := time.Since(start)
	if r.code != 400 || !strings.Contains(string(r.body), "too costly") {
		t.Errorf("a q of 8 heavy regular expressions over 100 refIds: %s, want 400 too costly", r)
	}
	if d > raceSlowdown*time.Second { // hundreds of milliseconds of CPU would be many seconds on this machine
		t.Errorf("answered after %v", d)
	}
	t.Logf("costly q answered in %v", d)
	r = v.do("GET", "/media/acme/assets?q="+url.QueryEscape(`refIds.id:~(.{0,30}){0,30}z`), "reader", nil, "")
	if r.code != 400 || !strings.Contains(string(r.body), "too complex") {
		t.Errorf("a regular expression of ~1900 RE2 instructions: %s, want 400", r)
	}
	for _, tc := range []struct {
		sort string
		code int
	}{
		{"refIds", 400},
		{"refIds.id:desc", 400},
		{"details", 400},
		{"metadata.createdAt:desc", 200},
		{"name,metadata.createdAt:desc", 200},
		{"url,id:DESC", 200},
	} {
		if r := v.do("GET", "/media/acme/assets?sort="+url.QueryEscape(tc.sort), "reader", nil, ""); r.code != tc.code {
			t.Errorf("sort=%s: %s, want %d", tc.sort, r, tc.code)
		}
	}
	for _, page := range []string{"pageNumber=9223372036854775807", "pageNumber=9223372036854775807&pageSize=10000", "pageNumber=1000001", "pageNumber=0", "pageSize=0", "pageSize=10001"} {
		if r := v.do("GET", "/media/acme/assets?"+page, "reader", nil, ""); r.code != 400 {
			t.Errorf("%s: %s, want 400", page, r)
		}
	}
	if r := v.do("GET", "/media/acme/assets?pageNumber=1000000&pageSize=10000", "reader", nil, ""); r.code != 200 || string(bytes.TrimSpace(r.body)) != "[]" {
		t.Errorf("the last page number allowed: %s, want 200 []", r)
	}
}

// TestClientMadeAgain: a client deleted and made again under the same
// ID, for another tenant and with more scopes, does not accept the old
// client's tokens there, nor anywhere.
func TestClientMadeAgain(t *testing.T) {
	v := newEnv(t, 0)
	clients := mediaservice.NewClients(v.e)
	secret, err := clients.Add(context.Background(), "app", "acme", []string{mediaservice.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	v.tokens["old"] = v.token("app", secret)
	v.want(v.do("GET", "/media/acme/assets", "old", nil, ""), 200, "")
	if err := clients.Delete(context.Background(), "app"); err != nil {
		t.Fatal(err)
	}
	secret, err = clients.Add(context.Background(), "app", "globex", []string{mediaservice.ScopeManage, mediaservice.ScopeRead})
	if err != nil {
		t.Fatal(err)
	}
	v.tokens["new"] = v.token("app", secret)
	v.want(v.do("GET", "/media/globex/assets", "old", nil, ""), 401, fault401)
	v.want(v.do("POST", "/media/globex/assets", "old", strings.NewReader(`{"type":"LINK","access":"PUBLIC","url":"https://example.com/x"}`), "application/json"), 401, fault401)
	v.want(v.do("GET", "/media/acme/assets", "old", nil, ""), 401, fault401)
	v.want(v.do("GET", "/media/globex/assets", "new", nil, ""), 200, "")
}

// TestMigrate: a store whose index records an earlier version kept under
// "<tenant>/<path>=<value>" tenants answers indexed queries as before once
// Migrate ran, and the index records' tenants are tenants only.
func TestMigrate(t *testing.T) {
	v := newEnv(t, 0)
	for i, ref := range []string{"p1", "p2", "p1"} {
		body := fmt.Sprintf(`{"type":"LINK","access":"PUBLIC","url":"https://x.example/%d","refIds":[{"id":%q,"type":"PRODUCT"}]}`, i, ref)
		idOf(t, v.do("POST", "/media/acme/assets", "manager", strings.NewReader(body), "application/json"))
	}
	queries := []string{"refIds.id:p1", "refIds.id:p2%20access:PUBLIC", "type:LINK"}
	list := func() []string {
		var out []string
		for _, q := range queries {
			r := v.do("GET", "/media/acme/assets?q="+q, "reader", nil, "")
			out = append(out, string(r.body))
		}
		return out
	}
	want := list()
	ctx := context.Background()
	if err := mediaservice.OldLayout(ctx, v.e); err != nil {
		t.Fatal(err)
	}
	if got := list(); slices.Equal(got, want) {
		t.Fatal("the old layout answers as the new: the test would prove nothing")
	}
	for range 2 { // the second is a no-op
		if err := mediaservice.Migrate(ctx, v.e); err != nil {
			t.Fatal(err)
		}
	}
	if got := list(); !slices.Equal(got, want) {
		t.Fatalf("after Migrate:\n%q\nwant\n%q", got, want)
	}
	if tenants, err := mediaservice.IndexTenants(v.e); err != nil || len(tenants) != 0 {
		t.Fatalf("index records with tenants %q, %v", tenants, err)
	}
}
