package mediaservice

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/signurl"
	"github.com/cairnstore/cairn/server/internal/web"
)

// Signed URLs of downloads: POST /media/{tenant}/assets/{assetId}/
// download-url?expiresIn=N, with a token of the tenant holding
// media.asset_read, answers {"url","expiresAt"}: the asset's download URL
// with a signature in its query, which fetches a PRIVATE BLOB (ranges,
// ETag, conditional requests) without a token for N seconds, at most a
// week. It stops working when it expires, when its signing key is revoked
// (cairn signing-key), or when its client is deleted, rotated, or loses
// the scope.

var (
	errSignature  = &apiErr{Code: 403, Status: "Forbidden", Message: "The signed URL is invalid, altered or revoked."}
	errExpiredURL = &apiErr{Code: 403, Status: "Forbidden", Message: "The signed URL has expired."}
)

// downloadPath is the escaped path of an asset's download.
func downloadPath(tenant, id string) string {
	return "/media/" + url.PathEscape(tenant) + "/assets/" + url.PathEscape(id) + "/download"
}

// signer names a client and the generation of its secret, which its
// signed URLs end with: the client ID, and a digest of Gen (Gen itself
// stays out of URLs).
func signer(cl Client) string {
	sum := sha256.Sum256([]byte("signed-url\x00" + cl.Gen))
	return cl.ID + "/" + hex.EncodeToString(sum[:8])
}

// signURL answers a signed URL of an asset's download.
func (a *API) signURL(w http.ResponseWriter, r *http.Request) error {
	tenant, id := r.PathValue("tenant"), r.PathValue("assetId")
	clientID, err := a.authorize(r, tenant, errNotFound, ScopeRead)
	if err != nil {
		return err
	}
	d, err := signurl.ExpiresIn(r.URL.Query().Get("expiresIn"))
	if err != nil {
		return badRequest("Invalid expiresIn.", err.Error())
	}
	if _, _, err := a.load(tenant, id); err != nil {
		return err
	}
	cl, err := a.clients.Get(clientID)
	if err != nil {
		return err
	}
	expires := a.Now().Add(d).Truncate(time.Second)
	u, err := signurl.NewKeys(a.Engine).Sign(r.Context(), http.MethodGet, a.BaseURL(r), downloadPath(tenant, id), nil, signer(cl), expires)
	if err != nil {
		return err
	}
	web.JSON(w, http.StatusOK, map[string]any{"url": u, "expiresAt": expires.UTC()})
	return nil
}

// verifySigned checks a signed download: well signed, not expired, by a
// client of the tenant that still holds media.asset_read with the same
// secret.
func (a *API) verifySigned(r *http.Request, tenant, id string) error {
	who, err := signurl.NewKeys(a.Engine).Verify(r, downloadPath(tenant, id), a.Now())
	switch {
	case errors.Is(err, signurl.ErrExpired):
		return errExpiredURL
	case errors.Is(err, signurl.ErrInvalid):
		return errSignature
	case err != nil:
		return err
	}
	clientID, _, _ := strings.Cut(who, "/")
	cl, err := a.clients.Get(clientID)
	if errors.Is(err, ErrNoClient) {
		return errSignature
	}
	if err != nil {
		return err
	}
	if !auth.Equal(signer(cl), who) || cl.Tenant != tenant || !slices.Contains(cl.Scopes, ScopeRead) {
		return errSignature
	}
	return nil
}
