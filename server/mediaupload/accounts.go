package mediaupload

import (
	"context"
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

// Account is a media upload account: Basic auth credentials, the password
// kept as a bcrypt hash.
type Account struct {
	Name string `json:"name"`
	// ID is random, made with the account: its files are kept under it,
	// so that an account deleted and made again under the same name
	// never sees the old one's files. Accounts made before it existed
	// have none, and keep their files under their name.
	ID      string    `json:"id,omitempty"`
	Hash    string    `json:"hash"`
	Created time.Time `json:"created"`
}

// tenant is where the account's files are kept: ":<ID>" (no name has a
// ':'), or its name for an account made before IDs.
func (acc Account) tenant() string {
	if acc.ID == "" {
		return acc.Name
	}
	return ":" + acc.ID
}

const accountsNamespace = keyspace.MediaUploadAccounts

var (
	// ErrAccountExists: Add of a name that is taken.
	ErrAccountExists = errors.New("mediaupload: account exists")
	// ErrNoAccount: the account does not exist.
	ErrNoAccount = errors.New("mediaupload: no such account")
	// ErrInvalidAccount: a bad account name or password.
	ErrInvalidAccount = errors.New("mediaupload: invalid account")
	// ErrHasFiles: deleting an account that still has files, without
	// purging them.
	ErrHasFiles = errors.New("mediaupload: the account still has files")
)

// Accounts manages the accounts kept in the store. Safe for concurrent use.
type Accounts struct {
	e *engine.Engine
	s records.Store[Account]
}

// NewAccounts returns the accounts of the store e.
func NewAccounts(e *engine.Engine) *Accounts {
	return &Accounts{e, records.Store[Account]{Engine: e, Namespace: accountsNamespace, What: "account", Missing: ErrNoAccount, Exists: ErrAccountExists}}
}

func validName(name string) error {
	if name == "" || len(name) > 128 || strings.ContainsAny(name, ":") || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%w: an account name is 1 to 128 characters, without spaces, control characters or ':'", ErrInvalidAccount)
	}
	return nil
}

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 12

// Set creates (create true) or updates the password of an account. An
// empty password means a new random one, which it returns.
func (a *Accounts) Set(ctx context.Context, name, password string, create bool) (string, error) {
	if err := validName(name); err != nil {
		return "", err
	}
	if password == "" {
		password = auth.NewSecret()[:24]
	}
	if len(password) < MinPasswordLen {
		return "", fmt.Errorf("%w: a password is at least %d bytes", ErrInvalidAccount, MinPasswordLen)
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidAccount, err)
	}
	if create {
		acc := Account{Name: name, ID: uuid.NewString(), Hash: hash, Created: time.Now().UTC().Truncate(time.Second)}
		return password, a.s.Add(ctx, "", name, acc)
	}
	_, err = a.s.Update(ctx, "", name, func(acc *Account) error { acc.Hash = hash; return nil })
	return password, err
}

// Get returns an account, or ErrNoAccount.
func (a *Accounts) Get(name string) (Account, error) {
	if validName(name) != nil {
		return Account{}, ErrNoAccount
	}
	return a.s.Get("", name)
}

// List returns every account, by name.
func (a *Accounts) List() ([]Account, error) { return a.s.List("") }

// Delete removes an account. One that still has files is refused
// (ErrHasFiles) unless purge, which deletes them too. The account goes
// first: an upload that commits after finds it gone and fails.
func (a *Accounts) Delete(ctx context.Context, name string, purge bool) error {
	acc, err := a.Get(name)
	if err != nil {
		return err
	}
	if !purge {
		for _, err := range a.e.Records(namespace, acc.tenant(), "", "") {
			if err != nil {
				return err
			}
			return fmt.Errorf("%w: %s (delete them, or purge)", ErrHasFiles, name)
		}
	}
	err = a.e.Update(ctx, func(tx *engine.Tx) error {
		cur, rec, err := a.s.GetTx(tx, "", name)
		if err != nil {
			return err
		}
		if cur.ID != acc.ID {
			return fmt.Errorf("%w: %s changed meanwhile", ErrNoAccount, name)
		}
		return tx.Delete(rec.Key)
	})
	if err != nil {
		return err
	}
	return a.e.DeleteAll(ctx, namespace, acc.tenant(), deleteFile)
}
