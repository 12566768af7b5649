package mediaservice

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/keyspace"
	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/records"
)

// Scopes of the media service.
const (
	ScopeManage = "media.asset_manage"
	ScopeRead   = "media.asset_read"
)

// Client is an OAuth2 client (client-credentials grant) bound to one
// tenant and a set of scopes.
type Client struct {
	ID string `json:"id"`
	// Gen is random, made when the client is: its tokens carry it, so
	// that a client deleted and made again under the same ID (for
	// another tenant, say) never accepts the old one's tokens. Clients
	// made before it existed have none.
	Gen     string    `json:"gen,omitempty"`
	Hash    string    `json:"hash"`
	Tenant  string    `json:"tenant"`
	Scopes  []string  `json:"scopes"`
	Created time.Time `json:"created"`
}

const (
	clientsNamespace = keyspace.MediaServiceClients
	// keyRecord holds the HS256 key that signs access tokens, made on
	// first use and kept in the store, so tokens survive restarts.
	keyNamespace = keyspace.MediaServiceKey
)

var (
	// ErrClientExists: Add of an ID that is taken.
	ErrClientExists = errors.New("mediaservice: client exists")
	// ErrNoClient: the client does not exist.
	ErrNoClient = errors.New("mediaservice: no such client")
	// ErrInvalidClient: a bad client ID, tenant or scope.
	ErrInvalidClient = errors.New("mediaservice: invalid client")
)

var tenantRE = regexp.MustCompile(`^[a-z][a-z0-9]{2,15}$`)

// Clients manages the OAuth2 clients kept in the store.
type Clients struct{ s records.Store[Client] }

// NewClients returns the clients of the store e.
func NewClients(e *engine.Engine) *Clients {
	return &Clients{records.Store[Client]{Engine: e, Namespace: clientsNamespace, What: "client", Missing: ErrNoClient, Exists: ErrClientExists}}
}

// Add creates a client for tenant with scopes; it returns the client
// secret, which is shown once and kept only as a bcrypt hash.
func (c *Clients) Add(ctx context.Context, id, tenant string, scopes []string) (string, error) {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, ": \t\n") {
		return "", fmt.Errorf("%w: a client ID is 1 to 128 characters without spaces or ':'", ErrInvalidClient)
	}
	if !tenantRE.MatchString(tenant) {
		return "", fmt.Errorf("%w: a tenant is 3 to 16 lowercase letters and digits, beginning with a letter", ErrInvalidClient)
	}
	for _, s := range scopes {
		if s != ScopeManage && s != ScopeRead {
			return "", fmt.Errorf("%w: scope %q is neither %s nor %s", ErrInvalidClient, s, ScopeManage, ScopeRead)
		}
	}
	if len(scopes) == 0 {
		return "", fmt.Errorf("%w: a client needs at least one scope", ErrInvalidClient)
	}
	secret := auth.NewSecret()
	hash, err := auth.HashPassword(secret[:40])
	if err != nil {
		return "", err
	}
	cl := Client{ID: id, Gen: auth.NewSecret()[:22], Hash: hash, Tenant: tenant, Scopes: slices.Compact(slices.Sorted(slices.Values(scopes))), Created: time.Now().UTC().Truncate(time.Second)}
	return secret[:40], c.s.Add(ctx, "", id, cl)
}

// Rotate gives a client a new secret, returned (shown once, kept only as
// a bcrypt hash), and a new generation: tokens issued before stop
// working, as they would had the client been deleted and made again.
func (c *Clients) Rotate(ctx context.Context, id string) (string, error) {
	if id == "" || len(id) > 128 {
		return "", ErrNoClient
	}
	secret := auth.NewSecret()
	hash, err := auth.HashPassword(secret[:40])
	if err != nil {
		return "", err
	}
	_, err = c.s.Update(ctx, "", id, func(cl *Client) error {
		cl.Hash, cl.Gen = hash, auth.NewSecret()[:22]
		return nil
	})
	if err != nil {
		return "", err
	}
	return secret[:40], nil
}

// Get returns a client, or ErrNoClient.
func (c *Clients) Get(id string) (Client, error) {
	if id == "" || len(id) > 128 {
		return Client{}, ErrNoClient
	}
	return c.s.Get("", id)
}

// List returns every client, by ID.
func (c *Clients) List() ([]Client, error) { return c.s.List("") }

// Delete removes a client; its tokens stop working.
func (c *Clients) Delete(ctx context.Context, id string) error { return c.s.Delete(ctx, "", id) }

// signingKey returns the store's token signing key, making it once.
func signingKey(ctx context.Context, e *engine.Engine) ([]byte, error) {
	return auth.StoreKey(ctx, e, keyNamespace)
}

// SealSecrets seals the token signing key if an earlier version kept it
// in clear (and makes it if there is none).
func SealSecrets(ctx context.Context, e *engine.Engine) error {
	_, err := signingKey(ctx, e)
	return err
}
