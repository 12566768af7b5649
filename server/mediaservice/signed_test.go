package mediaservice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/server/internal/signurl"
	"github.com/cairnstore/cairn/server/mediaservice"
)

// sign asks for a signed download URL and returns it as do takes it.
func (v *env) sign(tenant, id, client, expiresIn string) string {
	v.t.Helper()
	r := v.do("POST", "/media/"+tenant+"/assets/"+id+"/download-url?expiresIn="+expiresIn, client, nil, "")
	v.want(r, 200, "")
	var s struct {
		URL       string
		ExpiresAt time.Time
	}
	if err := json.Unmarshal(r.body, &s); err != nil || s.ExpiresAt.IsZero() {
		v.t.Fatalf("sign: %s", r)
	}
	path := "/media/" + tenant + "/assets/" + id + "/download?"
	if !strings.HasPrefix(s.URL, v.url+path) {
		v.t.Fatalf("signed URL %q", s.URL)
	}
	return strings.TrimPrefix(s.URL, v.url)
}

const (
	badSignature = `{"code":403,"status":"Forbidden","message":"The signed URL is invalid, altered or revoked."}`
	expiredURL   = `{"code":403,"status":"Forbidden","message":"The signed URL has expired."}`
)

// TestSignedURLs: a signed URL downloads a PRIVATE BLOB without a token,
// ranges and conditional requests included, until it expires, its key is
// revoked, or its client is rotated or deleted; anything altered is 403.
func TestSignedURLs(t *testing.T) {
	v := newEnv(t, 0)
	file := bytes.Repeat([]byte("private bytes "), 4000)
	body, ct := multipartBody(`{"type":"BLOB","access":"PRIVATE","details":{"filename":"contract.pdf"}}`, "c.pdf", file)
	id := idOf(t, v.do("POST", "/media/acme/assets", "manager", body, ct))
	body, ct = multipartBody(`{"type":"BLOB","access":"PRIVATE"}`, "o.bin", []byte("other"))
	other := idOf(t, v.do("POST", "/media/acme/assets", "manager", body, ct))

	v.want(v.do("GET", "/media/acme/assets/"+id+"/download", "", nil, ""), 401, fault401)
	u := v.sign("acme", id, "reader", "120")
	r := v.do("GET", u, "", nil, "")
	if r.code != 200 || !bytes.Equal(r.body, file) || r.h.Get("Cache-Control") != "private, no-store" {
		t.Fatalf("signed download: %d, Cache-Control %q", r.code, r.h.Get("Cache-Control"))
	}
	r = v.do("GET", u, "", nil, "", "Range", "bytes=14-27")
	if r.code != 206 || !bytes.Equal(r.body, file[14:28]) {
		t.Fatalf("signed range: %s", r)
	}
	v.want(v.do("GET", u, "", nil, "", "If-None-Match", r.h.Get("ETag")), 304, "")
	v.want(v.do("HEAD", u, "", nil, ""), 200, "")

	for name, alter := range map[string]string{
		"asset":     strings.Replace(u, id, other, 1),
		"tenant":    strings.Replace(u, "/acme/", "/globex/", 1),
		"expiry":    strings.Replace(u, signurl.ParamExpires+"=", signurl.ParamExpires+"=1", 1),
		"signer":    strings.Replace(u, signurl.ParamSigner+"=reader", signurl.ParamSigner+"=manager", 1),
		"signature": strings.Replace(u, signurl.ParamSignature+"=", signurl.ParamSignature+"=A", 1),
	} {
		if r := v.do("GET", alter, "", nil, ""); r.code != 403 || strings.TrimSpace(string(r.body)) != badSignature {
			t.Errorf("%s altered: %s, want 403 %s", name, r, badSignature)
		}
	}

	// Asking takes media.asset_read in the tenant, an asset that exists,
	// and a bounded expiry.
	v.want(v.do("POST", "/media/acme/assets/"+id+"/download-url?expiresIn=60", "writeonly", nil, ""), 403, forbid)
	v.want(v.do("POST", "/media/acme/assets/"+id+"/download-url?expiresIn=60", "other", nil, ""), 404, notFound)
	v.want(v.do("POST", "/media/acme/assets/"+id+"/download-url?expiresIn=60", "", nil, ""), 401, fault401)
	v.want(v.do("POST", "/media/acme/assets/nope/download-url?expiresIn=60", "reader", nil, ""), 404, notFound)
	for _, bad := range []string{"0", "604801", "soon"} {
		r := v.do("POST", "/media/acme/assets/"+id+"/download-url?expiresIn="+bad, "reader", nil, "")
		if r.code != 400 || !strings.Contains(string(r.body), `"code":400`) {
			t.Fatalf("expiresIn=%s: %s", bad, r)
		}
	}

	// Expired.
	v.now.Add(int64(121 * time.Second))
	v.want(v.do("GET", u, "", nil, ""), 403, expiredURL)

	// Rotating the client's secret ends its URLs; so does deleting it;
	// revoking the key ends every URL it signed.
	clients := mediaservice.NewClients(v.e)
	ctx := context.Background()
	u = v.sign("acme", id, "reader", "600")
	m := v.sign("acme", id, "manager", "600")
	v.want(v.do("GET", u, "", nil, ""), 200, "")
	if _, err := clients.Rotate(ctx, "reader"); err != nil {
		t.Fatal(err)
	}
	v.want(v.do("GET", u, "", nil, ""), 403, badSignature)
	keys := signurl.NewKeys(v.e)
	list, err := keys.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("keys: %v %v", list, err)
	}
	v.want(v.do("GET", m, "", nil, ""), 200, "")
	if err := keys.Revoke(ctx, list[0].ID); err != nil {
		t.Fatal(err)
	}
	v.want(v.do("GET", m, "", nil, ""), 403, badSignature)
	m = v.sign("acme", id, "manager", "600")
	v.want(v.do("GET", m, "", nil, ""), 200, "")
	if err := clients.Delete(ctx, "manager"); err != nil {
		t.Fatal(err)
	}
	v.want(v.do("GET", m, "", nil, ""), 403, badSignature)
}
