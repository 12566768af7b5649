package web

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// Handler is an API endpoint. It writes its response when it succeeds;
// when it fails it writes nothing and returns the error, which its API's
// one ErrorWriter answers in the API's shape.
type Handler func(w http.ResponseWriter, r *http.Request) error

// ErrorWriter answers an error in an API's shape: the status it maps to,
// the API's error body, and nothing internal for the client to read.
type ErrorWriter func(w http.ResponseWriter, r *http.Request, err error)

// Handle adapts h to a route: the route's parameters are the request's
// path values (r.PathValue), and an error h returns is answered by write.
func Handle(write ErrorWriter, h Handler) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		for _, p := range ps {
			r.SetPathValue(p.Key, p.Value)
		}
		if err := h(w, r); err != nil {
			write(w, r, err)
		}
	}
}

// Routes adapts an API's handlers to routes, all answering their errors
// with write.
func Routes(write ErrorWriter, routes ...APIRoute) []Route {
	out := make([]Route, len(routes))
	for i, rt := range routes {
		out[i] = Route{Method: rt.Method, Path: rt.Path, Handle: Handle(write, rt.Handle), MaxBody: rt.MaxBody}
	}
	return out
}

// APIRoute is a Route whose handler returns its error.
type APIRoute struct {
	Method, Path string
	Handle       Handler
	MaxBody      int64
}
