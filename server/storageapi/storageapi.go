// Package storageapi is the Storage API under /storage/.
//
// Files live in three modes. Public files need no token; a user's files are seen only
// with that user's token; an organization's files are shared by its
// members through organization tokens (admin and manager upload, delete
// and share; member reads and lists). Users, organizations and roles are
// kept in the store (IAM); POST /storage/auth/login exchanges an email
// and password for a user token and one token per organization.
//
// The endpoints are described by the OpenAPI 3 document served at
// /storage/openapi.json (openapi.json here). Errors are
// {"error":"<code>","message":"<text>"}. The files: storageapi.go the API
// and its routes, errors.go its one error writer, tokens.go tokens,
// areas and the login, files.go the file endpoints, iam.go users,
// organizations and roles.
//
// An API is safe for concurrent use.
package storageapi

import (
	_ "embed"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/resumable"
	"github.com/cairnstore/cairn/server/internal/web"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API.
func OpenAPI() []byte { return openAPI }

// Config configures the API. Deps.Engine is required.
type Config struct {
	web.Deps
	// NoPublicUploads refuses anonymous uploads (403). Public files
	// already stored stay readable and deletable, so links handed out
	// keep working.
	NoPublicUploads bool
	// MaxFile bounds a user's or organization's upload; default 5 GiB.
	MaxFile int64
	// MaxPublicFile bounds an anonymous upload; default 25 MiB.
	MaxPublicFile int64
	// PublicRate is how many anonymous uploads one client address may
	// make per minute (in bursts of as many); default 10.
	PublicRate float64
	// TokenTTL is a token's lifetime; default one hour.
	TokenTTL time.Duration
	// UploadTTL is how long a resumable upload lives from its creation;
	// unfinished by then, it is deleted and its bytes reclaimed. Default
	// 24 hours.
	UploadTTL time.Duration
}

// API is the Storage API over one engine.
type API struct {
	web.Deps
	cfg       Config
	iam       *IAM
	passwords *auth.Passwords
	limit     *web.Rate
	// uploads and tus: resumable uploads (uploads.go).
	uploads *resumable.Store
	tus     map[scope]*handler.UnroutedHandler
}

// New returns the API.
func New(cfg Config) *API {
	cfg.Deps = cfg.Deps.WithDefaults()
	if cfg.MaxFile <= 0 {
		cfg.MaxFile = 5 << 30
	}
	if cfg.MaxPublicFile <= 0 {
		cfg.MaxPublicFile = 25 << 20
	}
	if cfg.PublicRate <= 0 {
		cfg.PublicRate = 10
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.UploadTTL <= 0 {
		cfg.UploadTTL = uploadTTL
	}
	a := &API{
		Deps: cfg.Deps, cfg: cfg, iam: NewIAM(cfg.Engine),
		passwords: auth.NewPasswords(time.Minute, cfg.Now),
		limit:     web.NewRate(cfg.PublicRate, max(1, int(cfg.PublicRate))).SharedBy("storageapi.public", cfg.Engine),
	}
	a.newUploads()
	return a
}

// Routes are the API's endpoints.
func (a *API) Routes() []web.Route {
	rs := []web.APIRoute{{Method: "POST", Path: "/storage/auth/login", Handle: a.login}}
	for _, s := range []scope{public, user, org} {
		base := "/storage/" + string(s) + "/files"
		maxBody := a.cfg.MaxFile
		if s == public {
			maxBody = a.cfg.MaxPublicFile
		}
		rs = append(rs,
			web.APIRoute{Method: "POST", Path: base, Handle: a.with(s, a.upload), MaxBody: maxBody + 1<<20},
			web.APIRoute{Method: "GET", Path: base + "/:id", Handle: a.readable(s, a.download)},
			web.APIRoute{Method: "HEAD", Path: base + "/:id", Handle: a.readable(s, a.download)},
			web.APIRoute{Method: "GET", Path: base + "/:id/info", Handle: a.with(s, a.info)},
			web.APIRoute{Method: "GET", Path: base + "/:id/url", Handle: a.with(s, a.getURL)},
			web.APIRoute{Method: "DELETE", Path: base + "/:id", Handle: a.with(s, a.delete)},
		)
		ub := "/storage/" + string(s) + "/uploads"
		h := a.tus[s]
		rs = append(rs,
			web.APIRoute{Method: "POST", Path: ub, Handle: a.tusRoute(s, false, h.PostFile), MaxBody: maxBody + 1<<20},
			web.APIRoute{Method: "HEAD", Path: ub + "/:id", Handle: a.tusRoute(s, true, h.HeadFile)},
			web.APIRoute{Method: "PATCH", Path: ub + "/:id", Handle: a.tusRoute(s, true, h.PatchFile), MaxBody: maxBody + 1<<20},
			web.APIRoute{Method: "DELETE", Path: ub + "/:id", Handle: a.tusRoute(s, true, h.DelFile)},
			web.APIRoute{Method: "GET", Path: ub + "/:id", Handle: a.with(s, a.uploadResult)},
		)
		if s != public {
			rs = append(rs,
				web.APIRoute{Method: "GET", Path: base, Handle: a.with(s, a.list)},
				web.APIRoute{Method: "POST", Path: base + "/:id/url", Handle: a.with(s, a.share)},
				web.APIRoute{Method: "DELETE", Path: base + "/:id/url", Handle: a.with(s, a.unshare)},
			)
		}
	}
	return append(web.Routes(a.writeError, rs...), web.Route{Method: "GET", Path: "/storage/openapi.json", Handle: web.Document(openAPI)})
}
