package cloudstorage

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cairnstore/cairn/server/internal/signurl"
	"github.com/cairnstore/cairn/server/internal/web"
)

// Signed URLs of PROTECTED media: POST /signed/protected/{bucket}/{path}
// ?expiresIn=N, with the token of a user who may read the bucket,
// answers {"url","expiresAt"}: the media's own URL with a signature in
// its query, which fetches it (ranges, ETag, conditional requests)
// without a token for N seconds, at most a week. It stops working when it
// expires, when its signing key is revoked (cairn signing-key), or when
// its signer is deleted or loses READ on the bucket.

// signedPrefix is the path of the signing endpoint before the media's.
const signedPrefix = "/signed"

var (
	errSignature  = errors.New("cloudstorage: invalid signed URL")
	errExpiredURL = errors.New("cloudstorage: signed URL expired")
)

// signed is what a signed URL's answer says.
type signed struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// sign answers a signed URL of the PROTECTED media the path names.
func (a *API) sign(w http.ResponseWriter, r *http.Request) error {
	t, err := parseEscaped(strings.TrimPrefix(r.URL.EscapedPath(), signedPrefix))
	if err != nil {
		return err
	}
	if t.path == "" || t.dir {
		return badRequest("a signed URL names one media path, not a bucket or a folder")
	}
	user, err := a.authorize(r, t.bucket, Read)
	if err != nil {
		return err
	}
	d, err := signurl.ExpiresIn(r.URL.Query().Get("expiresIn"))
	if err != nil {
		return badRequest("%v", err)
	}
	if _, err := a.Engine.GetRecord(t.key()); err != nil {
		return err
	}
	expires := a.Now().Add(d).Truncate(time.Second)
	u, err := signurl.NewKeys(a.Engine).Sign(r.Context(), http.MethodGet, a.BaseURL(r), t.url(t.path), nil, user, expires)
	if err != nil {
		return err
	}
	web.JSON(w, http.StatusOK, signed{URL: u, ExpiresAt: expires.UTC()})
	return nil
}

// verifySigned checks a signed request for PROTECTED media of t: well
// signed, not expired, by a user who may still read the bucket.
func (a *API) verifySigned(r *http.Request, t target) error {
	who, err := signurl.NewKeys(a.Engine).Verify(r, t.url(t.path), a.Now())
	switch {
	case errors.Is(err, signurl.ErrExpired):
		return errExpiredURL
	case errors.Is(err, signurl.ErrInvalid):
		return fmt.Errorf("%w: %v", errSignature, err)
	case err != nil:
		return err
	}
	u, err := a.users.Get(who)
	if errors.Is(err, ErrNoUser) {
		return fmt.Errorf("%w: signer %s is gone", errSignature, who)
	}
	if err != nil {
		return err
	}
	if p, ok := u.Buckets[t.bucket]; !ok || !p.allows(Read) {
		return fmt.Errorf("%w: signer %s lost READ on %s", errSignature, who, t.bucket)
	}
	return nil
}
