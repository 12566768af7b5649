package storageapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/cairnstore/cairn/internal/variant"
	"github.com/cairnstore/cairn/server/internal/web"
)

type apiError struct {
	status  int
	Code    string `json:"error"`
	Message string `json:"message"`
	// retry, if set, is the Retry-After of a 429.
	retry time.Duration
}

func (e *apiError) Error() string { return e.Message }

func fail(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

var (
	errNotFound      = fail(http.StatusNotFound, "not_found", "no such file")
	errNoToken       = fail(http.StatusUnauthorized, "unauthorized", "a bearer token is required")
	errBadToken      = fail(http.StatusUnauthorized, "invalid_token", "the token is invalid or expired")
	errLogin         = fail(http.StatusUnauthorized, "invalid_credentials", "wrong email or password")
	errTooManyLogins = fail(http.StatusTooManyRequests, "rate_limited", "too many failed sign-ins from this address or for this user; retry later")
	errReadOnlyRole  = fail(http.StatusForbidden, "forbidden", "an organization member may read and list; uploading, deleting and sharing take a manager or admin")
)

// writeError is the API's one error writer.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var ve *variant.Error
	switch {
	case errors.As(err, &ve):
		ae = fail(http.StatusBadRequest, "bad_request", "%s", ve.Error())
	case errors.Is(err, web.ErrThrottled):
		web.SetRetryAfter(w, err)
		ae = errTooManyLogins
	case errors.Is(err, web.ErrSignIn):
		ae = errLogin
	case errors.As(err, &ae):
		if ae.retry > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(ae.retry.Seconds())+1))
		}
	default:
		switch s := web.Status(err); s {
		case http.StatusRequestEntityTooLarge:
			ae = fail(s, "too_large", "the file is larger than the limit")
		case http.StatusNotFound:
			ae = errNotFound
		case http.StatusInsufficientStorage:
			ae = fail(s, "insufficient_storage", "the store is full")
		case http.StatusTooManyRequests:
			ae = fail(s, "rate_limited", "too many uploads or downloads at once from this client; retry later")
		case http.StatusServiceUnavailable:
			ae = fail(s, "unavailable", "the store is busy or read-only; retry later")
		case http.StatusRequestTimeout:
			ae = fail(s, "request_timeout", "the request body stalled or arrived too slowly")
		case http.StatusBadRequest:
			ae = fail(s, "bad_request", "the request body was cut off")
		default:
			a.Logger.Error("storage API request failed", "err", err)
			ae = fail(http.StatusInternalServerError, "internal", "internal error")
		}
	}
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cairn-storage"`)
	}
	web.JSON(w, ae.status, ae)
}
