package mediaservice

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/web"
)

// tokenPath is the token endpoint's, whose errors are RFC 6749's.
const tokenPath = "/oauth/token"

// token is POST /oauth/token, client-credentials grant; the client
// authenticates with HTTP Basic or client_id/client_secret form fields.
func (a *API) token(w http.ResponseWriter, r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return &oauthError{http.StatusBadRequest, "invalid_request", "the body must be application/x-www-form-urlencoded"}
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		return &oauthError{http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported"}
	}
	id, secret, err := auth.BasicCredentials(r.Header.Get("Authorization"))
	if errors.Is(err, auth.ErrNoCredentials) {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	now := a.Now()
	var cl Client
	err = a.Limits.Logins.SignIn(r, "mediaservice:"+id, now, func() bool {
		var gerr error
		cl, gerr = a.clients.Get(id)
		return a.passwords.Verify(id, secret, cl.Hash, gerr == nil)
	})
	if err != nil {
		return err
	}
	web.CORSResource(r, "tenant", cl.Tenant) // the tenant's CORS rule applies to its token
	key, err := signingKey(r.Context(), a.Engine)
	if err != nil {
		return err
	}
	tok, err := auth.SignHS256Claims(&tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: cl.ID, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(a.cfg.TokenTTL))},
		Gen:              cl.Gen,
	}, key)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	web.JSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int(a.cfg.TokenTTL.Seconds()),
		"scope": strings.Join(cl.Scopes, " "), "tenant": cl.Tenant,
	})
	return nil
}

// tokenClaims are an access token's: the client's ID (sub) and its
// generation (Client.Gen).
type tokenClaims struct {
	jwt.RegisteredClaims
	Gen string `json:"gen,omitempty"`
}

// authorize checks the bearer token, the tenant and that the client has
// one of the scopes, and returns the client's ID. A path that names
// another tenant than the token's is answered otherTenant: each
// operation's own answer from its contract (the 400 "Ambiguous tenant"
// is documented for create and update only).
func (a *API) authorize(r *http.Request, tenant string, otherTenant error, scopes ...string) (string, error) {
	tok, err := auth.Bearer(r.Header.Get("Authorization"))
	if err != nil {
		return "", errFaultInvalid
	}
	key, err := signingKey(r.Context(), a.Engine)
	if err != nil {
		return "", err
	}
	var c tokenClaims
	err = auth.VerifyHS256Claims(tok, &c, func(string) ([]byte, bool) { return key, true }, a.Now)
	id := c.Subject
	switch {
	case errors.Is(err, auth.ErrExpired):
		return "", errFaultExpired
	case err != nil:
		return "", errFaultInvalid
	}
	cl, err := a.clients.Get(id)
	if err != nil || !auth.Equal(cl.Gen, c.Gen) {
		// Deleted, or deleted and made again: either way not this token's.
		return "", errFaultInvalid
	}
	if cl.Tenant != tenant {
		return "", otherTenant
	}
	for _, s := range scopes {
		if slices.Contains(cl.Scopes, s) {
			return cl.ID, nil
		}
	}
	return "", errForbidden
}
