package oceanmedia

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/keyspace"
	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/records"
)

// Right is what an API user may do with media.
type Right string

const (
	// ReadOnly users may GET media; ReadWrite users may also create,
	// update and delete them.
	ReadOnly  Right = "read"
	ReadWrite Right = "write"
)

// User is an API user: Basic credentials exchanged for tokens at
// POST /v1/authentications. ID appears in creator and updater links.
type User struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Hash    string    `json:"hash"`
	Right   Right     `json:"right"`
	Created time.Time `json:"created"`
}

const (
	usersNamespace  = keyspace.OceanMediaUsers
	tokensNamespace = keyspace.OceanMediaTokens
)

var (
	// ErrUserExists: Add of a name that is taken.
	ErrUserExists = errors.New("oceanmedia: API user exists")
	// ErrNoUser: the API user does not exist.
	ErrNoUser = errors.New("oceanmedia: no such API user")
	// ErrInvalidUser: a bad name, password or right.
	ErrInvalidUser = errors.New("oceanmedia: invalid API user")
)

// Users manages the API users kept in the store. Safe for concurrent use.
type Users struct{ s records.Store[User] }

// NewUsers returns the API users of the store e.
func NewUsers(e *engine.Engine) *Users {
	return &Users{records.Store[User]{Engine: e, Namespace: usersNamespace, What: "API user", Missing: ErrNoUser, Exists: ErrUserExists}}
}

// Add creates an API user; an empty password means a random one, which it
// returns.
func (u *Users) Add(ctx context.Context, name, password string, right Right) (User, string, error) {
	if name == "" || len(name) > 128 || strings.ContainsAny(name, ": \t\n") {
		return User{}, "", fmt.Errorf("%w: a name is 1 to 128 characters without spaces or ':'", ErrInvalidUser)
	}
	if right != ReadOnly && right != ReadWrite {
		return User{}, "", fmt.Errorf("%w: right %q is neither read nor write", ErrInvalidUser, right)
	}
	if password == "" {
		password = auth.NewSecret()[:24]
	}
	if len(password) < 12 {
		return User{}, "", fmt.Errorf("%w: a password is at least 12 bytes", ErrInvalidUser)
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return User{}, "", fmt.Errorf("%w: %w", ErrInvalidUser, err)
	}
	usr := User{ID: uuid.NewString(), Name: name, Hash: hash, Right: right, Created: time.Now().UTC().Truncate(time.Second)}
	return usr, password, u.s.Add(ctx, "", name, usr)
}

// Get returns an API user, or ErrNoUser.
func (u *Users) Get(name string) (User, error) {
	if name == "" || len(name) > 128 {
		return User{}, ErrNoUser
	}
	return u.s.Get("", name)
}

// List returns every API user, by name.
func (u *Users) List() ([]User, error) { return u.s.List("") }

// Delete removes an API user; its tokens stop working.
func (u *Users) Delete(ctx context.Context, name string) error { return u.s.Delete(ctx, "", name) }

// token is what the store keeps of an issued token, under the hash of
// the token (the token itself is never stored). It names its user by
// name and by ID: a user deleted and made again under the same name has
// another ID, and none of the old one's tokens.
type token struct {
	User    string    `json:"user"`
	UserID  string    `json:"user_id"`
	Expires time.Time `json:"expires_at"`
}

func tokenKey(tok string) engine.Key {
	sum := sha256.Sum256([]byte(tok))
	return engine.Key{Namespace: tokensNamespace, Name: hex.EncodeToString(sum[:])}
}

// tokenGrace keeps an expired token's record a while, so that using it
// answers 419 (expired) rather than 400 (unknown); the sweeper removes it
// after.
const tokenGrace = 24 * time.Hour
