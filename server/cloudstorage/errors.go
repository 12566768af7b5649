package cloudstorage

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/variant"
	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/urlpath"
	"github.com/cairnstore/cairn/server/internal/web"
)

// apiError is the API's error body.
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

type badRequestError struct{ msg string }

func (e *badRequestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &badRequestError{fmt.Sprintf(format, args...)}
}

// writeError answers err with the API's error shape. Internal details
// stay in the log.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var bre *badRequestError
	var pe *urlpath.Error
	var mbe *http.MaxBytesError
	var ve *variant.Error
	status := web.Status(err)
	code, msg := "", ""
	switch {
	case errors.As(err, &bre):
		status, code, msg = http.StatusBadRequest, "bad_request", bre.msg
	case errors.As(err, &ve):
		status, code, msg = http.StatusBadRequest, "bad_request", ve.Error()
	case errors.Is(err, auth.ErrNoCredentials):
		w.Header().Set("WWW-Authenticate", `Bearer realm="cairn"`)
		status, code, msg = http.StatusUnauthorized, "unauthorized", "a Bearer token is required"
	case errors.Is(err, auth.ErrInvalid):
		w.Header().Set("WWW-Authenticate", `Bearer realm="cairn", error="invalid_token"`)
		status, code, msg = http.StatusUnauthorized, "unauthorized", "the token is invalid or expired"
	case errors.Is(err, errForbidden):
		status, code, msg = http.StatusForbidden, "forbidden", "no access to this bucket"
	case errors.Is(err, errSignature):
		status, code, msg = http.StatusForbidden, "invalid_signature", "the signed URL is invalid, altered or revoked"
	case errors.Is(err, errExpiredURL):
		status, code, msg = http.StatusForbidden, "expired", "the signed URL has expired"
	case errors.Is(err, errMethod):
		status, code, msg = http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed"
	case errors.Is(err, errNoUpload):
		status, code, msg = http.StatusNotFound, "not_found", "no such upload"
	case errors.Is(err, errIncomplete):
		status, code, msg = http.StatusConflict, "upload_incomplete", errIncomplete.Error()
	case errors.As(err, &pe):
		status, code, msg = http.StatusBadRequest, "bad_request", "invalid path: "+pe.Reason
	case status == http.StatusNotFound:
		code, msg = "not_found", "no media at this path"
	case status == http.StatusConflict:
		code, msg = "conflict", "the destination exists"
	case errors.As(err, &mbe):
		status, code, msg = http.StatusRequestEntityTooLarge, "payload_too_large", fmt.Sprintf("the body is larger than the limit of %d bytes", mbe.Limit)
	case status == http.StatusInsufficientStorage:
		code, msg = "insufficient_storage", "the store is out of space"
	case status == http.StatusTooManyRequests:
		code, msg = "too_many_requests", "too many uploads or downloads at once from this client; retry later"
	case errors.Is(err, engine.ErrBusy), errors.Is(err, web.ErrBusy):
		code, msg = "unavailable", "the server is busy; retry later"
	case status == http.StatusServiceUnavailable:
		code, msg = "unavailable", "the store is not accepting writes"
	case status == http.StatusBadRequest:
		code, msg = "bad_request", "the request could not be read"
	case status == http.StatusRequestTimeout:
		code, msg = "request_timeout", "the request body stopped arriving, or arrived too slowly"
	default:
		status, code, msg = http.StatusInternalServerError, "internal", "internal error"
	}
	if status >= 500 {
		a.Logger.Error("cloudstorage request failed", "method", r.Method, "path", r.URL.EscapedPath(), "status", status, "err", err)
	} else {
		a.Logger.Debug("cloudstorage request refused", "method", r.Method, "path", r.URL.EscapedPath(), "status", status, "err", err)
	}
	if r.Method == "HEAD" {
		w.WriteHeader(status)
		return
	}
	web.JSON(w, status, apiError{Error: code, Message: msg})
}
