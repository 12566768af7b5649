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
