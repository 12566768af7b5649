package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/server"
	"github.com/cairnstore/cairn/server/mediaservice"
	"github.com/cairnstore/cairn/server/storageapi"
)

// TestCORSPerResource: a bucket's, a tenant's and an organization's CORS
// rules let their origins in on that resource only, with the methods
// and headers the rule allows; where only the credentials tell the
// resource (an organization token, a login, a client's token request),
// the preflight takes any rule of the kind and the answer is readable
// only for the request's own.
func TestCORSPerResource(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	base, tok := start(t, server.Config{Engine: e})
	const app, evil = "http://app.example:8000", "https://evil.example"
	ctx := context.Background()

	iam := storageapi.NewIAM(e)
	for _, org := range []string{"acme", "globex"} {
		if _, err := iam.AddOrg(ctx, org); err != nil {
			t.Fatal(err)
		}
		if _, _, err := iam.AddUser(ctx, org+"@example.test", "password-of-"+org); err != nil {
			t.Fatal(err)
		}
		if err := iam.SetMember(ctx, org, org+"@example.test", storageapi.RoleAdmin); err != nil {
			t.Fatal(err)
		}
	}
	clients := mediaservice.NewClients(e)
	secrets := map[string]string{}
	for _, tenant := range []string{"shop", "other"} {
		s, err := clients.Add(ctx, tenant+"-app", tenant, []string{mediaservice.ScopeRead})
		if err != nil {
			t.Fatal(err)
		}
		secrets[tenant] = s
	}

	rules := server.NewCORSRules(e)
	for _, bad := range []struct {
		kind, name string
		rule       server.CORSRule
	}{
		{"bucket", "1", server.CORSRule{}},
		{"bucket", "1", server.CORSRule{Origins: []string{"https://app.example/path"}}},
		{"bucket", "1", server.CORSRule{Origins: []string{"app.example"}}},
		{"bucket", "1", server.CORSRule{Origins: []string{app}, Methods: []string{"TRACE"}}},
		{"bucket", "1", server.CORSRule{Origins: []string{app}, Headers: []string{"x y"}}},
		{"bucket", "a/b", server.CORSRule{Origins: []string{app}}},
		{"org", "no-such-org", server.CORSRule{Origins: []string{app}}},
		{"user", "w", server.CORSRule{Origins: []string{app}}},
	} {
		if err := rules.Set(ctx, bad.kind, bad.name, bad.rule); !errors.Is(err, server.ErrCORSRule) {
			t.Errorf("Set(%s/%s, %+v) = %v, want ErrCORSRule", bad.kind, bad.name, bad.rule, err)
		}
	}
	for _, r := range []struct {
		kind, name string
		rule       server.CORSRule
	}{
		{"bucket", "1", server.CORSRule{Origins: []string{app}, Methods: []string{"GET", "HEAD", "POST"}}},
		{"tenant", "shop", server.CORSRule{Origins: []string{app}}},
		{"org", "acme", server.CORSRule{Origins: []string{app}, Headers: []string{"Authorization", "Content-Type"}}},
	} {
		if err := rules.Set(ctx, r.kind, r.name, r.rule); err != nil {
			t.Fatal(err)
		}
	}
	if list, err := rules.List(); err != nil || len(list) != 3 || list[2].Kind != "tenant" || list[1].Name != "acme" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	mustStatus(t, 201, "POST", base+"/public/1/a.txt", tok, []byte("cross-origin"))

	preflight := func(path, origin, method, headers string) (int, string, string) {
		t.Helper()
		hdr := []string{"Origin", origin, "Access-Control-Request-Method", method}
		if headers != "" {
			hdr = append(hdr, "Access-Control-Request-Headers", headers)
		}
		res, _, err := request(t, "OPTIONS", base+path, "", nil, hdr...)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"), res.Header.Get("Access-Control-Allow-Methods")
	}
	for _, c := range []struct {
		path, origin, method, headers string
		code                          int
		methods                       string
	}{
		{"/public/1/a.txt", app, "GET", "authorization", 204, "GET, HEAD, OPTIONS, POST"},
		{"/protected/1/a.txt", app, "POST", "authorization", 204, "GET, HEAD, OPTIONS, POST"},
		{"/signed/protected/1/a.txt", app, "POST", "authorization", 204, "OPTIONS, POST"},
		{"/public/1/a.txt", app, "DELETE", "", 403, ""}, // not among the bucket's methods
		{"/public/2/a.txt", app, "GET", "", 403, ""},    // another bucket
		{"/public/1/a.txt", evil, "GET", "", 403, ""},
		{"/media/shop/assets", app, "POST", "authorization", 204, ""},
		{"/media/other/assets", app, "POST", "authorization", 403, ""},
		{"/oauth/token", app, "POST", "authorization", 204, ""}, // some tenant allows app
		{"/oauth/token", evil, "POST", "authorization", 403, ""},
		{"/storage/org/files", app, "POST", "Authorization", 204, ""},
		{"/storage/org/files", app, "POST", "authorization, x-custom", 403, ""}, // a header the rule lacks
		{"/storage/auth/login", app, "POST", "content-type", 204, ""},
		{"/storage/user/files", app, "POST", "authorization", 403, ""}, // users have no rules: only --cors-origins
		{"/v1/media", app, "POST", "x-api-token", 403, ""},
	} {
		code, origin, methods := preflight(c.path, c.origin, c.method, c.headers)
		wantOrigin := ""
		if c.code == 204 {
			wantOrigin = c.origin
		}
		if code != c.code || origin != wantOrigin || c.methods != "" && methods != c.methods {
			t.Errorf("preflight %s %s from %s: %d, Allow-Origin %q, Allow-Methods %q; want %d, %q, %q", c.method, c.path, c.origin, code, origin, methods, c.code, wantOrigin, c.methods)
		}
	}

	// The answers themselves.
	allowed := func(method, path, tok, origin string, body string, hdr ...string) string {
		t.Helper()
		res, b, err := request(t, method, base+path, tok, strings.NewReader(body), append(hdr, "Origin", origin)...)
		if err != nil || res.StatusCode >= 500 {
			t.Fatalf("%s %s: %v %d %s", method, path, err, res.StatusCode, b)
		}
		if !strings.Contains(res.Header.Get("Vary"), "Origin") {
			t.Errorf("%s %s: Vary %q", method, path, res.Header.Values("Vary"))
		}
		return res.Header.Get("Access-Control-Allow-Origin")
	}
	if got := allowed("GET", "/public/1/a.txt", "", app, ""); got != app {
		t.Errorf("GET from the bucket's origin: Allow-Origin %q", got)
	}
	if got := allowed("GET", "/public/1/a.txt", "", evil, ""); got != "" {
		t.Errorf("GET from another origin: Allow-Origin %q", got)
	}
	if got := allowed("DELETE", "/public/1/missing", tok, app, ""); got != "" {
		t.Errorf("DELETE, not among the bucket's methods: Allow-Origin %q", got)
	}
	form := func(tenant string) string {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {tenant + "-app"}, "client_secret": {secrets[tenant]}}.Encode()
	}
	if got := allowed("POST", "/oauth/token", "", app, form("shop"), "Content-Type", "application/x-www-form-urlencoded"); got != app {
		t.Errorf("token for a client of the tenant whose rule allows app: Allow-Origin %q", got)
	}
	if got := allowed("POST", "/oauth/token", "", app, form("other"), "Content-Type", "application/x-www-form-urlencoded"); got != "" {
		t.Errorf("token for a client of another tenant: Allow-Origin %q", got)
	}
	orgToken := map[string]string{}
	for _, org := range []string{"acme", "globex"} {
		body := `{"email":"` + org + `@example.test","password":"password-of-` + org + `"}`
		got := allowed("POST", "/storage/auth/login", "", app, body, "Content-Type", "application/json")
		if want := map[string]string{"acme": app, "globex": ""}[org]; got != want {
			t.Errorf("login of a member of %s: Allow-Origin %q, want %q", org, got, want)
		}
		_, b, _ := request(t, "POST", base+"/storage/auth/login", "", strings.NewReader(body), "Content-Type", "application/json")
		var out struct{ Organizations []struct{ Token string } }
		if err := json.Unmarshal(b, &out); err != nil || len(out.Organizations) != 1 {
			t.Fatalf("login: %s", b)
		}
		orgToken[org] = out.Organizations[0].Token
	}
	if got := allowed("GET", "/storage/org/files", orgToken["acme"], app, ""); got != app {
		t.Errorf("acme's files from acme's origin: Allow-Origin %q", got)
	}
	if got := allowed("GET", "/storage/org/files", orgToken["globex"], app, ""); got != "" {
		t.Errorf("globex's files from acme's origin: Allow-Origin %q", got)
	}

	// Deleted: the bucket's origin is out again.
	if err := rules.Delete(ctx, "bucket", "1"); err != nil {
		t.Fatal(err)
	}
	if err := rules.Delete(ctx, "bucket", "1"); !errors.Is(err, server.ErrNoCORSRule) {
		t.Fatalf("deleting twice: %v", err)
	}
	if got := allowed("GET", "/public/1/a.txt", "", app, ""); got != "" {
		t.Errorf("GET after the rule's deletion: Allow-Origin %q", got)
	}
}
