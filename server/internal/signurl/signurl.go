// Package signurl makes and checks signed, expiring URLs: a link to one
// download that works without credentials until it expires, as an S3
// presigned URL does.
//
// A signed URL is the download's own URL with four query parameters:
//
//	X-Cairn-Expires    the expiry, Unix seconds
//	X-Cairn-Key        the ID of the signing key
//	X-Cairn-Signer     who signed it, as the API names them (a user, a client)
//	X-Cairn-Signature  HMAC-SHA256 of the method, the path, the other query
//	                   parameters and these three, base64url
//
// The keys are kept in the store, sealed with its key file, and rotate:
// a new key signs from then on while the old ones still verify, until
// they are revoked, which ends every URL they signed. The API that serves
// the URL also checks that the signer may still read what it names, so
// deleting a user or taking away their access ends their URLs too.
//
// Functions here are safe for concurrent use.
package signurl

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/keyspace"
)

// The query parameters of a signed URL.
const (
	ParamExpires   = "X-Cairn-Expires"
	ParamKey       = "X-Cairn-Key"
	ParamSigner    = "X-Cairn-Signer"
	ParamSignature = "X-Cairn-Signature"
)

// MaxExpiry is the longest a URL may be valid for, as for S3's presigned
// URLs: a week.
const MaxExpiry = 7 * 24 * time.Hour

const (
	namespace  = keyspace.SigningKeys
	maxSigner  = 256
	maxKeyID   = 64
	macLen     = sha256.Size
	maxRawURL  = 8 << 10
	keyIDBytes = 8
)

var (
	// ErrNotSigned: the request carries none of the parameters.
	ErrNotSigned = errors.New("signurl: not a signed URL")
	// ErrInvalid: a signature that does not verify: malformed, altered,
	// of an unknown or revoked key.
	ErrInvalid = errors.New("signurl: invalid signature")
	// ErrExpired: a well-signed URL past its expiry.
	ErrExpired = errors.New("signurl: expired")
	// ErrExpiresIn: an expiresIn a caller asked for is out of range.
	ErrExpiresIn = fmt.Errorf("signurl: expiresIn must be a whole number of seconds from 1 to %d", int(MaxExpiry/time.Second))
	// ErrNoSuchKey: revoking a key that does not exist.
	ErrNoSuchKey = errors.New("signurl: no such signing key")
)

// Key is a signing key as an operator sees it (never its secret).
type Key struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
}

type stored struct {
	Secret  []byte    `json:"secret"` // sealed
	Created time.Time `json:"created"`
}

// Keys are the store's signing keys.
type Keys struct {
	e *engine.Engine
}

// NewKeys returns the signing keys of e's store.
func NewKeys(e *engine.Engine) *Keys { return &Keys{e: e} }

func purpose(id string) string { return namespace + "/" + id }

func recKey(id string) engine.Key { return engine.Key{Namespace: namespace, Name: id} }

