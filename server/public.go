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
		if err = blobhttp.Serve(w, r, s.cfg.Engine, rec, name); err == nil {
			return
		}
	}
	code := web.Status(err)
	if code != http.StatusInternalServerError {
		code = http.StatusNotFound
	} else {
		s.log.Error("serving a public file", "err", err)
	}
	if r.Method == "HEAD" {
		w.WriteHeader(code)
		return
	}
	textError(w, code, http.StatusText(code))
}
