package server

import (
	"errors"
	"net/http"
	"slices"
	"strings"
)

// CORS: a browser app on another origin may call the APIs if its origin
// is one of Config.CORSOrigins (none by default: browsers keep other
// origins out). Every answer to an allowed origin says so and exposes the
// headers clients read (Location, ETag, Content-Range, …); a preflight
// (OPTIONS with Access-Control-Request-Method) is answered with the
// route's methods. The APIs authenticate with the Authorization header
// (or the API's own), never with cookies, so no credentials are allowed.

// exposed are the response headers a cross-origin script may read.
const exposed = "Location, ETag, Content-Range, Content-Length, Content-Disposition, Accept-Ranges, X-Total-Count, X-Request-Id, Retry-After"

var errOrigin = errors.New("server: origin not allowed")

// allowedOrigin reports whether origin may call the APIs.
func (s *Server) allowedOrigin(origin string) bool {
	return origin != "" && (slices.Contains(s.cfg.CORSOrigins, "*") || slices.Contains(s.cfg.CORSOrigins, origin))
}

// corsHeaders marks an answer to an allowed origin as readable by it.
func (s *Server) corsHeaders(h http.Header, r *http.Request) {
	if len(s.cfg.CORSOrigins) == 0 {
		return
	}
	h.Add("Vary", "Origin")
	if origin := r.Header.Get("Origin"); s.allowedOrigin(origin) {
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", exposed)
	}
}

// preflight answers an OPTIONS request to a route (the router has set
// Allow to its methods): a CORS preflight from an allowed origin gets the
// methods and the headers it asked for; one from another origin, 403;
// a plain OPTIONS, its Allow.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) error {
	method := r.Header.Get("Access-Control-Request-Method")
	origin := r.Header.Get("Origin")
	if origin == "" || method == "" {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	allow := w.Header().Get("Allow")
	if !s.allowedOrigin(origin) || !slices.Contains(strings.Split(strings.ReplaceAll(allow, " ", ""), ","), method) {
		return errOrigin
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", allow)
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
