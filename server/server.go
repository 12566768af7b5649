// Package server is cairn's HTTP front: the router, the health endpoints
// and, as the APIs land, the middleware and API packages they share. It
// holds no global state: everything it uses comes in through Config.
//
// A Server is an http.Handler, safe for concurrent use.
//
//	srv := server.New(server.Config{Engine: e, Logger: log})
//	http.ListenAndServe("127.0.0.1:8080", srv)
package server

import (
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/julienschmidt/httprouter"

	"github.com/cairnstore/cairn/engine"
)

// Config is what a Server serves from.
type Config struct {
	// Engine is the open store; required.
	Engine *engine.Engine
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Server routes requests to the health endpoints and the APIs.
type Server struct {
	cfg    Config
	log    *slog.Logger
	router *httprouter.Router
	// draining is set by Drain: /readyz answers 503 so that a load
	// balancer stops sending requests while in-flight ones finish.
	draining atomic.Bool
}

// New returns a Server over cfg.Engine.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger, router: httprouter.New()}
	s.router.HandleMethodNotAllowed = true
	s.router.GET("/livez", s.livez)
	s.router.HEAD("/livez", s.livez)
	s.router.GET("/readyz", s.readyz)
	s.router.HEAD("/readyz", s.readyz)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.router.ServeHTTP(w, r)
}

// Drain marks the server as shutting down: /readyz turns false.
func (s *Server) Drain() { s.draining.Store(true) }

// livez answers 200 while the process serves HTTP at all.
func (s *Server) livez(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// readyz answers 200 when the server accepts uploads: not draining, and
// the engine open, writable and above its free-space reserve.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("draining\n"))
		return
	}
	if err := s.cfg.Engine.Writable(); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("not ready: " + err.Error() + "\n"))
		return
	}
	w.Write([]byte("ok\n"))
}
