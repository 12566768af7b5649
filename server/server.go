// Package server is cairn's HTTP front.
//
// It is the router, the middleware every route runs through (request ID,
// access log, panic recovery, body limits, a read deadline extended while
// an upload makes progress, metrics), the health endpoints and the API
// packages mounted on one listener, and /metrics on another
// (MetricsHandler), for operators only. It holds no global state:
// everything comes in through Config. The files: server.go the server and
// its routes, middleware.go what every route runs through, public.go the
// public links and the server's own error writer, metrics.go the metrics.
//
// A Server is an http.Handler, safe for concurrent use.
//
//	reg := prometheus.NewRegistry()
//	srv := server.New(server.Config{Engine: e, Logger: log, Registry: reg})
//	hs := &http.Server{Handler: srv}
//	server.Harden(hs)
//	ops := &http.Server{Handler: srv.MetricsHandler()} // on 127.0.0.1
package server

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/variant"
	"github.com/cairnstore/cairn/server/cloudstorage"
	"github.com/cairnstore/cairn/server/internal/web"
	"github.com/cairnstore/cairn/server/mediaservice"
	"github.com/cairnstore/cairn/server/mediaupload"
	"github.com/cairnstore/cairn/server/oceanmedia"
	"github.com/cairnstore/cairn/server/storageapi"
)

// Config is what a Server serves from. Only Engine is required.
type Config struct {
	Engine *engine.Engine
	// Logger; default slog.Default().
	Logger *slog.Logger
	// Registry receives the server's metrics and is what /metrics serves;
	// default a new registry of the server's own.
	Registry *prometheus.Registry
	// Version is reported in cairn_build_info.
	Version string
	// PublicMaxAge is how long browsers and shared caches may keep public
	// media without asking again (0: they ask each time, by ETag).
	PublicMaxAge time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For,
	// -Proto and -Host (or Forwarded) headers are believed: the client's
	// address, scheme and host come from them (see fromProxy).
	TrustedProxies []netip.Prefix
	// CORSOrigins are the origins ("https://app.example") whose browser
	// apps may call the APIs; "*" is any. None by default.
	CORSOrigins []string
	// CORSMethods and CORSHeaders, if any, are all the methods and
	// request headers a preflight from CORSOrigins may ask for; none:
	// the route's methods and whatever headers it asks for.
	CORSMethods, CORSHeaders []string
	// APIs are the APIs mounted, by name (APINames); nil: all of them.
	// Each API is made either way, so that the records others stored in
	// its namespace are still looked after (their expiry, say).
	APIs []string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// BodyIdleTimeout: an upload that sends nothing for this long is cut
	// off (408). Default one minute.
	BodyIdleTimeout time.Duration
	// BodyMinRate: a request body that brings fewer than this many bytes
	// a second over BodyRateWindow (of time the server waits for it) is
	// cut off with 408, so that trickling clients cannot hold upload
	// slots. Default 1024; negative: no minimum.
	BodyMinRate int64
	// BodyRateWindow is what BodyMinRate is measured over; default 20 s.
	BodyRateWindow time.Duration
	// MaxUploadsPerClient, MaxUploadsPerAddress and MaxAnonymousUploads
	// share streaming uploads out between clients: what one signed-in
	// identity, one anonymous address, and all anonymous clients together
	// may stream at once (defaults 16, 4 and 16), so that anonymous
	// clients can never take the slots of those who signed in. An upload
	// waits up to SlotWait (default 30 s) for a slot of its share, then
	// is refused: 429 when its own share is full, 503 otherwise.
	MaxUploadsPerClient, MaxUploadsPerAddress, MaxAnonymousUploads int
	// MaxDownloadsPerAddress bounds the downloads one client address
	// runs at once (default 64); more wait up to SlotWait, then 429.
	MaxDownloadsPerAddress int
	SlotWait               time.Duration
	// LoginFailuresPerAddress and LoginFailuresPerIdentity are the failed
	// sign-ins a minute let through, from one client address and at one
	// identity (from addresses that never signed in as it): defaults 10
	// and 5. Past them, sign-ins answer 429 with Retry-After.
	LoginFailuresPerAddress, LoginFailuresPerIdentity float64
	// PublicURL is the base of the absolute URLs the APIs return
	// ("https://media.example.com"); default each request's own host.
	PublicURL string
	// CloudStorage and MediaUpload configure those APIs.
	CloudStorage cloudstorage.Config
	MediaUpload  mediaupload.Config
	OceanMedia   oceanmedia.Config
	MediaService mediaservice.Config
	StorageAPI   storageapi.Config
	// Variants configures the image variants downloads may ask for; nil:
	// variant.DefaultConfig(). NoVariants refuses them all.
	Variants   *variant.Config
	NoVariants bool
	// VariantsPerMinute is how many new image variants (ones not stored
	// yet) one client address may have made a minute, in bursts of as
	// many; default 120, negative: no limit. Held for every node together.
	VariantsPerMinute float64
}

