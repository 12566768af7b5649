package oceanmedia

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/web"
)

// authenticate is POST /v1/authentications: X-API-Authenticate carries
// base64(user:password) (with or without "Basic "); the answer is a token.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request) error {
	h := strings.TrimSpace(r.Header.Get("X-API-Authenticate"))
	if h == "" {
		return errNoAuthenticate
	}
	if !strings.HasPrefix(strings.ToLower(h), "basic ") {
		h = "Basic " + h
	}
	name, pw, err := auth.BasicCredentials(h)
	if err != nil {
		return errMalformed
	}
	now := a.Now()
	var usr User
	err = a.Limits.Logins.SignIn(r, "oceanmedia:"+name, now, func() bool {
		var gerr error
		usr, gerr = a.users.Get(name)
		return a.passwords.Verify(name, pw, usr.Hash, gerr == nil)
	})
	if err != nil {
		return err
	}
	tok := auth.NewSecret()
	now = now.UTC().Truncate(time.Second)
	t := token{User: name, UserID: usr.ID, Expires: now.Add(a.cfg.TokenTTL)}
	meta, _ := json.Marshal(t)
	err = a.Engine.Update(r.Context(), func(tx *engine.Tx) error {
		_, err := tx.Put(tokenKey(tok), engine.Record{Meta: meta, Expires: t.Expires.Add(tokenGrace)}, nil)
		return err
	})
	if err != nil {
		return err
	}
	web.JSON(w, http.StatusCreated, map[string]any{"authentication": map[string]any{
		"token": tok, "max_age": int(a.cfg.TokenTTL.Seconds()),
		"created_at": now.Format(time.RFC3339), "expires_at": t.Expires.Format(time.RFC3339),
		"_links": map[string]any{"creator": link(a.BaseURL(r)+"/v1/api_users/"+usr.ID, "application/json")},
	}})
	return nil
}

// authorize checks X-API-Token and the right the request needs, and
// returns its user.
func (a *API) authorize(r *http.Request, need Right) (User, error) {
	tok := r.Header.Get("X-API-Token")
	if tok == "" {
		return User{}, errNoToken
	}
	rec, err := a.Engine.GetRecord(tokenKey(tok))
	var t token
	if err == nil {
		err = json.Unmarshal(rec.Meta, &t)
	}
	var usr User
	if err == nil {
		usr, err = a.users.Get(t.User)
	}
	if err == nil && !auth.Equal(usr.ID, t.UserID) {
		err = ErrNoUser // another user of the same name, made since
	}
	switch {
	case err != nil && !isNotFound(err) && !errors.Is(err, ErrNoUser):
		return User{}, err
	case err != nil:
		return User{}, errUnknownToken
	case !a.Now().Before(t.Expires):
		return User{}, errExpired
	case need == ReadWrite && usr.Right != ReadWrite:
		return User{}, errNotAuthorized
	}
	return usr, nil
}
