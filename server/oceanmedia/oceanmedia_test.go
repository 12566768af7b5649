package oceanmedia_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/mail"
	"github.com/cairnstore/cairn/internal/testtool"
	"github.com/cairnstore/cairn/server"
	"github.com/cairnstore/cairn/server/internal/openapitest"
	"github.com/cairnstore/cairn/server/internal/web"
	"github.com/cairnstore/cairn/server/oceanmedia"
)

type env struct {
	t      *testing.T
	e      *engine.Engine
	url    string
	now    atomic.Int64
	tokens map[string]string
	ids    map[string]string // user name → API user ID
	mails  chan string
	// client checks every request and response against the API's
	// OpenAPI document, as served.
	client *http.Client
}

var t0 = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

// tick moves the clock a moment on: with no GC grace period, that is
// all enginetest.Collect needs (tokens live on).
func (v *env) tick(time.Duration) { v.now.Add(int64(time.Millisecond)) }

func newEnv(t *testing.T) *env {
	v := &env{t: t, tokens: map[string]string{}, ids: map[string]string{}, mails: make(chan string, 10)}
	v.now.Store(t0.UnixNano())
	clock := func() time.Time { return time.Unix(0, v.now.Load()) }
	v.e = enginetest.Open(t, engine.Options{Now: clock, GCGrace: -1})
	smtpAddr := fakeSMTP(t, v.mails)
	cfg := server.Config{
		Engine: v.e, Logger: enginetest.Logger(t), Now: clock,
		OceanMedia: oceanmedia.Config{Notify: mail.Sender{Addr: smtpAddr, From: "cairn@test"}.Send},
	}
	h := http.Handler(server.New(cfg))
	if e2 := enginetest.SecondNode(t, v.e); e2 != nil {
		cfg.Engine = e2
		h = testtool.Alternate(h, server.New(cfg))
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	v.url = ts.URL
	v.client = openapitest.New(t, ts.URL, "/openapi/oceanmedia.json").Client()
	users := oceanmedia.NewUsers(v.e)
	for name, right := range map[string]oceanmedia.Right{"writer": oceanmedia.ReadWrite, "reader": oceanmedia.ReadOnly} {
		usr, pw, err := users.Add(context.Background(), name, "", right)
		if err != nil {
			t.Fatal(err)
		}
		v.ids[name] = usr.ID
		r := v.do("POST", "/v1/authentications", "", nil, "X-API-Authenticate", base64.StdEncoding.EncodeToString([]byte(name+":"+pw)))
		if r.code != 201 {
			t.Fatalf("authenticate %s: %s", name, r)
		}
		var a struct{ Authentication struct{ Token string } }
		json.Unmarshal(r.body, &a)
		v.tokens[name] = a.Authentication.Token
	}
	return v
}

type resp struct {
	code int
	h    http.Header
	body []byte
}

func (r resp) String() string { return fmt.Sprintf("%d %.400s", r.code, r.body) }

func (v *env) do(method, path, user string, body any, hdr ...string) resp {
	v.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, v.url+path, rd)
	if user != "" {
		req.Header.Set("X-API-Token", v.tokens[user])
	}
	req.Header.Set("Content-Type", "application/json")
	code, h, b := openapitest.Do(v.t, v.client, req, hdr...)
	return resp{code, h, b}
}

// TestDocumentCoversRoutes: the document's operations are the mounted
// routes.
func TestDocumentCoversRoutes(t *testing.T) {
	var mounted []string
	for _, rt := range oceanmedia.New(oceanmedia.Config{Deps: web.Deps{Engine: enginetest.Open(t, engine.Options{})}}).Routes() {
		mounted = append(mounted, rt.Method+" "+rt.Path)
	}
	openapitest.Routes(t, oceanmedia.OpenAPI(), mounted)
}

func (v *env) want(r resp, code int, body string) {
	v.t.Helper()
	if r.code != code || body != "" && strings.TrimSpace(string(r.body)) != body {
		v.t.Fatalf("got %s, want %d %s", r, code, body)
	}
}

type hyperlink struct{ Href, Type string }

