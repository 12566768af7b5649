package oceanmedia_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/cairnstore/cairn/server/oceanmedia"
)

// TestPagingBounds: page is bounded (400), never multiplied by page_size
// into an overflow and a panic; past the last medium a page is empty,
// as the original's OFFSET was.
func TestPagingBounds(t *testing.T) {
	v := newEnv(t)
	v.want(v.do("POST", "/v1/media", "writer", newMedium("shop", "ui", "a", "sv-SE", "image/png", "a.png")), 201, "")
	for _, q := range []string{"page=9223372036854775807", "page=9223372036854775807&page_size=1000", "page=99999999999999999999", "page=1000001", "page=4611686018427387904&group=app"} {
		v.want(v.do("GET", "/v1/media?"+q, "reader", nil), 400, `{"_api_error":["page must be at most 1000000"]}`)
	}
	v.want(v.do("GET", "/v1/media?page=1000000&page_size=1000", "reader", nil), 200, "[]")
	v.want(v.do("GET", "/v1/media?page=-3", "reader", nil), 200, "[]")
}

// TestUserMadeAgain: an API user deleted and made again under the same
// name, as a write user, does not accept the old user's tokens.
func TestUserMadeAgain(t *testing.T) {
	v := newEnv(t)
	users := oceanmedia.NewUsers(v.e)
	if _, _, err := users.Add(context.Background(), "ed", "a-long-password", oceanmedia.ReadOnly); err != nil {
		t.Fatal(err)
	}
	login := func() string {
		r := v.do("POST", "/v1/authentications", "", nil, "X-API-Authenticate", base64.StdEncoding.EncodeToString([]byte("ed:a-long-password")))
		v.want(r, 201, "")
		var a struct{ Authentication struct{ Token string } }
		json.Unmarshal(r.body, &a)
		return a.Authentication.Token
	}
	v.tokens["old"] = login()
	v.want(v.do("GET", "/v1/media", "old", nil), 200, "")
	if err := users.Delete(context.Background(), "ed"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := users.Add(context.Background(), "ed", "a-long-password", oceanmedia.ReadWrite); err != nil {
		t.Fatal(err)
	}
	v.want(v.do("POST", "/v1/media", "old", newMedium("shop", "ui", "a", "sv-SE", "image/png", "a.png")), 400, `{"_api_error":["Unknown authentication"]}`)
	v.want(v.do("GET", "/v1/media", "old", nil), 400, `{"_api_error":["Unknown authentication"]}`)
	v.tokens["new"] = login()
	v.want(v.do("POST", "/v1/media", "new", newMedium("shop", "ui", "a", "sv-SE", "image/png", "a.png")), 201, "")
}
