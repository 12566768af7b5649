package oceanmedia

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/jsonstream"
	"github.com/cairnstore/cairn/server/internal/web"
)

// apiError is an answer {"_api_error":[msg]} with its status.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("oceanmedia: %d %s", e.status, e.msg) }

var (
	errNoToken        = &apiError{http.StatusBadRequest, "X-API-Token missing"}
	errUnknownToken   = &apiError{http.StatusBadRequest, "Unknown authentication"}
	errExpired        = &apiError{419, "Authentication expired"}
	errNotAuthorized  = &apiError{http.StatusForbidden, "Not authorized"}
	errNoAuthenticate = &apiError{http.StatusBadRequest, "X-API-Authenticate missing"}
	errMalformed      = &apiError{http.StatusBadRequest, "Malformed credentials"}
	errNotUnique      = &apiError{http.StatusUnprocessableEntity, "Resource not unique"}
	errStale          = &apiError{http.StatusConflict, "Stale Medium"}
	errMissingAttrs   = &apiError{http.StatusUnprocessableEntity, "Missing resource attributes"}
	errDoesNotAuth    = &apiError{http.StatusForbidden, "Does not authenticate"}
	errTooManySignIns = &apiError{http.StatusTooManyRequests, "Too many failed authentications"}
	errPageTooLarge   = &apiError{http.StatusBadRequest, fmt.Sprintf("page must be at most %d", MaxPage)}
)

// fieldErrors is the 422 body of a validation failure: field → messages.
type fieldErrors map[string][]string

func (f fieldErrors) add(field, msg string) { f[field] = append(f[field], msg) }

func (f fieldErrors) Error() string {
	return fmt.Sprint("oceanmedia: invalid: ", map[string][]string(f))
}

func isNotFound(err error) bool { return errors.Is(err, engine.ErrNotFound) }

// writeError is the API's one error writer.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var fe fieldErrors
	switch {
	case errors.As(err, &fe):
		web.JSON(w, http.StatusUnprocessableEntity, fe)
		return
	case errors.Is(err, web.ErrThrottled):
		web.SetRetryAfter(w, err)
		ae = errTooManySignIns
	case errors.Is(err, web.ErrSignIn):
		ae = errDoesNotAuth
	case errors.As(err, &ae):
	case errors.Is(err, jsonstream.ErrSyntax):
		ae = &apiError{http.StatusBadRequest, err.Error()}
	default:
		status := web.Status(err)
		ae = &apiError{status, http.StatusText(status)}
		switch {
		case status == http.StatusNotFound:
			ae.msg = "Not found"
		case status >= 500 && status != http.StatusInsufficientStorage && status != http.StatusServiceUnavailable:
			ae = &apiError{http.StatusInternalServerError, "Internal error"}
			a.Logger.Error("/v1/media request failed", "err", err)
		}
	}
	web.JSON(w, ae.status, map[string][]string{"_api_error": {ae.msg}})
}