type medium struct {
	Links       map[string]hyperlink `json:"_links"`
	App         string               `json:"app"`
	Context     string               `json:"context"`
	Name        string               `json:"name"`
	Locale      string               `json:"locale"`
	FileName    string               `json:"file_name"`
	ContentType string               `json:"content_type"`
	Bytesize    int64                `json:"bytesize"`
	Tags        string               `json:"tags"`
	DeleteAt    *string              `json:"delete_at"`
	Email       *string              `json:"email"`
	CreatedAt   string               `json:"created_at"`
	UpdatedAt   string               `json:"updated_at"`
	LockVersion int64                `json:"lock_version"`
}

func (m medium) id() string {
	h := m.Links["self"].Href
	return h[strings.LastIndexByte(h, '/')+1:]
}

func decode(t *testing.T, b []byte) medium {
	t.Helper()
	var w struct{ Medium medium }
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return w.Medium
}

func newMedium(app, ctx, name, locale, ctype, file string) map[string]any {
	return map[string]any{"app": app, "context": ctx, "name": name, "locale": locale, "content_type": ctype, "file_name": file}
}

func TestAuth(t *testing.T) {
	v := newEnv(t)
	v.want(v.do("GET", "/v1/media", "", nil), 400, `{"_api_error":["X-API-Token missing"]}`)
	v.want(v.do("GET", "/v1/media", "", nil, "X-API-Token", "bogus"), 400, `{"_api_error":["Unknown authentication"]}`)
	v.want(v.do("POST", "/v1/authentications", "", nil), 400, `{"_api_error":["X-API-Authenticate missing"]}`)
	v.want(v.do("POST", "/v1/authentications", "", nil, "X-API-Authenticate", base64.StdEncoding.EncodeToString([]byte("writer:wrong-password"))), 403, `{"_api_error":["Does not authenticate"]}`)
	v.want(v.do("POST", "/v1/authentications", "", nil, "X-API-Authenticate", base64.StdEncoding.EncodeToString([]byte("nobody:wrong-password"))), 403, `{"_api_error":["Does not authenticate"]}`)
	v.want(v.do("GET", "/v1/media", "reader", nil), 200, "[]")
	v.want(v.do("POST", "/v1/media", "reader", newMedium("a", "c", "n", "sv-SE", "image/png", "f.png")), 403, `{"_api_error":["Not authorized"]}`)
	v.now.Add(int64(31 * time.Minute))
	v.want(v.do("GET", "/v1/media", "reader", nil), 419, `{"_api_error":["Authentication expired"]}`)
}

