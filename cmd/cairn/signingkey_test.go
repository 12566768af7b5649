package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// TestSigningKeyCommands signs a download URL through a running server,
// rotates the key (the URL keeps working) and revokes the old one through
// the server (the URL answers 403 at once).
func TestSigningKeyCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	newStore(t, data)
	cairn := func(args ...string) (string, error) {
		var out strings.Builder
		err := run(context.Background(), append(args, "--data", data), noEnv, &out, io.Discard)
		return out.String(), err
	}
	out, err := cairn("client", "add", "app", "--tenant", "shop")
	if err != nil {
		t.Fatalf("client add: %q, %v", out, err)
	}
	secret := strings.TrimSpace(out[strings.Index(out, "secret: ")+len("secret: "):])
	if out, err := cairn("signing-key", "list"); err != nil || strings.Count(out, "\n") != 1 {
		t.Fatalf("signing-key list on a new store: %q, %v", out, err)
	}
	base, stop := startServe(t, []string{"--data", data}, noEnv)
	defer stop()

	res, err := http.PostForm(base+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {secret}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	// do sends a request, with the client's token when ctype is set
	// (the API calls), with no credentials at all for the signed URLs.
	do := func(method, u string, body io.Reader, ctype string) (int, []byte) {
		req, _ := http.NewRequest(method, u, body)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("file", "secret.txt")
	fw.Write([]byte("for your eyes only"))
	mw.WriteField("body", `{"type":"BLOB","access":"PRIVATE"}`)
	mw.Close()
	code, b := do("POST", base+"/media/shop/assets", &form, mw.FormDataContentType())
	var asset struct{ ID string }
	if json.Unmarshal(b, &asset); code != 201 || asset.ID == "" {
		t.Fatalf("upload: %d %s", code, b)
	}
	sign := func() string {
		code, b := do("POST", base+"/media/shop/assets/"+asset.ID+"/download-url?expiresIn=600", nil, "application/json")
		var s struct{ URL string }
		if json.Unmarshal(b, &s); code != 200 || s.URL == "" {
			t.Fatalf("sign: %d %s", code, b)
		}
		return s.URL
	}
	first := sign()
	if code, b := do("GET", first, nil, ""); code != 200 || string(b) != "for your eyes only" {
		t.Fatalf("signed GET: %d %q", code, b)
	}
	out, err = cairn("signing-key", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 2 || !strings.HasSuffix(lines[1], "signs") {
		t.Fatalf("signing-key list: %q, %v", out, err)
	}
	oldID := strings.Fields(lines[1])[0]
	if out, err := cairn("signing-key", "rotate"); err != nil || !strings.Contains(out, "signs from now on") {
		t.Fatalf("signing-key rotate: %q, %v", out, err)
	}
	second := sign()
	if code, _ := do("GET", first, nil, ""); code != 200 {
		t.Fatalf("the old key's URL after rotation: %d", code)
	}
	if _, err := cairn("signing-key", "revoke", "no-such-key"); err == nil {
		t.Fatal("revoking a key that does not exist succeeded")
	}
	if out, err := cairn("signing-key", "revoke", oldID); err != nil {
		t.Fatalf("signing-key revoke: %q, %v", out, err)
	}
	if code, _ := do("GET", first, nil, ""); code != 403 {
		t.Fatalf("the revoked key's URL: %d, want 403", code)
	}
	if code, _ := do("GET", second, nil, ""); code != 200 {
		t.Fatalf("the new key's URL: %d", code)
	}
}
