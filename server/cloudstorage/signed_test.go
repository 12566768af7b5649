package cloudstorage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/server"
	"github.com/cairnstore/cairn/server/cloudstorage"
	"github.com/cairnstore/cairn/server/internal/signurl"
)

// sign asks for a signed URL of path and returns it as do takes it.
func (v *env) sign(path, tok, expiresIn string) string {
	v.t.Helper()
	r := v.do("POST", "/signed"+path+"?expiresIn="+expiresIn, tok, nil)
	v.want(r, 200, "sign "+path)
	var s struct {
		URL       string
		ExpiresAt time.Time
	}
	if err := json.Unmarshal(r.body, &s); err != nil || s.ExpiresAt.IsZero() {
		v.t.Fatalf("sign: %s", r)
	}
	if !strings.HasPrefix(s.URL, v.url+path+"?") {
		v.t.Fatalf("signed URL %q is not of %s", s.URL, path)
	}
	return strings.TrimPrefix(s.URL, v.url)
}

// TestSignedURLs: a signed URL fetches PROTECTED media without a token,
// ranges and conditional requests included, until it expires, its key
// is revoked or its signer loses READ; anything altered is 403.
func TestSignedURLs(t *testing.T) {
	var now = time.Now()
	clock := func() time.Time { return now }
	e := enginetest.Open(t, engine.Options{Now: clock})
	v := newEnv(t, server.Config{Engine: e, Now: clock})
	content := randBytes(9, 50_000)
	const path = "/protected/277/films/a b+ü.bin"
	esc := "/protected/277/films/a%20b+%C3%BC.bin"
	v.want(v.do("POST", esc, v.token("writer"), content), 201, "upload")
	v.want(v.do("POST", "/protected/277/films/other.bin", v.token("writer"), []byte("other")), 201, "upload")

	// Without a token the media is out of reach.
	v.wantError(v.do("GET", esc, "", nil), 401, "unauthorized", "no token")
	u := v.sign(esc, v.token("reader"), "300")
	r := v.do("GET", u, "", nil)
	v.want(r, 200, "signed GET")
	if !bytes.Equal(r.body, content) || r.h.Get("Cache-Control") != "private, no-store" {
		t.Fatalf("signed GET: other bytes, or Cache-Control %q", r.h.Get("Cache-Control"))
	}
	r = v.do("GET", u, "", nil, "Range", "bytes=100-199")
	v.want(r, 206, "signed range")
	if !bytes.Equal(r.body, content[100:200]) {
		t.Fatal("signed range: other bytes")
	}
	v.want(v.do("GET", u, "", nil, "If-None-Match", r.h.Get("ETag")), 304, "signed If-None-Match")
	v.want(v.do("HEAD", u, "", nil), 200, "signed HEAD")
	// The path may be escaped otherwise: it names the same media.
	v.want(v.do("GET", strings.Replace(u, "films/", "films%2F", 1), "", nil), 200, "signed GET, %2F")

	for name, alter := range map[string]string{
		"other media": strings.Replace(u, "a%20b+%C3%BC.bin", "other.bin", 1),
		"expiry":      strings.Replace(u, signurl.ParamExpires+"=", signurl.ParamExpires+"=9", 1),
		"signer":      strings.Replace(u, signurl.ParamSigner+"=reader", signurl.ParamSigner+"=writer", 1),
		"public":      strings.Replace(u, "/protected/", "/public/", 1),
	} {
		r := v.do("GET", alter, "", nil)
		if name == "public" {
			v.wantError(r, 404, "not_found", name) // another section: no such media, signed or not
			continue
		}
		v.wantError(r, 403, "invalid_signature", name)
	}
	// The signature only reads.
	v.wantError(v.do("DELETE", u, "", nil), 401, "unauthorized", "signed DELETE")

	// Asking: READ on the bucket, an existing media path, a bounded expiry.
	v.wantError(v.do("POST", "/signed"+esc+"?expiresIn=60", v.token("other"), nil), 403, "forbidden", "sign without READ")
	v.wantError(v.do("POST", "/signed"+esc+"?expiresIn=60", "", nil), 401, "unauthorized", "sign without a token")
	v.wantError(v.do("POST", "/signed/protected/277/films/none.bin?expiresIn=60", v.token("reader"), nil), 404, "not_found", "sign missing media")
	for _, bad := range []string{"0", "604801", "x", ""} {
		v.wantError(v.do("POST", "/signed"+esc+"?expiresIn="+bad, v.token("reader"), nil), 400, "bad_request", "expiresIn="+bad)
	}
	v.wantError(v.do("POST", "/signed/protected/277/films/?expiresIn=60", v.token("reader"), nil), 400, "bad_request", "sign a folder")

	// Expired.
	now = now.Add(301 * time.Second)
	v.wantError(v.do("GET", u, "", nil), 403, "expired", "expired")

	// Revoked: the signer loses READ, or the key is revoked.
	users := cloudstorage.NewUsers(e)
	ctx := context.Background()
	w := v.sign(esc, v.token("writer"), "600")
	u = v.sign(esc, v.token("reader"), "600")
	v.want(v.do("GET", u, "", nil), 200, "fresh")
	if _, err := users.Revoke(ctx, "reader", "277"); err != nil {
		t.Fatal(err)
	}
	v.wantError(v.do("GET", u, "", nil), 403, "invalid_signature", "signer lost READ")
	keys := signurl.NewKeys(e)
	list, err := keys.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("keys: %v %v", list, err)
	}
	if _, err := keys.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	v.want(v.do("GET", w, "", nil), 200, "old key after rotation")
	if err := keys.Revoke(ctx, list[0].ID); err != nil {
		t.Fatal(err)
	}
	v.wantError(v.do("GET", w, "", nil), 403, "invalid_signature", "key revoked")
	v.want(v.do("GET", v.sign(esc, v.token("writer"), "600"), "", nil), 200, "new key")
}
