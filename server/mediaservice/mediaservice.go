// Package mediaservice is the tenant media service at
// /media/{tenant}/assets.
//
// Assets are BLOBs (multipart upload, stored here) and LINKs (a URL,
// never fetched), with optimistic locking on metadata.version, a q query
// language (package query), sort and paging, and OAuth2
// client-credentials tokens from POST /oauth/token carrying the scopes
// media.asset_manage and media.asset_read.
//
// Errors are {code,status,message,details}; a bad token is the
// gateway-style {"fault":{…}}. The files: mediaservice.go the API and its
// routes, errors.go its one error writer, tokens.go tokens and scopes,
// assets.go the wire types and how assets are kept, requests.go reading
// a create or update, handlers.go the endpoints on one asset, listing.go
// the list, clients.go the OAuth2 clients.
//
// An API is safe for concurrent use.
package mediaservice

import (
	_ "embed"
	"time"

	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/web"
)

// Config configures the API. Deps.Engine is required.
type Config struct {
	web.Deps
	// MaxFile bounds an uploaded file; default 10 MB, as documented.
	MaxFile int64
	// TokenTTL is an access token's lifetime; default one hour.
	TokenTTL time.Duration
	// QueryCost bounds the work one list request's q may do, in
	// query.Budget units (about a nanosecond of CPU each): past it, the
	// request is 400. Default 50,000,000.
	QueryCost int64
}

// API is the media service over one engine.
type API struct {
	web.Deps
	cfg       Config
	clients   *Clients
	passwords *auth.Passwords
}

// New returns the API.
func New(cfg Config) *API {
	cfg.Deps = cfg.Deps.WithDefaults()
	if cfg.MaxFile <= 0 {
		cfg.MaxFile = 10 << 20
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.QueryCost <= 0 {
		cfg.QueryCost = 50_000_000
	}
	return &API{Deps: cfg.Deps, cfg: cfg, clients: NewClients(cfg.Engine), passwords: auth.NewPasswords(time.Minute, cfg.Now)}
}

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API, served at
// /openapi/mediaservice.json: the vendor's 2025-04 contract with its
// defects fixed and cairn's answers written in.
func OpenAPI() []byte { return openAPI }

// Routes are the API's endpoints.
func (a *API) Routes() []web.Route {
	upload := a.cfg.MaxFile + 1<<20 // the file and the multipart around it
	return append(web.Routes(a.writeError,
		web.APIRoute{Method: "POST", Path: "/oauth/token", Handle: a.token},
		web.APIRoute{Method: "POST", Path: "/media/:tenant/assets", Handle: a.create, MaxBody: upload},
		web.APIRoute{Method: "GET", Path: "/media/:tenant/assets", Handle: a.list},
		web.APIRoute{Method: "GET", Path: "/media/:tenant/assets/:assetId", Handle: a.retrieve},
		web.APIRoute{Method: "PUT", Path: "/media/:tenant/assets/:assetId", Handle: a.update, MaxBody: upload},
		web.APIRoute{Method: "DELETE", Path: "/media/:tenant/assets/:assetId", Handle: a.delete},
		web.APIRoute{Method: "GET", Path: "/media/:tenant/assets/:assetId/download", Handle: a.download},
		web.APIRoute{Method: "HEAD", Path: "/media/:tenant/assets/:assetId/download", Handle: a.download},
		web.APIRoute{Method: "POST", Path: "/media/:tenant/assets/:assetId/download-url", Handle: a.signURL},
	), web.Route{Method: "GET", Path: "/openapi/mediaservice.json", Handle: web.Document(openAPI)})
}
