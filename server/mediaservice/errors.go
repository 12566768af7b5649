package mediaservice

import (
	"errors"
	"net/http"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/variant"
	"github.com/cairnstore/cairn/server/internal/web"
)

type apiErr struct {
	Code    int      `json:"code"`
	Status  string   `json:"status"`
	Message string   `json:"message"`
	Details []string `json:"details,omitempty"`
}

func (e *apiErr) Error() string { return e.Message }

func badRequest(msg string, details ...string) *apiErr {
	return &apiErr{Code: 400, Status: "Bad Request", Message: msg, Details: details}
}

var (
	errNotFound  = &apiErr{Code: 404, Status: "element_resource_non_existing", Message: "The asset with the requested code does not exist."}
	errConflict  = &apiErr{Code: 409, Status: "Conflict", Message: "Conflict"}
	errForbidden = &apiErr{Code: 403, Status: "Bad request", Message: "The access to the requested resource has been forbidden by the server..", Details: []string{"Missing required scopes"}}
	errTenant    = &apiErr{Code: 400, Status: "Bad request", Message: "Tenant in the header is not matching with the one provided in the URI.", Details: []string{"https://saas-ag.com/patterns/errortypes.html"}}
	errVersion   = &apiErr{Code: 400, Status: "Bad request", Message: "The document version has to be provided on update operations.", Details: []string{"https://saas-ag.com/patterns/errortypes.html"}}
	errTooLarge  = &apiErr{Code: 413, Status: "Request Entity Too Large", Message: "The part named [file] exceeds the maximum allowed content length."}
	errInternal  = &apiErr{Code: 500, Status: "internal_service_error", Message: "A server-side exception occurred that prevented the system from correctly returning the result.", Details: []string{"https://pattern.yaas.io/errortypes.html"}}
)

// errFault is a failed token check, answered in the gateway's shape.
type errFault struct{ faultstring, errorcode string }

func (e *errFault) Error() string { return e.faultstring }

// oauthError is an answer of the token endpoint, in RFC 6749's shape.
type oauthError struct {
	status     int
	code, desc string
}

func (e *oauthError) Error() string { return "mediaservice: oauth: " + e.code + ": " + e.desc }

var (
	errFaultInvalid = &errFault{"Invalid access token", "oauth.v2.InvalidAccessToken"}
	errFaultExpired = &errFault{"Access Token expired", "keymanagement.service.access_token_expired"}
)

// writeError is the API's one error writer.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiErr
	var fe *errFault
	var oe *oauthError
	var mbe *http.MaxBytesError
	var ve *variant.Error
	switch {
	case errors.As(err, &ve):
		ae = badRequest(ve.Error())
	case errors.As(err, &fe):
		w.Header().Set("WWW-Authenticate", `Bearer realm="cairn"`)
		web.JSON(w, http.StatusUnauthorized, map[string]any{"fault": map[string]any{"faultstring": fe.faultstring, "detail": map[string]string{"errorcode": fe.errorcode}}})
		return
	case r.URL.Path == tokenPath:
		// The token endpoint answers in RFC 6749's shape.
		switch {
		case errors.As(err, &oe):
		case errors.Is(err, web.ErrThrottled):
			web.SetRetryAfter(w, err)
			oe = &oauthError{http.StatusTooManyRequests, "temporarily_unavailable", "too many failed attempts from this address or for this client; retry later"}
		case errors.Is(err, web.ErrSignIn):
			w.Header().Set("WWW-Authenticate", `Basic realm="cairn"`)
			oe = &oauthError{http.StatusUnauthorized, "invalid_client", "client authentication failed"}
		}
		if oe != nil {
			w.Header().Set("Cache-Control", "no-store")
			web.JSON(w, oe.status, map[string]string{"error": oe.code, "error_description": oe.desc})
			return
		}
		a.Logger.Error("media service token request failed", "err", err)
		ae = errInternal
	case errors.As(err, &ae):
	case errors.As(err, &mbe), errors.Is(err, web.ErrTooLarge):
		ae = errTooLarge
	case errors.Is(err, engine.ErrNotFound):
		ae = errNotFound
	case errors.Is(err, engine.ErrExists):
		ae = &apiErr{Code: 409, Status: "Conflict", Message: "An asset with this id already exists."}
	default:
		switch s := web.Status(err); s {
		case http.StatusInsufficientStorage, http.StatusServiceUnavailable, http.StatusRequestTimeout, http.StatusBadRequest, http.StatusTooManyRequests:
			ae = &apiErr{Code: s, Status: http.StatusText(s), Message: http.StatusText(s)}
		default:
			a.Logger.Error("media service request failed", "err", err)
			ae = errInternal
		}
	}
	web.JSON(w, ae.Code, ae)
}
