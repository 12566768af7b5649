package storageapi_test

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/server/internal/signurl"
	"github.com/cairnstore/cairn/server/storageapi"
)

type signedURL struct {
	URL       string
	ExpiresAt time.Time
}

func (v *env) sign(mode, token, id, expiresIn string) signedURL {
	v.t.Helper()
	r := v.do(req{method: "POST", path: "/storage/" + mode + "/files/" + id + "/url?expiresIn=" + expiresIn, token: token})
	v.want(r, 200)
	var s signedURL
	r.json(v.t, &s)
	if !strings.HasPrefix(s.URL, v.url+"/storage/"+mode+"/files/"+id+"?") {
		v.t.Fatalf("signed URL %q", s.URL)
	}
	return s
}

// path is a signed URL as v.do takes it, with edit applied to its query.
func (v *env) path(u string, edit func(url.Values)) string {
	p, err := url.Parse(strings.TrimPrefix(u, v.url))
	if err != nil {
		v.t.Fatal(err)
	}
	if edit != nil {
		q := p.Query()
		edit(q)
		p.RawQuery = q.Encode()
	}
	return p.String()
}

// TestSignedURLs: a signed URL reads one file without a token, with
// ranges and conditional requests, until it expires, its key is revoked
// or its signer loses access; anything altered is 403.
func TestSignedURLs(t *testing.T) {
	v := newEnv(t, storageapi.Config{})
	v.addUser("ann@acme.test", map[string]storageapi.Role{"acme": storageapi.RoleAdmin})
	v.addUser("mia@acme.test", map[string]storageapi.Role{"acme": storageapi.RoleMember})
	v.addUser("bob@example.test", nil)
	content := randomBytes(7, 70_000)
	f := v.upload("user", "ann", "movie.bin", content)
	other := v.upload("user", "ann", "other.bin", randomBytes(8, 100))

	s := v.sign("user", "ann", f.FileID, "60")
	if want := t0.Add(time.Minute); !s.ExpiresAt.Equal(want) {
		t.Fatalf("expiresAt %v, want %v", s.ExpiresAt, want)
	}
	p := v.path(s.URL, nil)
	r := v.do(req{method: "GET", path: p})
	v.want(r, 200)
	if !bytes.Equal(r.body, content) || r.h.Get("Cache-Control") != "private, no-store" {
		t.Fatalf("signed GET: %d bytes, Cache-Control %q", len(r.body), r.h.Get("Cache-Control"))
	}
	r = v.do(req{method: "GET", path: p, hdr: []string{"Range", "bytes=1000-1999"}})
	v.want(r, 206)
	if !bytes.Equal(r.body, content[1000:2000]) {
		t.Fatal("signed range: other bytes")
	}
	v.want(v.do(req{method: "GET", path: p, hdr: []string{"If-None-Match", f.ETag}}), 304)
	v.want(v.do(req{method: "HEAD", path: p}), 200)
	// A client with no credentials at all, outside the checking client.
	if code, b := fetch(t, s.URL); code != 200 || !bytes.Equal(b, content) {
		t.Fatalf("plain GET of the signed URL: %d", code)
	}

	// Altered: another file, another expiry, another signer, a cut
	// signature, a missing parameter; and the signature on another route.
	for name, alter := range map[string]string{
		"file":      v.path(strings.Replace(s.URL, f.FileID, other.FileID, 1), nil),
		"expires":   v.path(s.URL, func(q url.Values) { q.Set(signurl.ParamExpires, "4102444800") }),
		"signer":    v.path(s.URL, func(q url.Values) { q.Set(signurl.ParamSigner, "someone-else") }),
		"signature": v.path(s.URL, func(q url.Values) { q.Set(signurl.ParamSignature, q.Get(signurl.ParamSignature)[1:]+"A") }),
		"no key":    v.path(s.URL, func(q url.Values) { q.Del(signurl.ParamKey) }),
		"twice":     v.path(s.URL, func(q url.Values) { q.Add(signurl.ParamSigner, q.Get(signurl.ParamSigner)) }),
		"more":      v.path(s.URL, func(q url.Values) { q.Set("download", "1") }),
		"org area":  v.path(strings.Replace(s.URL, "/storage/user/", "/storage/org/", 1), nil),
	} {
		r := v.do(req{method: "GET", path: alter})
		if r.code != 403 {
			t.Errorf("%s altered: %s, want 403", name, r)
			continue
		}
		v.want(r, 403, "invalid_signature")
	}
	// Only reads: the signature does not delete.
	v.want(v.do(req{method: "DELETE", path: p}), 401, "unauthorized")

	// Bounds on expiresIn.
	for _, bad := range []string{"0", "-5", "604801", "1e3", ""} {
		v.want(v.do(req{method: "POST", path: "/storage/user/files/" + f.FileID + "/url?expiresIn=" + bad, token: "ann"}), 400, "bad_request")
	}
	// Another user's file is not found, signed or not.
	v.want(v.do(req{method: "POST", path: "/storage/user/files/" + f.FileID + "/url?expiresIn=60", token: "bob"}), 404, "not_found")

	// Expired.
	v.advance(61 * time.Second)
	v.want(v.do(req{method: "GET", path: p}), 403, "expired")

	// Rotation: old URLs keep working until their key is revoked.
	keys := signurl.NewKeys(v.e)
	old := v.sign("user", "ann", f.FileID, "3600")
	ctx := context.Background()
	if _, err := keys.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := v.sign("user", "ann", f.FileID, "3600")
	oldKey := v.path(old.URL, nil)
	v.want(v.do(req{method: "GET", path: oldKey}), 200)
	list, err := keys.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("keys %v, %v", list, err)
	}
	if err := keys.Revoke(ctx, list[1].ID); err != nil {
		t.Fatal(err)
	}
	v.want(v.do(req{method: "GET", path: oldKey}), 403, "invalid_signature")
	v.want(v.do(req{method: "GET", path: v.path(fresh.URL, nil)}), 200)

	// Organization files: any member signs; a member removed, their URLs
	// stop working.
	of := v.upload("org", "acme:ann", "plan.bin", content[:5000])
	ms := v.sign("org", "acme:mia", of.FileID, "600")
	as := v.sign("org", "acme:ann", of.FileID, "600")
	v.want(v.do(req{method: "GET", path: v.path(ms.URL, nil)}), 200)
	if err := v.iam.RemoveMember(ctx, "acme", "mia@acme.test"); err != nil {
		t.Fatal(err)
	}
	v.want(v.do(req{method: "GET", path: v.path(ms.URL, nil)}), 403, "invalid_signature")
	v.want(v.do(req{method: "GET", path: v.path(as.URL, nil)}), 200)

	// The signer deleted: their URLs end too.
	bf := v.upload("user", "bob", "b.bin", []byte("bob's bytes"))
	bs := v.sign("user", "bob", bf.FileID, "600")
	v.want(v.do(req{method: "GET", path: v.path(bs.URL, nil)}), 200)
	if err := v.iam.DeleteUser(ctx, "bob@example.test", true); err != nil {
		t.Fatal(err)
	}
	v.want(v.do(req{method: "GET", path: v.path(bs.URL, nil)}), 403, "invalid_signature")
}
