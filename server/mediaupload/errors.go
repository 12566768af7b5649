package mediaupload

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/cairnstore/cairn/server/internal/jsonstream"
	"github.com/cairnstore/cairn/server/internal/web"
)

// invalid is the documented error body.
type invalid struct {
	InvalidReasons []string `json:"invalidReasons"`
	Valid          bool     `json:"valid"`
}

// invalidError is a failed validation: every reason that applies.
type invalidError struct{ reasons []string }

func (e *invalidError) Error() string { return fmt.Sprint("mediaupload: invalid: ", e.reasons) }

func invalidf(format string, args ...any) error {
	return &invalidError{[]string{fmt.Sprintf(format, args...)}}
}

var (
	// errUnauthorized: no, unknown or wrong Basic credentials.
	errUnauthorized = errors.New("mediaupload: unauthorized")
	// errAccountGone: the account was deleted (or deleted and made
	// again) while a request of it was being served.
	errAccountGone = errors.New("mediaupload: the account is gone")
)

// writeError is the API's one error writer. Every error of GET, PUT and
// DELETE is 404, as documented; an upload's validation failure is 400
// with its reasons, and its other failures have a status of their own in
// the same shape.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var inv *invalidError
	switch {
	case errors.Is(err, errUnauthorized), errors.Is(err, errAccountGone), errors.Is(err, web.ErrSignIn):
		w.Header().Set("WWW-Authenticate", `Basic realm="cairn", charset="UTF-8"`)
		web.JSON(w, http.StatusUnauthorized, map[string]string{"message": "Unauthorized"})
		return
	case errors.Is(err, web.ErrThrottled):
		web.SetRetryAfter(w, err)
		web.JSON(w, http.StatusTooManyRequests, map[string]string{"message": "Too many failed sign-ins; retry later"})
		return
	case r.Method != http.MethodPost:
		if web.Status(err) >= 500 {
			a.Logger.Error("media upload request failed", "err", err)
		}
		web.JSON(w, http.StatusNotFound, invalid{InvalidReasons: []string{"no such content for this account"}})
		return
	case errors.As(err, &inv):
		web.JSON(w, http.StatusBadRequest, invalid{InvalidReasons: inv.reasons})
		return
	}
	status := web.Status(err)
	var reason string
	switch {
	case errors.Is(err, jsonstream.ErrSyntax):
		status, reason = http.StatusBadRequest, err.Error()
	case status == http.StatusInsufficientStorage:
		reason = "the store is out of space"
	case status == http.StatusTooManyRequests:
		reason = "too many uploads at once from this account; retry later"
	case status == http.StatusServiceUnavailable:
		reason = "the store is busy or not accepting uploads; retry later"
	case status == http.StatusRequestTimeout:
		reason = "the request body stalled or arrived too slowly"
	case status == http.StatusBadRequest:
		reason = "the request body could not be read"
	default:
		status, reason = http.StatusInternalServerError, "Unexpected error"
		a.Logger.Error("media upload failed", "err", err)
	}
	web.JSON(w, status, invalid{InvalidReasons: []string{reason}})
}
