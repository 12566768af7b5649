package storageapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/web"
)

// scope is one of the three modes, and the path segment naming it.
type scope string

const (
	public scope = "public"
	user   scope = "user"
	org    scope = "org"
)

// name is the scope as File.Scope reports it.
func (s scope) name() string {
	if s == org {
		return "organization"
	}
	return string(s)
}

const (
	tokenUser = "user"
	tokenOrg  = "organization"
	audience  = "cairn-storage"
)

type claims struct {
	jwt.RegisteredClaims
	Type string `json:"token_type"`
	Org  string `json:"org,omitempty"`
}

func userArea(id string) string { return "u/" + id }
func orgArea(id string) string  { return "o/" + id }

// area is where a request acts, and what its token may do there.
type area struct {
	scope  scope
	tenant string // the files' tenant in the store
	userID string // who acts ("" in public mode)
	write  bool
}

// with resolves the request's area from its token before calling h.
func (a *API) with(s scope, h func(http.ResponseWriter, *http.Request, area) error) web.Handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		ar, err := a.area(r, s)
		if err != nil {
			return err
		}
		return h(w, r, ar)
	}
}

func (a *API) area(r *http.Request, s scope) (area, error) {
	if s == public {
		return area{scope: public, tenant: "public", write: true}, nil
	}
	tok, err := auth.Bearer(r.Header.Get("Authorization"))
	if errors.Is(err, auth.ErrNoCredentials) {
		return area{}, errNoToken
	}
	if err != nil {
		return area{}, errBadToken
	}
	key, err := auth.StoreKey(r.Context(), a.Engine, keyNS)
	if err != nil {
		return area{}, err
	}
	var c claims
	if err := auth.VerifyHS256Claims(tok, &c, func(string) ([]byte, bool) { return key, true }, a.Now); err != nil {
		return area{}, errBadToken
	}
	if !slices.Contains(c.Audience, audience) {
		return area{}, errBadToken
	}
	u, err := a.iam.User(c.Subject)
	if errors.Is(err, ErrNoSuch) || err == nil && c.IssuedAt != nil && c.IssuedAt.Before(u.Changed) {
		return area{}, errBadToken // deleted, or the password changed since
	}
	if err != nil {
		return area{}, err
	}
	switch {
	case s == user && c.Type == tokenUser:
		return area{scope: user, tenant: userArea(u.ID), userID: u.ID, write: true}, nil
	case s == org && c.Type == tokenOrg:
		web.CORSResource(r, "org", c.Org) // its CORS rule applies from here
		role, err := a.iam.Role(u.ID, c.Org)
		if errors.Is(err, ErrNoSuch) {
			return area{}, errBadToken // no longer a member
		}
		if err != nil {
			return area{}, err
		}
		return area{scope: org, tenant: orgArea(c.Org), userID: u.ID, write: role.canWrite()}, nil
	case c.Type == tokenUser || c.Type == tokenOrg:
		return area{}, fail(http.StatusForbidden, "wrong_token_type", "the %s area takes %s token, not %s token", s.name(), article(s), c.Type)
	}
	return area{}, errBadToken
}

func article(s scope) string {
	if s == org {
		return "an organization"
	}
	return "a user"
}

func (a *API) sign(ctx context.Context, sub, typ, org string, now time.Time) (string, time.Time, error) {
	key, err := auth.StoreKey(ctx, a.Engine, keyNS)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := now.Add(a.cfg.TokenTTL)
	tok, err := auth.SignHS256Claims(&claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: sub, Audience: jwt.ClaimStrings{audience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
		},
		Type: typ, Org: org,
	}, key)
	return tok, exp, err
}

type loginOrg struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// login is POST /storage/auth/login: {"email","password"} → a user token
// and a token for each of the user's organizations.
func (a *API) login(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := web.DecodeJSON(r.Body, &in); err != nil {
		if web.Status(err) != http.StatusRequestEntityTooLarge {
			err = fail(http.StatusBadRequest, "bad_request", "the body must be JSON {\"email\",\"password\"}")
		}
		return err
	}
	now := a.Now()
	var u User
	var lookup error
	err := a.Limits.Logins.SignIn(r, "storageapi:"+strings.ToLower(in.Email), now, func() bool {
		u, lookup = a.iam.UserByEmail(in.Email)
		// An unknown email costs a hash comparison too.
		return a.passwords.Verify(u.ID, in.Password, u.Hash, lookup == nil)
	})
	if lookup != nil && !errors.Is(lookup, ErrNoSuch) {
		return lookup
	}
	if err != nil {
		return err
	}
	tok, exp, err := a.sign(r.Context(), u.ID, tokenUser, "", now)
	if err != nil {
		return err
	}
	ms, err := a.iam.Memberships(u.ID)
	if err != nil {
		return err
	}
	orgs := []loginOrg{}
	for _, m := range ms {
		web.CORSResource(r, "org", m.OrgID) // any of the user's organizations' CORS rules
		otok, _, err := a.sign(r.Context(), u.ID, tokenOrg, m.OrgID, now)
		if err != nil {
			return err
		}
		orgs = append(orgs, loginOrg{ID: m.OrgID, Name: m.Org, Role: m.Role, Token: otok, ExpiresAt: exp.UTC()})
	}
	type loginUser struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	}
	w.Header().Set("Cache-Control", "no-store")
	web.JSON(w, http.StatusOK, struct {
		User          loginUser  `json:"user"`
		Token         string     `json:"token"`
		ExpiresAt     time.Time  `json:"expiresAt"`
		Organizations []loginOrg `json:"organizations"`
	}{loginUser{u.ID, u.Email}, tok, exp.UTC(), orgs})
	return nil
}
