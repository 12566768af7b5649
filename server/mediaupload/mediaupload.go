// Package mediaupload is the media upload API v2 at /cms/v2/content.
//
// Content comes base64-encoded in a JSON body, decoded as a stream, and
// is stored with an expiration date (default today + 30 days, at most a
// year ahead) and served publicly at its Location until that day ends.
// The same bytes uploaded again by the same account answer 302 with the
// existing file; another account gets its own 201, so deduplication is
// never an oracle. A file is named by its id or by the X-Request-Id its
// upload was answered with. Accounts use HTTP Basic auth. Errors of GET,
// PUT and DELETE are all 404, as documented; upload validation answers
// 400 with every reason that applies.
//
// The files: mediaupload.go the API and its routes, errors.go its one
// error writer, files.go how files are kept, handlers.go the endpoints,
// accounts.go the accounts.
//
// An API is safe for concurrent use.
package mediaupload

import (
	_ "embed"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/jsonstream"
	"github.com/cairnstore/cairn/server/internal/web"
)

// Config configures the API. Deps.Engine is required.
type Config struct {
	web.Deps
	// MaxContent bounds the decoded content; default 100 MB.
	MaxContent int64
}

// API is the media upload API over one engine.
type API struct {
	web.Deps
	cfg       Config
	accounts  *Accounts
	passwords *auth.Passwords
}

// New returns the API.
func New(cfg Config) *API {
	cfg.Deps = cfg.Deps.WithDefaults()
	if cfg.MaxContent <= 0 {
		cfg.MaxContent = 100_000_000
	}
	return &API{Deps: cfg.Deps, cfg: cfg, accounts: NewAccounts(cfg.Engine), passwords: auth.NewPasswords(time.Minute, cfg.Now)}
}

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API, served at
// /openapi/mediaupload.json.
func OpenAPI() []byte { return openAPI }

// Routes are the API's endpoints.
func (a *API) Routes() []web.Route {
	// base64 is 4/3 of the content, plus the JSON around it.
	maxBody := a.cfg.MaxContent/3*4 + 8 + jsonstream.MaxSmall
	return append(web.Routes(a.writeError,
		web.APIRoute{Method: "POST", Path: "/cms/v2/content", Handle: a.upload, MaxBody: maxBody},
		web.APIRoute{Method: "PUT", Path: "/cms/v2/content", Handle: a.update},
		web.APIRoute{Method: "GET", Path: "/cms/v2/content/:id", Handle: a.get},
		web.APIRoute{Method: "DELETE", Path: "/cms/v2/content/:id", Handle: a.delete},
	), web.Route{Method: "GET", Path: "/openapi/mediaupload.json", Handle: web.Document(openAPI)})
}

// requestID is the documented X-Request-Id form: "053-<uuid>".
func requestID() string { return fmt.Sprintf("%03d-%s", rand.IntN(1000), uuid.NewString()) }

// isRequestID reports whether s has requestID's form.
func isRequestID(s string) bool {
	if len(s) != 40 || s[3] != '-' {
		return false
	}
	for _, c := range s[:3] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return uuid.Validate(s[4:]) == nil
}