// List returns the keys, newest first: the first signs.
func (k *Keys) List() ([]Key, error) {
	var out []Key
	for rec, err := range k.e.Namespace(namespace) {
		if err != nil {
			return nil, err
		}
		var s stored
		if err := json.Unmarshal(rec.Meta, &s); err != nil {
			return nil, fmt.Errorf("%w: signing key %s: %v", engine.ErrCorrupt, rec.Key.Name, err)
		}
		out = append(out, Key{ID: rec.Key.Name, Created: s.Created})
	}
	slices.SortFunc(out, func(a, b Key) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out, nil
}

// Rotate makes a new key, which signs from now on; the others still
// verify until revoked.
func (k *Keys) Rotate(ctx context.Context) (Key, error) {
	var id [keyIDBytes]byte
	rand.Read(id[:])
	secret := make([]byte, 32)
	rand.Read(secret)
	key := Key{ID: hex.EncodeToString(id[:]), Created: k.e.Now().UTC()}
	meta, err := json.Marshal(stored{Secret: k.e.Seal(purpose(key.ID), secret), Created: key.Created})
	if err != nil {
		return Key{}, err
	}
	err = k.e.Update(ctx, func(tx *engine.Tx) error {
		_, err := tx.Put(recKey(key.ID), engine.Record{Meta: meta}, nil)
		return err
	})
	return key, err
}

// Revoke deletes key id: every URL it signed answers 403 from now on.
func (k *Keys) Revoke(ctx context.Context, id string) error {
	if id == "" || len(id) > maxKeyID {
		return fmt.Errorf("%w: %q", ErrNoSuchKey, id)
	}
	err := k.e.DeleteRecord(ctx, recKey(id))
	if errors.Is(err, engine.ErrNotFound) {
		return fmt.Errorf("%w: %q", ErrNoSuchKey, id)
	}
	return err
}

func (k *Keys) secret(id string) ([]byte, error) {
	rec, err := k.e.GetRecord(recKey(id))
	if err != nil {
		return nil, err
	}
	var s stored
	if err := json.Unmarshal(rec.Meta, &s); err != nil {
		return nil, fmt.Errorf("%w: signing key %s: %v", engine.ErrCorrupt, id, err)
	}
	plain, _, err := k.e.Unseal(purpose(id), s.Secret)
	return plain, err
}

// current returns the newest key, making the first on first use.
func (k *Keys) current(ctx context.Context) (string, []byte, error) {
	list, err := k.List()
	if err != nil {
		return "", nil, err
	}
	var id string
	if len(list) > 0 {
		id = list[0].ID
	} else {
		key, err := k.Rotate(ctx)
		if err != nil {
			return "", nil, err
		}
		id = key.ID
	}
	secret, err := k.secret(id)
	return id, secret, err
}

// ExpiresIn parses an expiresIn query value: whole seconds, 1 to a week.
func ExpiresIn(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || n > int64(MaxExpiry/time.Second) {
		return 0, ErrExpiresIn
	}
	return time.Duration(n) * time.Second, nil
}

// Sign returns the URL base + path (escaped, as the URL will carry it)
// with query, signed for method by signer until expires.
func (k *Keys) Sign(ctx context.Context, method, base, path string, query url.Values, signer string, expires time.Time) (string, error) {
	if len(signer) > maxSigner {
		return "", fmt.Errorf("signurl: signer longer than %d bytes", maxSigner)
	}
	id, secret, err := k.current(ctx)
	if err != nil {
		return "", err
	}
	q := url.Values{}
	for name, vs := range query {
		q[name] = slices.Clone(vs)
	}
	q.Set(ParamExpires, strconv.FormatInt(expires.Unix(), 10))
	q.Set(ParamKey, id)
	q.Set(ParamSigner, signer)
	q.Set(ParamSignature, mac(secret, method, path, q))
	return strings.TrimSuffix(base, "/") + path + "?" + q.Encode(), nil
}

// Signed reports whether r carries any of a signed URL's parameters.
func Signed(r *http.Request) bool {
	q := r.URL.RawQuery
	return strings.Contains(q, "X-Cairn-")
}

// Verify checks r's signature for path, the escaped path of what r
// names as the API writes it (the form Sign was given, whatever
// equivalent escaping r used), and returns its signer: ErrNotSigned if r
// has none of the parameters; ErrInvalid if one is missing or malformed,
// the key unknown or revoked, or anything signed altered; ErrExpired past
// the expiry. HEAD is verified as GET. A caller answers all but
// ErrNotSigned with 403.
func (k *Keys) Verify(r *http.Request, path string, now time.Time) (string, error) {
	if !Signed(r) {
		return "", ErrNotSigned
	}
	if len(r.URL.RawQuery) > maxRawURL {
		return "", fmt.Errorf("%w: query longer than %d bytes", ErrInvalid, maxRawURL)
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	for _, p := range []string{ParamExpires, ParamKey, ParamSigner, ParamSignature} {
		if len(q[p]) != 1 {
			return "", fmt.Errorf("%w: %s must appear once", ErrInvalid, p)
		}
	}
	expires, err := strconv.ParseInt(q.Get(ParamExpires), 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: %s is not a number", ErrInvalid, ParamExpires)
	}
	got, err := base64.RawURLEncoding.DecodeString(q.Get(ParamSignature))
	if err != nil || len(got) != macLen {
		return "", fmt.Errorf("%w: malformed %s", ErrInvalid, ParamSignature)
	}
	signer, id := q.Get(ParamSigner), q.Get(ParamKey)
	if len(signer) > maxSigner || id == "" || len(id) > maxKeyID {
		return "", fmt.Errorf("%w: malformed %s or %s", ErrInvalid, ParamSigner, ParamKey)
	}
	secret, err := k.secret(id)
	known := err == nil
	if errors.Is(err, engine.ErrNotFound) {
		secret = dummy // a revoked key costs what a wrong signature does
	} else if err != nil {
		return "", err
	}
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	want, _ := base64.RawURLEncoding.DecodeString(mac(secret, method, path, q))
	if !hmac.Equal(got, want) || !known {
		return "", ErrInvalid
	}
	if now.Unix() >= expires {
		return "", ErrExpired
	}
	return signer, nil
}

var dummy = func() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}()

// mac is the signature of a request: method, path (escaped, as the API
// writes it) and every
// query parameter but the signature, in url.Values.Encode's sorted form.
func mac(secret []byte, method, path string, q url.Values) string {
	signed := url.Values{}
	for name, vs := range q {
		if name != ParamSignature {
			signed[name] = vs
		}
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(method + "\n" + path + "\n" + signed.Encode()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