// Server routes requests to the health endpoints and the APIs.
type Server struct {
	cfg    Config
	log    *slog.Logger
	router *httprouter.Router
	// ops serves /metrics and the health endpoints to operators, on a
	// listener of their own (MetricsHandler).
	ops     *httprouter.Router
	metrics *httpMetrics
	// limits are what one client may take, shared by every API and the
	// public links.
	limits web.Limits
	// corsRules are the per-resource CORS rules (cors.go).
	corsRules *CORSRules
	// variants makes image variants for every API and the public links;
	// nil if they are off.
	variants *variant.Maker
	// draining is set by Drain: /readyz answers 503 so that a load
	// balancer stops sending requests while in-flight ones finish.
	draining atomic.Bool
}

// New returns a Server over cfg.Engine.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BodyIdleTimeout <= 0 {
		cfg.BodyIdleTimeout = time.Minute
	}
	switch {
	case cfg.BodyMinRate == 0:
		cfg.BodyMinRate = 1024
	case cfg.BodyMinRate < 0:
		cfg.BodyMinRate = 0
	}
	if cfg.BodyRateWindow <= 0 {
		cfg.BodyRateWindow = 20 * time.Second
	}
	if cfg.Version == "" {
		cfg.Version = "devel"
	}
	if cfg.MaxDownloadsPerAddress <= 0 {
		cfg.MaxDownloadsPerAddress = 64
	}
	limits := web.Limits{
		Uploads:   web.NewSlots(web.SlotsConfig{PerClient: cfg.MaxUploadsPerClient, PerAddress: cfg.MaxUploadsPerAddress, Anonymous: cfg.MaxAnonymousUploads, Wait: cfg.SlotWait}),
		Downloads: web.NewSlots(web.SlotsConfig{PerClient: cfg.MaxDownloadsPerAddress, Wait: cfg.SlotWait}),
		Logins:    web.NewLogins(web.LoginsConfig{PerAddress: cfg.LoginFailuresPerAddress, PerIdentity: cfg.LoginFailuresPerIdentity, Engine: cfg.Engine}),
	}
	s := &Server{cfg: cfg, log: cfg.Logger, router: httprouter.New(), limits: limits, corsRules: NewCORSRules(cfg.Engine)}
	s.variants = newVariants(cfg.Engine, cfg, cfg.Logger)
	s.metrics = newHTTPMetrics(cfg.Registry)
	if s.variants != nil {
		registerVariantMetrics(cfg.Registry, s.variants)
	}
	cfg.Registry.MustRegister(newEngineCollector(cfg.Engine))
	registerBuildInfo(cfg.Registry, cfg.Version)

	r := s.router
	r.RedirectTrailingSlash = false // paths are canonicalised by the APIs, not redirected
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.NotFound = s.handler("none", web.Route{Path: "unmatched", Handle: web.Handle(s.writeError, func(http.ResponseWriter, *http.Request) error {
		return errNotFound
	})})
	r.MethodNotAllowed = s.handler("none", web.Route{Path: "unmatched", Handle: web.Handle(s.writeError, func(http.ResponseWriter, *http.Request) error {
		return errMethod
	})})
	r.PanicHandler = nil // wrap recovers, so that the panic is logged with its request
	r.GlobalOPTIONS = s.handler("server", web.Route{Method: "OPTIONS", Path: "preflight", Handle: web.Handle(s.writeError, s.preflight)})

	health := web.Routes(s.writeError,
		web.APIRoute{Method: "GET", Path: "/livez", Handle: s.livez},
		web.APIRoute{Method: "HEAD", Path: "/livez", Handle: s.livez},
		web.APIRoute{Method: "GET", Path: "/readyz", Handle: s.readyz},
		web.APIRoute{Method: "HEAD", Path: "/readyz", Handle: s.readyz},
	)
	for _, rt := range health {
		s.mount("server", rt)
	}
	// /metrics is never on the APIs' listener: its store counters (bytes
	// deduplicated, written, stored) would tell any client whether bytes
	// it uploads were stored before by someone else (DESIGN.md invariant
	// 9). It is served, with the health endpoints, by MetricsHandler.
	s.ops = httprouter.New()
	metrics := promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError)})
	for _, rt := range append(health, web.Route{Method: "GET", Path: "/metrics", Handle: func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) { metrics.ServeHTTP(w, r) }}) {
		s.ops.Handle(rt.Method, rt.Path, s.wrap("ops", rt))
	}

	// Each API gets the shared engine, logger, clock and limits, and the
	// server's public URL unless it was given its own.
	deps := func(own web.Deps) web.Deps {
		return web.Deps{Engine: cfg.Engine, Logger: cfg.Logger, Now: cfg.Now, Limits: limits, PublicURL: cmp.Or(own.PublicURL, cfg.PublicURL), PublicMaxAge: cmp.Or(own.PublicMaxAge, cfg.PublicMaxAge), Variants: s.variants}
	}
	cs, mu, om, ms, sa := cfg.CloudStorage, cfg.MediaUpload, cfg.OceanMedia, cfg.MediaService, cfg.StorageAPI
	cs.Deps, mu.Deps, om.Deps, ms.Deps, sa.Deps = deps(cs.Deps), deps(mu.Deps), deps(om.Deps), deps(ms.Deps), deps(sa.Deps)
	for _, api := range []struct {
		name   string
		routes []web.Route
	}{
		{"cloudstorage", cloudstorage.New(cs).Routes()},
		{"mediaupload", mediaupload.New(mu).Routes()},
		{"oceanmedia", oceanmedia.New(om).Routes()},
		{"mediaservice", mediaservice.New(ms).Routes()},
		{"storageapi", storageapi.New(sa).Routes()},
	} {
		if cfg.APIs != nil && !slices.Contains(cfg.APIs, api.name) {
			continue
		}
		for _, rt := range api.routes {
			s.mount(api.name, rt)
		}
	}
	for _, rt := range web.Routes(s.writeError,
		web.APIRoute{Method: "GET", Path: "/f/:id/*name", Handle: s.public},
		web.APIRoute{Method: "HEAD", Path: "/f/:id/*name", Handle: s.public},
	) {
		s.mount("public", rt)
	}
	return s
}

