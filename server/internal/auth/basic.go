package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// BasicCredentials returns the user and password of an Authorization
// header value "Basic base64(user:password)" (RFC 7617).
func BasicCredentials(header string) (user, password string, err error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return "", "", ErrNoCredentials
	}
	scheme, enc, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") || len(enc) > MaxTokenLen {
		return "", "", fmt.Errorf("%w: not a Basic authorization", ErrInvalid)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return "", "", fmt.Errorf("%w: bad base64 in Basic credentials", ErrInvalid)
	}
	user, password, ok = strings.Cut(string(raw), ":")
	if !ok || user == "" {
		return "", "", fmt.Errorf("%w: Basic credentials without user:password", ErrInvalid)
	}
	return user, password, nil
}

// HashPassword returns a bcrypt hash of password.
func HashPassword(password string) (string, error) {
	if len(password) > 72 {
		return "", fmt.Errorf("%w: a password is at most 72 bytes (bcrypt's limit)", ErrInvalid)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	return string(h), err
}

// dummyHash is compared against when a user does not exist, so that an
// unknown user costs what a wrong password does.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)

// Passwords verifies passwords against bcrypt hashes, remembering recent
// successes for a while so that a busy client does not pay bcrypt on
// every request. Only successes are cached, keyed by user and a hash of
// the password; a changed hash (a new password) invalidates them. Safe for
// concurrent use.
type Passwords struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	ok  map[string]cached
	// compares counts bcrypt comparisons (for tests). Guarded by mu.
	compares int
}

type cached struct {
	hash    string // the stored hash it was verified against
	pw      [32]byte
	expires time.Time
}

// NewPasswords returns a verifier that caches successes for ttl.
func NewPasswords(ttl time.Duration, now func() time.Time) *Passwords {
	if now == nil {
		now = time.Now
	}
	return &Passwords{ttl: ttl, now: now, ok: map[string]cached{}}
}

// Verify checks password against the stored hash of user; found false
// means the user does not exist, and costs the same as a wrong password.
func (p *Passwords) Verify(user, password, hash string, found bool) bool {
	pw := sha256.Sum256([]byte(password))
	now := p.now()
	if found {
		p.mu.Lock()
		c, ok := p.ok[user]
		p.mu.Unlock()
		if ok && c.hash == hash && now.Before(c.expires) && subtle.ConstantTimeCompare(c.pw[:], pw[:]) == 1 {
			return true
		}
	}
	h := []byte(hash)
	if !found {
		h = dummyHash
	}
	p.mu.Lock()
	p.compares++
	p.mu.Unlock()
	if bcrypt.CompareHashAndPassword(h, []byte(password)) != nil || !found {
		return false
	}
	p.mu.Lock()
	if len(p.ok) > 10000 { // bounded: forget everything rather than grow
		clear(p.ok)
	}
	p.ok[user] = cached{hash: hash, pw: pw, expires: now.Add(p.ttl)}
	p.mu.Unlock()
	return true
}
