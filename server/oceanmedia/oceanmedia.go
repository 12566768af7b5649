// Package oceanmedia is the Ocean framework's /v1/media resource.
//
// Media are organised by app, context, name and locale, each rendered as
// {"medium":{…}} with exactly four _links (self, url, creator, updater),
// created from flat JSON with an optional base64 payload (decoded as a
// stream), updated with PATCH semantics under optimistic locking
// (lock_version), deleted, listed with exact matches, a file-name search,
// grouping and paging served from index records, and deleted
// automatically at delete_at, with an optional e-mail notification.
// Requests carry an X-API-Token issued by POST /v1/authentications.
//
// Errors are {"_api_error":[…]} or, for validation, {"field":["message"]}.
// The files: oceanmedia.go the API and its routes, errors.go its one
// error writer, auth.go tokens, medium.go a medium, its index records and
// its representation, handlers.go the endpoints on one medium,
// collections.go the collection, notify.go autodelete notifications,
// users.go the API users.
//
// An API is safe for concurrent use.
package oceanmedia

import (
	"context"
	_ "embed"
	"time"

	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/jsonstream"
	"github.com/cairnstore/cairn/server/internal/web"
)

// Config configures the API. Deps.Engine is required.
type Config struct {
	web.Deps
	// MaxPayload bounds a decoded payload; default 5 GiB.
	MaxPayload int64
	// TokenTTL is how long an authentication token lasts; default 30 min.
	TokenTTL time.Duration
	// Notify, if set, sends an autodelete notification (cmd/cairn wires
	// an SMTP relay, internal/mail). It is called off the sweeper's path,
	// one at a time, each within a deadline, and within limits per
	// recipient and in all.
	Notify func(ctx context.Context, to, subject, body string) error
}

// API is the /v1/media API over one engine.
type API struct {
	web.Deps
	cfg       Config
	users     *Users
	passwords *auth.Passwords
	// mail queues autodelete notifications; nil without Config.Notify.
	mail *notifier
}

// New returns the API and registers its autodelete hook with the engine.
func New(cfg Config) *API {
	cfg.Deps = cfg.Deps.WithDefaults()
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 5 << 30
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 30 * time.Minute
	}
	a := &API{Deps: cfg.Deps, cfg: cfg, users: NewUsers(cfg.Engine), passwords: auth.NewPasswords(time.Minute, cfg.Now)}
	if cfg.Notify != nil {
		a.mail = newNotifier(cfg.Notify, cfg.Logger, cfg.Now)
		// Several nodes: a recipient's limit holds for them all (the
		// limit in all protects each node's relay, and is each node's).
		a.mail.to.SharedBy("oceanmedia.mail-recipient", cfg.Engine)
	}
	cfg.Engine.OnExpire(namespace, a.autodeleted)
	return a
}

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API, served at
// /openapi/oceanmedia.json.
func OpenAPI() []byte { return openAPI }

// Routes are the API's endpoints.
func (a *API) Routes() []web.Route {
	maxBody := a.cfg.MaxPayload/3*4 + 8 + jsonstream.MaxSmall
	return append(web.Routes(a.writeError,
		web.APIRoute{Method: "POST", Path: "/v1/authentications", Handle: a.authenticate},
		web.APIRoute{Method: "GET", Path: "/v1/media", Handle: a.list},
		web.APIRoute{Method: "POST", Path: "/v1/media", Handle: a.create, MaxBody: maxBody},
		web.APIRoute{Method: "GET", Path: "/v1/media/:id", Handle: a.get},
		web.APIRoute{Method: "PUT", Path: "/v1/media/:id", Handle: a.update, MaxBody: maxBody},
		web.APIRoute{Method: "PATCH", Path: "/v1/media/:id", Handle: a.update, MaxBody: maxBody},
		web.APIRoute{Method: "DELETE", Path: "/v1/media/:id", Handle: a.delete},
	), web.Route{Method: "GET", Path: "/openapi/oceanmedia.json", Handle: web.Document(openAPI)})
}
