package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestBearer(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", nil},
		{"bearer abc", "abc", nil},
		{"  Bearer   abc  ", "abc", nil},
		{"", "", ErrNoCredentials},
		{"Basic dXNlcjpwdw==", "", ErrInvalid},
		{"Bearer", "", ErrInvalid},
		{"Bearer ", "", ErrInvalid},
		{"Bearer a b", "", ErrInvalid},
		{"Bearer é", "", ErrInvalid},
		{"Bearer " + strings.Repeat("a", MaxTokenLen+1), "", ErrInvalid},
	} {
		got, err := Bearer(tc.in)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("Bearer(%.30q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestVerifyHS256(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	key := []byte("the-secret")
	secrets := func(sub string) ([]byte, bool) {
		if sub == "alice" {
			return key, true
		}
		return nil, false
	}
	sign := func(method jwt.SigningMethod, claims jwt.MapClaims, k any) string {
		s, err := jwt.NewWithClaims(method, claims).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good, err := SignHS256("alice", key, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	unsigned := func(claims string) string {
		enc := base64.RawURLEncoding.EncodeToString
		return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc([]byte(claims)) + "."
	}
	exp := now.Add(time.Hour).Unix()
	for _, tc := range []struct {
		name, tok string
		ok        bool
	}{
		{"good", good, true},
		{"within leeway", sign(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": now.Add(-Leeway / 2).Unix()}, key), true},
		{"expired", sign(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": now.Add(-time.Minute).Unix()}, key), false},
		{"no exp", sign(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice"}, key), false},
		{"no sub", sign(jwt.SigningMethodHS256, jwt.MapClaims{"exp": exp}, key), false},
		{"unknown user", sign(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "bob", "exp": exp}, key), false},
		{"wrong secret", sign(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": exp}, []byte("guess")), false},
		{"HS512", sign(jwt.SigningMethodHS512, jwt.MapClaims{"sub": "alice", "exp": exp}, key), false},
		{"alg none", unsigned(`{"sub":"alice","exp":` + jwt.NewNumericDate(now.Add(time.Hour)).String() + `}`), false},
		{"not before", sign(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice", "exp": exp, "nbf": now.Add(time.Minute).Unix()}, key), false},
		{"garbage", "a.b.c", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub, err := VerifyHS256(tc.tok, secrets, clock)
			if tc.ok {
				if err != nil || sub != "alice" {
					t.Fatalf("VerifyHS256 = %q, %v; want alice", sub, err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("VerifyHS256 = %q, %v; want ErrInvalid", sub, err)
			}
		})
	}
}

func TestEqual(t *testing.T) {
	if !Equal("abc", "abc") || Equal("abc", "abd") || Equal("abc", "ab") || Equal("", "a") {
		t.Fatal("Equal is wrong")
	}
	if a, b := NewSecret(), NewSecret(); a == b || len(a) != 43 {
		t.Fatalf("NewSecret gave %q and %q", a, b)
	}
}

// FuzzAuthorization checks that the header parser and the verifier never
// panic on arbitrary input and accept nothing unsigned.
func FuzzAuthorization(f *testing.F) {
	for _, s := range []string{"Bearer a.b.c", "bearer  x", "Basic abc", "", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."} {
		f.Add(s)
	}
	now := func() time.Time { return time.Unix(1_800_000_000, 0) }
	f.Fuzz(func(t *testing.T, header string) {
		tok, err := Bearer(header)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNoCredentials) {
				t.Fatalf("Bearer(%q): unexpected error %v", header, err)
			}
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
			t.Fatalf("Bearer(%q) = %q", header, tok)
		}
		// No token made by the fuzzer is signed by this random key.
		if sub, err := VerifyHS256(tok, func(string) ([]byte, bool) { return []byte(NewSecret()), true }, now); err == nil {
			t.Fatalf("VerifyHS256(%q) accepted sub %q", tok, sub)
		}
	})
}

func TestBasic(t *testing.T) {
	enc := base64.StdEncoding.EncodeToString
	for _, tc := range []struct {
		in, user, pw string
		err          error
	}{
		{"Basic " + enc([]byte("alice:s3cret:x")), "alice", "s3cret:x", nil},
		{"basic " + enc([]byte("bob:")), "bob", "", nil},
		{"", "", "", ErrNoCredentials},
		{"Bearer abc", "", "", ErrInvalid},
		{"Basic !!!", "", "", ErrInvalid},
		{"Basic " + enc([]byte("nocolon")), "", "", ErrInvalid},
		{"Basic " + enc([]byte(":pw")), "", "", ErrInvalid},
	} {
		u, p, err := BasicCredentials(tc.in)
		if u != tc.user || p != tc.pw || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("BasicCredentials(%q) = %q, %q, %v", tc.in, u, p, err)
		}
	}
}

func TestPasswords(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p := NewPasswords(time.Minute, func() time.Time { return now })
	h, err := HashPassword("right")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Verify("alice", "right", h, true) || p.Verify("alice", "wrong", h, true) || p.Verify("bob", "right", h, false) {
		t.Fatal("Verify is wrong")
	}
	// Cached: a success costs no bcrypt (the wrong password still fails).
	before := p.compares
	for range 100 {
		if !p.Verify("alice", "right", h, true) {
			t.Fatal("cached verification failed")
		}
	}
	if p.compares != before {
		t.Errorf("100 verifications of a cached success ran bcrypt %d times", p.compares-before)
	}
	if p.Verify("alice", "wrong", h, true) {
		t.Fatal("a wrong password passed after a cached success")
	}
	now = now.Add(2 * time.Minute)
	if !p.Verify("alice", "right", h, true) || p.compares != before+2 {
		t.Errorf("after the cache expired: %d bcrypt runs, want 2 more", p.compares-before)
	}
	// A new password's hash invalidates the cache.
	h2, _ := HashPassword("new")
	if p.Verify("alice", "right", h2, true) || !p.Verify("alice", "new", h2, true) {
		t.Fatal("changed password not honoured")
	}
	if _, err := HashPassword(strings.Repeat("x", 73)); err == nil {
		t.Error("a 73-byte password was accepted")
	}
}
