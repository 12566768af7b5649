package cloudstorage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/auth"
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
const usersNamespace = "cloudstorage.users"

var (
	// ErrUserExists: Add of an ID that is taken.
	ErrUserExists = errors.New("cloudstorage: user exists")
	// ErrNoUser: the user does not exist.
	ErrNoUser = errors.New("cloudstorage: no such user")
	// ErrInvalidUser: a bad user ID, secret or permission.
	ErrInvalidUser = errors.New("cloudstorage: invalid user")
)

// Users manages the users kept in the store. Safe for concurrent use.
type Users struct{ e *engine.Engine }

// NewUsers returns the users of the store e.
func NewUsers(e *engine.Engine) *Users { return &Users{e: e} }

func userKey(id string) engine.Key {
	return engine.Key{Namespace: usersNamespace, Name: id}
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
	usr := User{ID: id, Secret: secret, Buckets: map[string]Perm{}}
	err := u.e.Update(ctx, func(tx *engine.Tx) error {
		if _, err := tx.Get(userKey(id)); err == nil {
			return fmt.Errorf("%w: %s", ErrUserExists, id)
		} else if !errors.Is(err, engine.ErrNotFound) {
			return err
		}
		usr.Created = time.Now().UTC().Truncate(time.Second)
		return u.put(tx, usr)
	})
	return usr, err
}

func secretPurpose(id string) string { return usersNamespace + "/" + id }

// put writes usr, its secret sealed.
func (u *Users) put(tx *engine.Tx, usr User) error {
	usr.Secret = string(u.e.Seal(secretPurpose(usr.ID), []byte(usr.Secret)))
	meta, err := json.Marshal(usr)
	if err != nil {
		return err
	}
	_, err = tx.Put(userKey(usr.ID), engine.Record{ContentType: "application/json", Meta: meta}, nil)
	return err
}

// decode reads a user record, its secret opened; sealed is false for a
// secret an earlier version kept in clear.
func (u *Users) decode(rec engine.Record) (usr User, sealed bool, err error) {
	if err := json.Unmarshal(rec.Meta, &usr); err != nil {
		return User{}, false, fmt.Errorf("%w: user record %s: %w", engine.ErrCorrupt, rec.Key.Name, err)
	}
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
	for rec, err := range u.e.Records(usersNamespace, "", "", "") {
		if err != nil {
			return n, err
		}
		if _, sealed, err := u.decode(rec); err != nil || sealed {
			continue
		}
		err := u.e.Update(ctx, func(tx *engine.Tx) error {
			cur, err := tx.Get(rec.Key)
			if err != nil {
				return err
			}
			usr, sealed, err := u.decode(cur)
			if err != nil || sealed {
				return err
			}
			return u.put(tx, usr)
		})
		if err != nil && !errors.Is(err, engine.ErrNotFound) {
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
	rec, err := u.e.GetRecord(userKey(id))
	if errors.Is(err, engine.ErrNotFound) {
		return User{}, fmt.Errorf("%w: %s", ErrNoUser, id)
	}
	if err != nil {
		return User{}, err
	}
	usr, _, err := u.decode(rec)
	return usr, err
}

// List returns every user, in ID order.
func (u *Users) List() ([]User, error) {
	var out []User
	for rec, err := range u.e.Records(usersNamespace, "", "", "") {
		if err != nil {
			return nil, err
		}
		usr, _, err := u.decode(rec)
		if err != nil {
			return nil, err
		}
		out = append(out, usr)
	}
	return out, nil
}

// update applies fn to the user id in one transaction.
func (u *Users) update(ctx context.Context, id string, fn func(*User) error) (User, error) {
	var usr User
	err := u.e.Update(ctx, func(tx *engine.Tx) error {
		rec, err := tx.Get(userKey(id))
		if errors.Is(err, engine.ErrNotFound) {
			return fmt.Errorf("%w: %s", ErrNoUser, id)
		}
		if err != nil {
			return err
		}
		if usr, _, err = u.decode(rec); err != nil {
			return err
		}
		if err := fn(&usr); err != nil {
			return err
		}
		return u.put(tx, usr)
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
func (u *Users) Delete(ctx context.Context, id string) error {
	err := u.e.DeleteRecord(ctx, userKey(id), 0)
	if errors.Is(err, engine.ErrNotFound) {
		return fmt.Errorf("%w: %s", ErrNoUser, id)
	}
	return err
}

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