// APINames are the names of the APIs, for Config.APIs.
var APINames = []string{"cloudstorage", "mediaupload", "oceanmedia", "mediaservice", "storageapi"}

func (s *Server) mount(api string, rt web.Route) {
	s.router.Handle(rt.Method, rt.Path, s.wrap(api, rt))
}

// handler is rt wrapped as an http.Handler, for the router's fallbacks.
func (s *Server) handler(api string, rt web.Route) http.Handler {
	h := s.wrap(api, rt)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h(w, r, nil) })
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.router.ServeHTTP(w, r)
}

// MetricsHandler serves /metrics, /livez and /readyz, for a listener only
// operators and Prometheus reach (cairn serve --metrics-listen, loopback
// by default). The metrics must not be served where API clients can read
// them: they reveal what the store deduplicated.
func (s *Server) MetricsHandler() http.Handler { return s.ops }

// SealSecrets seals, with the store's key file, the secrets an earlier
// version of cairn kept in the index in clear: cloud storage users'
// signing secrets, and the media service's and Storage API's token
// signing keys. It returns how many users' secrets it sealed.
func SealSecrets(ctx context.Context, e *engine.Engine) (int, error) {
	n, err := cloudstorage.NewUsers(e).SealSecrets(ctx)
	if err != nil {
		return n, err
	}
	if err := mediaservice.SealSecrets(ctx, e); err != nil {
		return n, err
	}
	return n, storageapi.SealSecrets(ctx, e)
}

// Migrate brings an index an earlier version wrote to this version's
// layout (each change once, recorded in the index); run it before
// serving.
func Migrate(ctx context.Context, e *engine.Engine) error {
	if err := oceanmedia.Migrate(ctx, e); err != nil {
		return err
	}
	return mediaservice.Migrate(ctx, e)
}

// Drain marks the server as shutting down: /readyz turns false.
func (s *Server) Drain() { s.draining.Store(true) }

// Harden sets the http.Server limits that protect against slow or
// oversized headers and idle connections. Bodies are guarded per request
// (see Config.BodyIdleTimeout), so there is no overall ReadTimeout that
// would cut off a large upload that is making progress.
func Harden(hs *http.Server) {
	hs.ReadHeaderTimeout = 10 * time.Second
	hs.MaxHeaderBytes = 64 << 10
	hs.IdleTimeout = 2 * time.Minute
}

// livez answers 200 while the process serves HTTP at all.
func (s *Server) livez(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
	return nil
}

// readyz answers 200 when the server accepts uploads: not draining, and
// the engine open, writable and above its free-space reserve. Why it is
// not ready goes to the log, not to whoever asks: /readyz is on the APIs'
// listener too.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Cache-Control", "no-store")
	if s.draining.Load() {
		return errDraining
	}
	if err := s.cfg.Engine.Writable(); err != nil {
		s.log.Warn("not ready", "err", err)
		return errNotReady
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
	return nil
}