func TestCRUD(t *testing.T) {
	v := newEnv(t)
	payload := bytes.Repeat([]byte("\x89PNG image bytes "), 500)
	body := newMedium("foo", "bar", "header-pic", "sv-SE", "image/png", "header.png")
	body["payload"] = base64.StdEncoding.EncodeToString(payload)
	body["tags"] = "web, layout"
	body["unknown_field"] = "ignored"
	r := v.do("POST", "/v1/media", "writer", body)
	if r.code != 201 {
		t.Fatalf("POST: %s", r)
	}
	m := decode(t, r.body)
	if r.h.Get("Location") != m.Links["self"].Href || !strings.HasPrefix(m.Links["self"].Href, v.url+"/v1/media/") {
		t.Fatalf("Location %q, self %q", r.h.Get("Location"), m.Links["self"].Href)
	}
	var raw struct{ Medium map[string]json.RawMessage }
	json.Unmarshal(r.body, &raw)
	var links map[string]json.RawMessage
	json.Unmarshal(raw.Medium["_links"], &links)
	if len(links) != 4 || raw.Medium["id"] != nil || raw.Medium["payload"] != nil || raw.Medium["unknown_field"] != nil {
		t.Fatalf("representation: %s", r.body)
	}
	if string(raw.Medium["delete_at"]) != "null" || m.CreatedAt != "2026-05-01T10:00:00Z" || m.LockVersion != 0 || m.Bytesize != int64(len(payload)) {
		t.Fatalf("fields: %s", r.body)
	}
	if m.Links["url"].Type != "image/png" || m.Links["creator"].Href != v.url+"/v1/api_users/"+v.ids["writer"] {
		t.Fatalf("links: %+v", m.Links)
	}
	// The url link serves the bytes publicly, with ranges.
	res, err := http.Get(m.Links["url"].Href)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(got, payload) || res.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("url: %d %q", res.StatusCode, res.Header)
	}
	req, _ := http.NewRequest("GET", m.Links["url"].Href, nil)
	req.Header.Set("Range", "bytes=0-9")
	res, _ = http.DefaultClient.Do(req)
	got, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 206 || !bytes.Equal(got, payload[:10]) {
		t.Fatalf("url range: %d", res.StatusCode)
	}

	self := "/v1/media/" + m.id()
	if g := decode(t, v.do("GET", self, "reader", nil).body); g.Name != "header-pic" {
		t.Fatalf("GET: %+v", g)
	}
	v.want(v.do("POST", "/v1/media", "writer", newMedium("foo", "bar", "header-pic", "sv-SE", "image/png", "other.png")), 422, `{"_api_error":["Resource not unique"]}`)
	v.want(v.do("POST", "/v1/media", "writer", newMedium("foo", "bar", "x", "sv_se", "image/png", "x.png")), 422, `{"locale":["is invalid"]}`)
	v.want(v.do("POST", "/v1/media", "writer", map[string]any{"app": "foo"}), 422, `{"content_type":["can't be blank"],"context":["can't be blank"],"file_name":["can't be blank"],"locale":["can't be blank"],"name":["can't be blank"]}`)
	bad := newMedium("foo", "bar", "y", "sv-SE", "image/png", "y.png")
	bad["payload"] = "!!notbase64"
	v.want(v.do("POST", "/v1/media", "writer", bad), 422, `{"payload":["is invalid"]}`)

	// PUT: PATCH semantics under optimistic locking.
	v.want(v.do("PUT", self, "writer", map[string]any{"tags": "x"}), 422, `{"_api_error":["Missing resource attributes"]}`)
	v.want(v.do("PUT", self, "writer", map[string]any{"tags": "x", "lock_version": 5}), 409, `{"_api_error":["Stale Medium"]}`)
	v.want(v.do("PUT", "/v1/media/nope", "writer", map[string]any{"lock_version": 0}), 404, `{"_api_error":["Not found"]}`)
	v.now.Add(int64(time.Minute))
	newBytes := []byte("GIF89a new bytes")
	r = v.do("PATCH", self, "writer", map[string]any{"tags": "new", "lock_version": 0, "payload": base64.StdEncoding.EncodeToString(newBytes)})
	u := decode(t, r.body)
	if r.code != 200 || u.LockVersion != 1 || u.Tags != "new" || u.Name != "header-pic" || u.UpdatedAt != "2026-05-01T10:01:00Z" || u.Bytesize != int64(len(newBytes)) {
		t.Fatalf("PATCH: %s", r)
	}
	res, _ = http.Get(u.Links["url"].Href)
	got, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if !bytes.Equal(got, newBytes) {
		t.Fatal("the payload did not replace the bytes")
	}
	v.want(v.do("PUT", self, "writer", map[string]any{"locale": "xx", "lock_version": 1}), 422, `{"locale":["is invalid"]}`)
	v.want(v.do("DELETE", self, "reader", nil), 403, `{"_api_error":["Not authorized"]}`)
	v.want(v.do("DELETE", self, "writer", nil), 204, "")
	v.want(v.do("GET", self, "writer", nil), 404, `{"_api_error":["Not found"]}`)
	v.want(v.do("DELETE", self, "writer", nil), 404, `{"_api_error":["Not found"]}`)
	if res, _ := http.Get(u.Links["url"].Href); res.StatusCode != 404 {
		t.Fatalf("url after delete: %d", res.StatusCode)
	}
	enginetest.Collect(t, v.e, v.tick)
	st, _ := v.e.Stats()
	if st.Blobs != 0 {
		t.Fatalf("%d blobs left after delete", st.Blobs)
	}
}

// TestLockingRace: two updates with the same lock_version race; exactly
// one wins.
func TestLockingRace(t *testing.T) {
	v := newEnv(t)
	m := decode(t, v.do("POST", "/v1/media", "writer", newMedium("a", "c", "n", "en-GB", "text/plain", "n.txt")).body)
	for round := range 10 {
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for i := range 2 {
			wg.Go(func() {
				codes[i] = v.do("PUT", "/v1/media/"+m.id(), "writer", map[string]any{"tags": fmt.Sprint(i), "lock_version": round}).code
			})
		}
		wg.Wait()
		slices.Sort(codes)
		if codes[0] != 200 || codes[1] != 409 {
			t.Fatalf("round %d: %v, want one 200 and one 409", round, codes)
		}
	}
}

