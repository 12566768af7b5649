package oceanmedia_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/mail"
	"github.com/cairnstore/cairn/server"
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

// TestNotificationAbuse: the autodelete mail cannot be turned against
// anyone. CR LF in a medium's properties is refused (422) rather than
// ending the Subject header; a subject outside ASCII is encoded; a
// delete_at already past sends no mail (that would be a relay for any
// address, at once); mails to one address are limited; and a relay that
// never answers holds up neither the sweeper nor the API.
func TestNotificationAbuse(t *testing.T) {
	v := newEnv(t)
	inject := newMedium("shop", "ui", "x\r\nBcc: victim@example.net\r\nSubject: buy now", "sv-SE", "image/png", "a.png")
	v.want(v.do("POST", "/v1/media", "writer", inject), 422, `{"name":["is invalid"]}`)
	inject = newMedium("shop\n", "ui", "x", "sv-SE", "image/png", "a.png")
	v.want(v.do("POST", "/v1/media", "writer", inject), 422, `{"app":["is invalid"]}`)
	bad := newMedium("shop", "ui", "x", "sv-SE", "image/png", "a.png")
	bad["email"] = "a@example.com\r\nRCPT TO:<victim@example.net>"
	v.want(v.do("POST", "/v1/media", "writer", bad), 422, `{"email":["is invalid"]}`)

	expiring := func(name, email, at string) {
		t.Helper()
		m := newMedium("shop", "ui", name, "sv-SE", "image/png", "a.png")
		m["email"], m["delete_at"] = email, at
		v.want(v.do("POST", "/v1/media", "writer", m), 201, "")
	}
	mails := func() []string {
		var got []string
		for {
			select {
			case m := <-v.mails:
				got = append(got, m)
			case <-time.After(time.Second):
				return got
			}
		}
	}
	// Already past: deleted at once, never mailed.
	expiring("past", "victim@example.net", "2020-01-01T00:00:00Z")
	if n, err := v.e.Expire(context.Background()); err != nil || n == 0 {
		t.Fatalf("Expire: %d, %v", n, err)
	}
	if got := mails(); len(got) != 0 {
		t.Fatalf("a medium written with a past delete_at was mailed about: %q", got)
	}
	// Twelve to one address; one, with a name outside ASCII, to another.
	expiring("Grüße", "other@example.com", "2026-05-01T12:00:00Z")
	for i := range 12 {
		expiring(fmt.Sprint("m", i), "owner@example.com", "2026-05-01T12:00:00Z")
	}
	v.now.Store(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	if n, err := v.e.Expire(context.Background()); err != nil || n == 0 {
		t.Fatalf("Expire: %d, %v", n, err)
	}
	got := mails()
	owner := 0
	for _, m := range got {
		if strings.Contains(m, "RCPT TO:<owner@example.com>") {
			owner++
		}
	}
	if owner == 0 || owner > 10 || len(got) != owner+1 {
		t.Fatalf("%d mails to one address at once (want 1 to 10), %d in all", owner, len(got))
	}
	encoded := false
	for _, m := range got {
		for _, line := range strings.Split(m, "\r\n") {
			if strings.HasPrefix(line, "Bcc:") || strings.HasPrefix(line, "Subject:") && strings.ContainsFunc(line, func(r rune) bool { return r > 127 }) {
				t.Errorf("header line %q", line)
			}
			if strings.HasPrefix(line, "Subject: =?utf-8?q?") {
				encoded = true
			}
		}
	}
	if !encoded {
		t.Errorf("no mail with an encoded Subject among %d", len(got))
	}
}

// TestNotificationRelayStalls: a relay that accepts the connection and
// never answers holds up neither the sweeper nor the API.
func TestNotificationRelayStalls(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // and never a word
		}
	}()
	var now atomic.Int64
	now.Store(time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	e := enginetest.Open(t, engine.Options{Now: clock, GCGrace: -1})
	// The sender may log its failure after the test: not to the test's log.
	quiet := slog.New(slog.DiscardHandler)
	ts := httptest.NewServer(server.New(server.Config{Engine: e, Logger: quiet, Now: clock, OceanMedia: oceanmedia.Config{Notify: mail.Sender{Addr: ln.Addr().String(), From: "cairn@test"}.Send}}))
	defer ts.Close()
	_, pw, err := oceanmedia.NewUsers(e).Add(context.Background(), "w", "", oceanmedia.ReadWrite)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", ts.URL+"/v1/authentications", nil)
	req.Header.Set("X-API-Authenticate", base64.StdEncoding.EncodeToString([]byte("w:"+pw)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var a struct{ Authentication struct{ Token string } }
	json.NewDecoder(res.Body).Decode(&a)
	res.Body.Close()
	for i := range 3 {
		m := newMedium("shop", "ui", fmt.Sprint("n", i), "sv-SE", "image/png", "a.png")
		m["email"], m["delete_at"] = "owner@example.com", "2026-04-01T12:00:01Z"
		b, _ := json.Marshal(m)
		req, _ := http.NewRequest("POST", ts.URL+"/v1/media", bytes.NewReader(b))
		req.Header.Set("X-API-Token", a.Authentication.Token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 201 {
			t.Fatalf("create: %v, %v", res.StatusCode, err)
		}
		res.Body.Close()
	}
	now.Add(int64(time.Minute))
	start := time.Now()
	if n, err := e.Expire(context.Background()); err != nil || n == 0 {
		t.Fatalf("Expire: %d, %v", n, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the sweeper waited %v for a relay that never answers", d)
	}
}

// TestPrivateResponses: what an API user reads is theirs: no shared cache
// may keep it (Cache-Control: private, no-store), even with an ETag; the
// medium's public url may be cached, revalidated by its ETag.
func TestPrivateResponses(t *testing.T) {
	v := newEnv(t)
	body := newMedium("shop", "ui", "a", "sv-SE", "image/png", "a.png")
	body["payload"] = base64.StdEncoding.EncodeToString([]byte("\x89PNG\r\n\x1a\nabc"))
	m := decode(t, v.do("POST", "/v1/media", "writer", body).body)
	r := v.do("GET", "/v1/media/"+m.id(), "reader", nil)
	if cc := r.h.Get("Cache-Control"); r.code != 200 || cc != "private, no-store" {
		t.Errorf("GET a medium: %d, Cache-Control %q; want private, no-store", r.code, cc)
	}
	r = v.do("GET", "/v1/media/"+m.id(), "reader", nil, "If-None-Match", r.h.Get("ETag"))
	if cc := r.h.Get("Cache-Control"); r.code != 304 || cc != "private, no-store" {
		t.Errorf("GET a medium again: %d, Cache-Control %q", r.code, cc)
	}
	for _, path := range []string{"/v1/media?app=shop", "/v1/media/nope"} {
		if r := v.do("GET", path, "reader", nil); r.h.Get("Cache-Control") != "private, no-store" {
			t.Errorf("GET %s: Cache-Control %q", path, r.h.Get("Cache-Control"))
		}
	}
	res, err := http.Get(m.Links["url"].Href)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if cc := res.Header.Get("Cache-Control"); res.StatusCode != 200 || cc != "public, no-cache" {
		t.Errorf("GET the public url: %d, Cache-Control %q; want public, no-cache", res.StatusCode, cc)
	}
}
