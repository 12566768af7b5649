// Package auth is the credential checks the APIs share.
//
// It parses an Authorization header, verifies and signs HS256 JWTs,
// compares secrets in constant time, and generates them. It knows nothing of where
// users are kept: callers pass a lookup.
//
// Everything here is safe for concurrent use.
//
//	tok, err := auth.Bearer(r.Header.Get("Authorization"))
//	sub, err := auth.VerifyHS256(tok, lookupSecret, time.Now)
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	// ErrNoCredentials: the request carries no credentials at all.
	ErrNoCredentials = errors.New("auth: no credentials")
	// ErrInvalid: credentials are present but malformed, expired, of an
	// unknown user, or wrongly signed. Callers answer all of these alike,
	// so that the answer says nothing about which users exist.
	ErrInvalid = errors.New("auth: invalid credentials")
	// ErrExpired: a token that is well signed but past its expiry. It is
	// also ErrInvalid (errors.Is), for callers that answer both alike;
	// those whose documents tell the two apart branch on it.
	ErrExpired = errors.New("auth: token expired")
)

// MaxTokenLen bounds a bearer token; longer ones are invalid unparsed.
const MaxTokenLen = 4096

// Bearer returns the token of an Authorization header value of the form
// "Bearer <token>" (the scheme is case-insensitive, RFC 7235).
func Bearer(header string) (string, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return "", ErrNoCredentials
	}
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: not a Bearer authorization", ErrInvalid)
	}
	tok = strings.TrimSpace(tok)
	switch {
	case tok == "":
		return "", fmt.Errorf("%w: empty bearer token", ErrInvalid)
	case len(tok) > MaxTokenLen:
		return "", fmt.Errorf("%w: bearer token longer than %d bytes", ErrInvalid, MaxTokenLen)
	case strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r > '~' }):
		return "", fmt.Errorf("%w: bearer token with spaces or non-ASCII", ErrInvalid)
	}
	return tok, nil
}

// Leeway is the clock skew allowed on exp, nbf and iat.
const Leeway = 30 * time.Second

// dummyKey stands in for the secret of an unknown user, so that
// verifying a token of a user who does not exist costs what verifying a
// wrongly signed one does.
var dummyKey = func() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}()

// VerifyHS256 verifies a JWT signed with HMAC-SHA256 by the secret of
// its subject, which secret returns (ok false for an unknown subject).
// Only HS256 is accepted (alg none, RS256 and the rest are invalid); sub
// and exp are required; exp, nbf and iat are checked at now() with Leeway.
// It returns the subject.
func VerifyHS256(token string, secret func(sub string) (key []byte, ok bool), now func() time.Time) (string, error) {
	var claims jwt.RegisteredClaims
	if err := VerifyHS256Claims(token, &claims, secret, now); err != nil {
		return "", err
	}
	return claims.Subject, nil
}

// VerifyHS256Claims is VerifyHS256 for a token with claims of the
// caller's own (a struct embedding jwt.RegisteredClaims), which it fills.
func VerifyHS256Claims(token string, claims jwt.Claims, secret func(sub string) (key []byte, ok bool), now func() time.Time) error {
	if len(token) > MaxTokenLen {
		return fmt.Errorf("%w: token too long", ErrInvalid)
	}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		sub, _ := t.Claims.GetSubject()
		if sub == "" {
			return nil, errors.New("no sub claim")
		}
		if key, ok := secret(sub); ok {
			return key, nil
		}
		return dummyKey, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(now),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w: %w: %w", ErrInvalid, ErrExpired, err)
	case err != nil:
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// SignHS256 returns a JWT for sub, issued now and expiring after ttl,
// signed with HMAC-SHA256 by key.
func SignHS256(sub string, key []byte, now time.Time, ttl time.Duration) (string, error) {
	return SignHS256Claims(&jwt.RegisteredClaims{
		Subject:   sub,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}, key)
}

// SignHS256Claims returns a JWT of claims signed with HMAC-SHA256 by key.
func SignHS256Claims(claims jwt.Claims, key []byte) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
}

// Equal compares two secrets in time that depends on their lengths only
// (through a fixed-size MAC, not even on those).
func Equal(a, b string) bool {
	ma := hmac.New(sha256.New, dummyKey)
	ma.Write([]byte(a))
	mb := hmac.New(sha256.New, dummyKey)
	mb.Write([]byte(b))
	return subtle.ConstantTimeCompare(ma.Sum(nil), mb.Sum(nil)) == 1
}

// NewSecret returns a random secret: 32 bytes, base64url without padding.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