// TestCollections checks match, search, group and paging against a model.
func TestCollections(t *testing.T) {
	defer oceanmedia.SetListBatch(7)() // collections cross batches
	v := newEnv(t)
	rng := rand.New(rand.NewPCG(1, 2))
	type row struct {
		id, updated string
		f           map[string]string
		file        string
	}
	var model []row
	vals := map[string][]string{"app": {"shop", "ipad"}, "context": {"ui", "mail", "web"}, "locale": {"sv-SE", "en-GB", "fr-CA"}, "content_type": {"image/png", "image/jpeg"}}
	seen := map[string]bool{}
	for i := 0; len(model) < 40; i++ {
		f := map[string]string{"name": fmt.Sprint("n", rng.IntN(6))}
		for k, vs := range vals {
			f[k] = vs[rng.IntN(len(vs))]
		}
		key := fmt.Sprint(f)
		if seen[key] {
			continue
		}
		seen[key] = true
		file := fmt.Sprintf("file-%d.%s", i, strings.TrimPrefix(f["content_type"], "image/"))
		v.now.Add(int64(time.Second))
		r := v.do("POST", "/v1/media", "writer", newMedium(f["app"], f["context"], f["name"], f["locale"], f["content_type"], file))
		if r.code != 201 {
			t.Fatalf("POST: %s", r)
		}
		m := decode(t, r.body)
		model = append(model, row{m.id(), m.UpdatedAt, f, file})
	}
	// Touch a few so updated_at order differs from creation order.
	for _, i := range []int{3, 0, 17} {
		v.now.Add(int64(time.Second))
		r := v.do("PUT", "/v1/media/"+model[i].id, "writer", map[string]any{"tags": "t", "lock_version": 0})
		model[i].updated = decode(t, r.body).UpdatedAt
	}
	slices.SortFunc(model, func(a, b row) int { return cmp.Or(strings.Compare(a.updated, b.updated), strings.Compare(a.id, b.id)) })

	fields := []string{"app", "context", "name", "locale", "content_type"}
	for q := range 150 {
		params := map[string]string{}
		for _, f := range fields {
			if rng.IntN(4) == 0 {
				pool := vals[f]
				if f == "name" {
					pool = []string{"n0", "n1", "n2", "n9"}
				}
				params[f] = pool[rng.IntN(len(pool))]
			}
		}
		if rng.IntN(4) == 0 {
			params["search"] = []string{"png", "-1", "JPEG", "file-2"}[rng.IntN(4)]
		}
		if rng.IntN(3) == 0 {
			params["group"] = fields[rng.IntN(len(fields))]
		}
		// "The basic URL returns all Medium resources": without page, a
		// collection is every match, whatever page_size says.
		page, size := 0, len(model)
		switch rng.IntN(4) {
		case 0, 1:
			page, size = rng.IntN(4), 1+rng.IntN(8)
			params["page"], params["page_size"] = fmt.Sprint(page), fmt.Sprint(size)
		case 2:
			params["page_size"] = fmt.Sprint(1 + rng.IntN(8))
		}
		var want []string
		groups := map[string]bool{}
		for _, r := range model {
			ok := true
			for _, f := range fields {
				if p, has := params[f]; has && r.f[f] != p {
					ok = false
				}
			}
			if s := params["search"]; s != "" && !strings.Contains(strings.ToLower(r.file), strings.ToLower(s)) {
				ok = false
			}
			if !ok {
				continue
			}
			if g := params["group"]; g != "" {
				if groups[r.f[g]] {
					continue
				}
				groups[r.f[g]] = true
			}
			want = append(want, r.id)
		}
		want = want[min(len(want), page*size):]
		want = want[:min(len(want), size)]
		qs := []string{}
		for k, val := range params {
			qs = append(qs, k+"="+val)
		}
		path := "/v1/media?" + strings.Join(qs, "&")
		r := v.do("GET", path, "reader", nil)
		var list []struct{ Medium medium }
		if err := json.Unmarshal(r.body, &list); err != nil || r.code != 200 {
			t.Fatalf("%s: %s", path, r)
		}
		var got []string
		for _, m := range list {
			got = append(got, m.Medium.id())
		}
		if !slices.Equal(got, want) {
			t.Fatalf("query %d %s:\n got %q\nwant %q", q, path, got, want)
		}
	}
	v.want(v.do("GET", "/v1/media?page=-1", "reader", nil), 200, "[]")
}

