package signurl_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/server/internal/signurl"
)

var now = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func request(t testing.TB, method, u string) *http.Request {
	r, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSignVerify: what Sign makes verifies for its path, GET and HEAD,
// until its expiry; another path, method or query does not.
func TestSignVerify(t *testing.T) {
	e := enginetest.Open(t, engine.Options{Now: func() time.Time { return now }})
	keys := signurl.NewKeys(e)
	ctx := context.Background()
	u, err := keys.Sign(ctx, "GET", "https://media.example/", "/a/b%2Fc", url.Values{"v": {"1"}}, "ann", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, "https://media.example/a/b%2Fc?") {
		t.Fatalf("signed URL %q", u)
	}
	for _, m := range []string{"GET", "HEAD"} {
		if who, err := keys.Verify(request(t, m, u), "/a/b%2Fc", now); err != nil || who != "ann" {
			t.Fatalf("%s: %q, %v", m, who, err)
		}
	}
	for name, c := range map[string]struct {
		method, url, path string
		at                time.Time
		want              error
	}{
		"PUT":          {"PUT", u, "/a/b%2Fc", now, signurl.ErrInvalid},
		"other path":   {"GET", u, "/a/b/c", now, signurl.ErrInvalid},
		"query added":  {"GET", u + "&w=2", "/a/b%2Fc", now, signurl.ErrInvalid},
		"query gone":   {"GET", strings.Replace(u, "&v=1", "", 1), "/a/b%2Fc", now, signurl.ErrInvalid},
		"at expiry":    {"GET", u, "/a/b%2Fc", now.Add(time.Hour), signurl.ErrExpired},
		"not signed":   {"GET", "https://media.example/a/b%2Fc?v=1", "/a/b%2Fc", now, signurl.ErrNotSigned},
		"bad encoding": {"GET", u + "&%zz", "/a/b%2Fc", now, signurl.ErrInvalid},
	} {
		if _, err := keys.Verify(request(t, c.method, c.url), c.path, c.at); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	for _, bad := range []string{"0", "604801", "1.5", "", " 60"} {
		if _, err := signurl.ExpiresIn(bad); !errors.Is(err, signurl.ErrExpiresIn) {
			t.Errorf("ExpiresIn(%q) = %v", bad, err)
		}
	}
	if d, err := signurl.ExpiresIn("604800"); err != nil || d != signurl.MaxExpiry {
		t.Errorf("ExpiresIn(604800) = %v, %v", d, err)
	}
}

// FuzzVerify: no query string makes Verify panic or accept a signature
// it did not make.
func FuzzVerify(f *testing.F) {
	e := enginetest.Open(f, engine.Options{Now: func() time.Time { return now }})
	keys := signurl.NewKeys(e)
	u, err := keys.Sign(context.Background(), "GET", "http://x", "/p", nil, "ann", now.Add(time.Hour))
	if err != nil {
		f.Fatal(err)
	}
	good := u[strings.IndexByte(u, '?')+1:]
	f.Add(good)
	f.Add(strings.Replace(good, "ann", "bob", 1))
	f.Add("X-Cairn-Expires=1&X-Cairn-Key=&X-Cairn-Signer=&X-Cairn-Signature=")
	f.Add("X-Cairn-Signature=%zz")
	want, _ := url.ParseQuery(good)
	f.Fuzz(func(t *testing.T, query string) {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: "/p", RawQuery: query}}
		who, err := keys.Verify(r, "/p", now)
		if err != nil {
			return
		}
		// Accepted: it must say what was signed, however it is written.
		got, perr := url.ParseQuery(query)
		if perr != nil || got.Encode() != want.Encode() || who != "ann" {
			t.Fatalf("accepted %q as %q", query, who)
		}
	})
}
