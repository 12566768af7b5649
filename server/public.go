package server

import (
	"errors"
	"net/http"
	"path"

	"github.com/cairnstore/cairn/internal/variant"
	"github.com/cairnstore/cairn/server/internal/blobhttp"
	"github.com/cairnstore/cairn/server/internal/publink"
	"github.com/cairnstore/cairn/server/internal/web"
)

// public serves GET and HEAD /f/:id/*name: a file an API made public,
// through the shared download path, without credentials. Anything that
// does not resolve is a plain 404.
func (s *Server) public(w http.ResponseWriter, r *http.Request) error {
	rec, err := publink.Resolve(s.cfg.Engine, r.PathValue("id"))
	if err == nil {
		name := path.Base(r.PathValue("name"))
		if name == "/" || name == "." {
			name = ""
		}
		var release func()
		if release, err = s.limits.Downloads.Acquire(r.Context(), web.Address(r)); err == nil {
			err = blobhttp.Serve(w, r, s.cfg.Engine, rec, name, blobhttp.Public(s.cfg.PublicMaxAge), s.variants)
			release()
		}
	}
	if err == nil {
		return nil
	}
	switch web.Status(err) {
	case http.StatusBadRequest:
		if errors.Is(err, variant.ErrInvalid) {
			return err // the variant options, answered as such
		}
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusInternalServerError:
		return err
	}
	return errNotFound // anything that does not resolve, alike
}

// Errors of the server's own endpoints.
var (
	errNotFound = errors.New("server: not found")
	errMethod   = errors.New("server: method not allowed")
	errDraining = errors.New("server: draining")
	errNotReady = errors.New("server: not ready")
)

// writeError answers the errors of the server's own endpoints (health,
// public links, what no route matches) as plain text, the status and
// nothing internal.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := web.Status(err), ""
	var ve *variant.Error
	switch {
	case errors.As(err, &ve):
		code, msg = http.StatusBadRequest, ve.Error()
	case errors.Is(err, errNotFound):
		code, msg = http.StatusNotFound, "not found"
	case errors.Is(err, errMethod):
		code, msg = http.StatusMethodNotAllowed, "method not allowed"
	case errors.Is(err, errDraining):
		code, msg = http.StatusServiceUnavailable, "draining"
	case errors.Is(err, errNotReady):
		code, msg = http.StatusServiceUnavailable, "not ready"
	case errors.Is(err, errOrigin):
		code, msg = http.StatusForbidden, "origin not allowed"
	case code == http.StatusInternalServerError:
		s.log.Error("serving a request", "path", r.URL.EscapedPath(), "err", err)
	}
	if msg == "" {
		msg = http.StatusText(code)
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(code)
		return
	}
	textError(w, code, msg)
}
