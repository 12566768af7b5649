package storageapi

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cairnstore/cairn/server/internal/signurl"
	"github.com/cairnstore/cairn/server/internal/web"
)

// Signed URLs: POST …/files/{id}/url?expiresIn=N answers a URL of the
// file's download that works without a token for N seconds (at most a
// week). Anyone who may read the file may sign one; it stops working
// when it expires, when its signing key is revoked (cairn signing-key),
// or when its signer may no longer read the file (deleted, or no longer
// a member).

var (
	errSignature  = fail(http.StatusForbidden, "invalid_signature", "the signed URL is invalid, altered or revoked")
	errExpiredURL = fail(http.StatusForbidden, "expired", "the signed URL has expired")
	errExpiresIn  = fail(http.StatusBadRequest, "bad_request", "%s", signurl.ErrExpiresIn.Error())
)

// signer names who signed a URL of area ar: the user, and in an
// organization's area the organization too.
func signer(ar area) string {
	if ar.scope == org {
		return strings.TrimPrefix(ar.tenant, "o/") + "/" + ar.userID
	}
	return ar.userID
}

// readable resolves the area of a signed request to s, or of its token
// when it is not signed.
func (a *API) readable(s scope, h func(http.ResponseWriter, *http.Request, area) error) web.Handler {
	token := a.with(s, h)
	return func(w http.ResponseWriter, r *http.Request) error {
		if s == public || !signurl.Signed(r) {
			return token(w, r)
		}
		who, err := signurl.NewKeys(a.Engine).Verify(r, filePath(s, r.PathValue("id")), a.Now())
		switch {
		case errors.Is(err, signurl.ErrExpired):
			return errExpiredURL
		case errors.Is(err, signurl.ErrInvalid):
			return errSignature
		case err != nil:
			return err
		}
		ar := area{scope: s}
		switch s {
		case user:
			ar.tenant, ar.userID = userArea(who), who
		case org:
			orgID, userID, ok := strings.Cut(who, "/")
			if !ok {
				return errSignature
			}
			ar.tenant, ar.userID = orgArea(orgID), userID
			web.CORSResource(r, "org", orgID)
			if _, err := a.iam.Role(userID, orgID); errors.Is(err, ErrNoSuch) {
				return errSignature
			} else if err != nil {
				return err
			}
		}
		if _, err := a.iam.User(ar.userID); errors.Is(err, ErrNoSuch) {
			return errSignature
		} else if err != nil {
			return err
		}
		return h(w, r, ar)
	}
}

// signURL answers a signed URL of a file's download.
func (a *API) signURL(w http.ResponseWriter, r *http.Request, ar area) error {
	d, err := signurl.ExpiresIn(r.URL.Query().Get("expiresIn"))
	if err != nil {
		return errExpiresIn
	}
	id := r.PathValue("id")
	if _, _, err := a.load(ar, id); err != nil {
		return err
	}
	expires := a.Now().Add(d).Truncate(time.Second)
	u, err := signurl.NewKeys(a.Engine).Sign(r.Context(), http.MethodGet, a.BaseURL(r), filePath(ar.scope, id), nil, signer(ar), expires)
	if err != nil {
		return err
	}
	web.JSON(w, http.StatusOK, map[string]any{"url": u, "expiresAt": expires.UTC()})
	return nil
}

// filePath is the escaped path of a file's download.
func filePath(s scope, id string) string {
	return "/storage/" + string(s) + "/files/" + url.PathEscape(id)
}
