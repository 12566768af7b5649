package server

import (
	"net/http"
	"path"

	"github.com/julienschmidt/httprouter"

	"github.com/cairnstore/cairn/server/internal/blobhttp"
	"github.com/cairnstore/cairn/server/internal/publink"
	"github.com/cairnstore/cairn/server/internal/web"
)

// public serves GET and HEAD /f/:id/*name: a file an API made public,
// through the shared download path, without credentials. Anything that
// does not resolve is a plain 404.
func (s *Server) public(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	rec, err := publink.Resolve(s.cfg.Engine, ps.ByName("id"))
	if err == nil {
		name := path.Base(ps.ByName("name"))
		if name == "/" || name == "." {
			name = ""
		}
		var release func()
		if release, err = s.limits.Downloads.Acquire(r.Context(), web.Address(r)); err == nil {
			err = blobhttp.Serve(w, r, s.cfg.Engine, rec, name, true)
			release()
		}
		if err == nil {
			return
		}
	}
	code := web.Status(err)
	switch code {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
	case http.StatusInternalServerError:
		s.log.Error("serving a public file", "err", err)
	default:
		code = http.StatusNotFound
	}
	if r.Method == "HEAD" {
		w.WriteHeader(code)
		return
	}
	textError(w, code, http.StatusText(code))
}
