package cloudstorage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/keyspace"
	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/records"
)

// Perm is a user's access to a bucket. WRITE implies READ.
type Perm string

const (
	Read  Perm = "READ"
	Write Perm = "WRITE"
)

// ParsePerm accepts READ or WRITE in any case.
func ParsePerm(s string) (Perm, error) {
	switch p := Perm(strings.ToUpper(s)); p {
	case Read, Write:
		return p, nil
	}
	return "", fmt.Errorf("%w: permission %q is neither READ nor WRITE", ErrInvalidUser, s)
}

// allows reports whether having p is enough for need.
func (p Perm) allows(need Perm) bool { return p == Write || p == need }

// User is a cloud storage user: an ID and secret that sign its JWTs, and
// its access per bucket. The secret is kept sealed with the store's key
// file (engine.Seal): HS256 verification needs the secret itself, so a
// hash would not do, and a copy of the index alone must mint no token.
type User struct {
	ID      string          `json:"id"`
	Secret  string          `json:"secret"`
	Buckets map[string]Perm `json:"buckets"`
	Created time.Time       `json:"created"`
}

// usersNamespace holds users in the index: one record per user, no
// content, the user as JSON in Meta.
const usersNamespace = keyspace.CloudStorageUsers

var (
	// ErrUserExists: Add of an ID that is taken.
	ErrUserExists = errors.New("cloudstorage: user exists")
	// ErrNoUser: the user does not exist.
	ErrNoUser = errors.New("cloudstorage: no such user")
	// ErrInvalidUser: a bad user ID, secret or permission.
	ErrInvalidUser = errors.New("cloudstorage: invalid user")
)

// Users manages the users kept in the store. Safe for concurrent use.
type Users struct {
	e *engine.Engine
	s records.Store[User]
}

// NewUsers returns the users of the store e.
func NewUsers(e *engine.Engine) *Users {
	return &Users{e, records.Store[User]{Engine: e, Namespace: usersNamespace, What: "user", Missing: ErrNoUser, Exists: ErrUserExists}}
}

func validUserID(id string) error {
	if id == "" || len(id) > 128 || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%w: user ID must be 1 to 128 characters without spaces or control characters", ErrInvalidUser)
	}
	return nil
}

// MinSecretLen is the shortest secret accepted: HS256 keys shorter than
// this are guessable offline from any token.
const MinSecretLen = 32

func validSecret(s string) error {
	if len(s) < MinSecretLen {
		return fmt.Errorf("%w: a secret must be at least %d bytes", ErrInvalidUser, MinSecretLen)
	}
	return nil
}

// Add creates a user. An empty secret means a new random one.
func (u *Users) Add(ctx context.Context, id, secret string) (User, error) {
	if err := validUserID(id); err != nil {
		return User{}, err
	}
	if secret == "" {
		secret = auth.NewSecret()
	}
	if err := validSecret(secret); err != nil {
		return User{}, err
	}
	usr := User{ID: id, Secret: secret, Buckets: map[string]Perm{}, Created: time.Now().UTC().Truncate(time.Second)}
	return usr, u.s.Add(ctx, "", id, u.sealed(usr))
}

func secretPurpose(id string) string { return usersNamespace + "/" + id }

// sealed is usr as it is kept: its secret sealed.
func (u *Users) sealed(usr User) User {
	usr.Secret = string(u.e.Seal(secretPurpose(usr.ID), []byte(usr.Secret)))
	return usr
}

// opened is a kept user with its secret opened; sealed is false for a
// secret an earlier version kept in clear.
func (u *Users) opened(usr User) (_ User, sealed bool, err error) {
	secret, sealed, err := u.e.Unseal(secretPurpose(usr.ID), []byte(usr.Secret))
	if err != nil {
		return User{}, false, err
	}
	usr.Secret = string(secret)
	if usr.Buckets == nil {
		usr.Buckets = map[string]Perm{}
	}
	return usr, sealed, nil
}

// SealSecrets seals the secrets an earlier version kept in clear, and
// returns how many it sealed.
func (u *Users) SealSecrets(ctx context.Context) (int, error) {
	n := 0
	for kept, err := range u.s.All("") {
		if err != nil {
			return n, err
		}
		if _, sealed, err := u.opened(kept); err != nil || sealed {
			continue
		}
		_, err := u.s.Update(ctx, "", kept.ID, func(cur *User) error {
			usr, sealed, err := u.opened(*cur)
			if err == nil && !sealed {
				*cur = u.sealed(usr)
			}
			return err
		})
		if err != nil && !errors.Is(err, ErrNoUser) {
			return n, err
		}
		n++
	}
	return n, nil
}

// Get returns a user, or ErrNoUser.
func (u *Users) Get(id string) (User, error) {
	if validUserID(id) != nil {
		return User{}, ErrNoUser
	}
	kept, err := u.s.Get("", id)
	if err != nil {
		return User{}, err
	}
	usr, _, err := u.opened(kept)
	return usr, err
}

// List returns every user, in ID order.
func (u *Users) List() ([]User, error) {
	var out []User
	for kept, err := range u.s.All("") {
		if err != nil {
			return nil, err
		}
		usr, _, err := u.opened(kept)
		if err != nil {
			return nil, err
		}
		out = append(out, usr)
	}
	return out, nil
}

// update applies fn to the user id, its secret opened, in one
// transaction.
func (u *Users) update(ctx context.Context, id string, fn func(*User) error) (User, error) {
	var usr User
	_, err := u.s.Update(ctx, "", id, func(kept *User) error {
		var err error
		if usr, _, err = u.opened(*kept); err != nil {
			return err
		}
		if err := fn(&usr); err != nil {
			return err
		}
		*kept = u.sealed(usr)
		return nil
	})
	return usr, err
}

// Rotate replaces a user's secret (a new random one if secret is empty);
// tokens signed with the old one stop working at once.
func (u *Users) Rotate(ctx context.Context, id, secret string) (User, error) {
	if secret == "" {
		secret = auth.NewSecret()
	}
	if err := validSecret(secret); err != nil {
		return User{}, err
	}
	return u.update(ctx, id, func(usr *User) error { usr.Secret = secret; return nil })
}

// Grant gives a user p on bucket, replacing what it had there.
func (u *Users) Grant(ctx context.Context, id, bucket string, p Perm) (User, error) {
	if bucket == "" || strings.ContainsAny(bucket, `/\`) {
		return User{}, fmt.Errorf("%w: bucket %q", ErrInvalidUser, bucket)
	}
	return u.update(ctx, id, func(usr *User) error { usr.Buckets[bucket] = p; return nil })
}

// Revoke removes a user's access to bucket.
func (u *Users) Revoke(ctx context.Context, id, bucket string) (User, error) {
	return u.update(ctx, id, func(usr *User) error { delete(usr.Buckets, bucket); return nil })
}

// Delete removes a user.
func (u *Users) Delete(ctx context.Context, id string) error { return u.s.Delete(ctx, "", id) }

// BucketList is a user's grants as "bucket:PERM" in bucket order.
func (usr User) BucketList() []string {
	out := make([]string, 0, len(usr.Buckets))
	for b, p := range usr.Buckets {
		out = append(out, b+":"+string(p))
	}
	slices.Sort(out)
	return out
}

// Token returns a JWT for user id, signed with its secret, valid for ttl
// from now: what a client of the API would make itself.
func (u *Users) Token(id string, now time.Time, ttl time.Duration) (string, error) {
	usr, err := u.Get(id)
	if err != nil {
		return "", err
	}
	return auth.SignHS256(usr.ID, []byte(usr.Secret), now, ttl)
}