// TestAutodelete: at delete_at the sweeper deletes the medium, its space
// comes back, and its e-mail is notified through the SMTP relay.
func TestAutodelete(t *testing.T) {
	v := newEnv(t)
	body := newMedium("a", "c", "doomed", "en-GB", "application/pdf", "d.pdf")
	body["payload"] = base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 doomed"))
	body["delete_at"] = "2026-05-01T12:00:00Z"
	body["email"] = "owner@example.com"
	m := decode(t, v.do("POST", "/v1/media", "writer", body).body)
	if m.DeleteAt == nil || *m.DeleteAt != "2026-05-01T12:00:00Z" || m.Email == nil {
		t.Fatalf("delete_at/email: %+v", m)
	}
	if n, _ := v.e.Expire(context.Background()); n != 0 {
		t.Fatalf("swept %d before time", n)
	}
	v.now.Store(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	// Re-authenticate: tokens last 30 minutes.
	v.tokens["writer"] = ""
	if r := v.do("GET", "/v1/media/"+m.id(), "", nil, "X-API-Token", "nothing"); r.code != 400 {
		t.Fatalf("%s", r)
	}
	n, err := v.e.Expire(context.Background())
	if err != nil || n < 1 {
		t.Fatalf("Expire = %d, %v", n, err)
	}
	enginetest.Collect(t, v.e, v.tick)
	st, _ := v.e.Stats()
	if st.Blobs != 0 {
		t.Fatalf("%d blobs after autodelete", st.Blobs)
	}
	select {
	case mail := <-v.mails:
		if !strings.Contains(mail, "RCPT TO:<owner@example.com>") || !strings.Contains(mail, "doomed") {
			t.Fatalf("mail: %q", mail)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification mail")
	}
}

// fakeSMTP is an in-process SMTP listener that accepts one message per
// connection and sends its transcript to mails.
func fakeSMTP(t *testing.T, mails chan<- string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				var log strings.Builder
				br := bufio.NewReader(c)
				fmt.Fprintf(c, "220 fake ESMTP\r\n")
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					log.WriteString(line)
					cmd := strings.ToUpper(strings.TrimSpace(line))
					switch {
					case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
						fmt.Fprintf(c, "250 fake\r\n")
					case strings.HasPrefix(cmd, "DATA"):
						fmt.Fprintf(c, "354 go on\r\n")
						for {
							l, err := br.ReadString('\n')
							if err != nil {
								return
							}
							log.WriteString(l)
							if l == ".\r\n" {
								break
							}
						}
						fmt.Fprintf(c, "250 queued\r\n")
					case strings.HasPrefix(cmd, "QUIT"):
						fmt.Fprintf(c, "221 bye\r\n")
						mails <- log.String()
						return
					default:
						fmt.Fprintf(c, "250 ok\r\n")
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestMigrate: a store whose index records an earlier version kept under
// "field=value" tenants answers collections as before once Migrate ran,
// and no index record keeps anything but a tenant in its tenant.
func TestMigrate(t *testing.T) {
	v := newEnv(t)
	for i, f := range [][4]string{{"shop", "ui", "a", "sv-SE"}, {"shop", "mail", "b", "en-GB"}, {"ipad", "ui", "a", "sv-SE"}} {
		v.now.Add(int64(time.Second))
		v.want(v.do("POST", "/v1/media", "writer", newMedium(f[0], f[1], f[2], f[3], "image/png", fmt.Sprintf("f%d.png", i))), 201, "")
	}
	queries := []string{"", "?app=shop", "?context=ui&locale=sv-SE", "?group=app", "?group=name&app=shop", "?search=f1"}
	list := func() []string {
		var out []string
		for _, q := range queries {
			out = append(out, string(v.do("GET", "/v1/media"+q, "reader", nil).body))
		}
		return out
	}
	want := list()
	ctx := context.Background()
	if err := oceanmedia.OldLayout(ctx, v.e); err != nil {
		t.Fatal(err)
	}
	if got := list(); slices.Equal(got, want) {
		t.Fatal("the old layout answers as the new: the test would prove nothing")
	}
	for range 2 { // the second is a no-op
		if err := oceanmedia.Migrate(ctx, v.e); err != nil {
			t.Fatal(err)
		}
	}
	if got := list(); !slices.Equal(got, want) {
		t.Fatalf("after Migrate:\n%q\nwant\n%q", got, want)
	}
	if tenants, err := oceanmedia.IndexTenants(v.e); err != nil || len(tenants) != 0 {
		t.Fatalf("index records with tenants %q, %v", tenants, err)
	}
}
