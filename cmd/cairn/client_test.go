package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientCommands makes a media service client on a stopped store,
// uses its secret for a token against the running server, and deletes it
// through the server: its token stops working at once.
func TestClientCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	newStore(t, data)
	cairn := func(args ...string) (string, error) {
		var out strings.Builder
		err := run(context.Background(), append(args, "--data", data), noEnv, &out, io.Discard)
		return out.String(), err
	}
	out, err := cairn("client", "add", "shop-app", "--tenant", "shop")
	if err != nil || !strings.Contains(out, "secret: ") {
		t.Fatalf("client add: %q, %v", out, err)
	}
	secret := strings.TrimSpace(out[strings.Index(out, "secret: ")+len("secret: "):])
	for _, bad := range [][]string{
		{"client", "add", "shop-app", "--tenant", "shop"},               // taken
		{"client", "add", "other", "--tenant", "No_Such"},               // bad tenant
		{"client", "add", "other", "--tenant", "shop", "--scopes", "x"}, // bad scope
		{"client", "delete", "nobody"},
	} {
		if _, err := cairn(bad...); err == nil {
			t.Errorf("cairn %s succeeded", strings.Join(bad, " "))
		}
	}
	base, stop := startServe(t, []string{"--data", data}, noEnv)
	defer stop()
	token := func() string {
		res, err := http.PostForm(base+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"shop-app"}, "client_secret": {secret}})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var tok struct {
			AccessToken string `json:"access_token"`
			Tenant      string `json:"tenant"`
		}
		if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != 200 || tok.Tenant != "shop" {
			t.Fatalf("token: %d, %+v, %v", res.StatusCode, tok, err)
		}
		return tok.AccessToken
	}
	tok := token()
	list := func() int {
		req, _ := http.NewRequest("GET", base+"/media/shop/assets", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := list(); code != 200 {
		t.Fatalf("list with the client's token: %d", code)
	}
	if out, err := cairn("client", "list"); err != nil || !strings.Contains(out, "shop-app") || !strings.Contains(out, "media.asset_manage,media.asset_read") {
		t.Fatalf("client list through the server: %q, %v", out, err)
	}
	// Rotate: the old secret and the tokens it got stop working; the new
	// one signs in.
	out, err = cairn("client", "rotate", "shop-app")
	if err != nil || !strings.Contains(out, "secret: ") {
		t.Fatalf("client rotate: %q, %v", out, err)
	}
	if code := list(); code != 401 {
		t.Fatalf("list with a token from before the rotation: %d, want 401", code)
	}
	res, err := http.PostForm(base+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"shop-app"}, "client_secret": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("the old secret after rotation: %d, want 401", res.StatusCode)
	}
	secret = strings.TrimSpace(out[strings.Index(out, "secret: ")+len("secret: "):])
	tok = token()
	if code := list(); code != 200 {
		t.Fatalf("list with the rotated secret's token: %d", code)
	}
	if _, err := cairn("client", "rotate", "nobody"); err == nil {
		t.Error("client rotate of no client succeeded")
	}
	if _, err := cairn("client", "delete", "shop-app"); err != nil {
		t.Fatal(err)
	}
	if code := list(); code != 401 {
		t.Fatalf("list with a deleted client's token: %d, want 401", code)
	}
}
