// Package cloudstorage is the cloud storage API.
//
// Media live in the PUBLIC and PROTECTED sections of buckets, addressed as
// /<visibility>/<bucket>/<media_path>, uploaded with POST (a new POST
// overwrites), read with GET and HEAD, renamed with PUT
// {"action":"move","dest":…}, removed with DELETE, and listed with GET on
// /<visibility>/<bucket>. PUBLIC reads need no token; PROTECTED reads need
// READ on the bucket; listing needs READ in both sections; uploads, moves
// and deletes need WRITE. Users sign HS256 JWTs with their own secret.
//
// Errors are {"error":"<code>","message":"<text>"} with the status the
// README lists. The files: cloudstorage.go the API, its routes and what a
// path names, errors.go its one error writer, media.go the endpoints,
// users.go the users.
//
// An API is safe for concurrent use.
package cloudstorage

import (
	_ "embed"
	"net/http"
	"strings"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/keyspace"
	"github.com/cairnstore/cairn/server/internal/resumable"
	"github.com/cairnstore/cairn/server/internal/urlpath"
	"github.com/cairnstore/cairn/server/internal/web"
)

// Config configures the API. Deps.Engine is required.
type Config struct {
	web.Deps
	// MaxUpload bounds an uploaded file; default 5 GiB.
	MaxUpload int64
	// UploadTTL is how long a resumable upload lives from its creation;
	// default 24 hours.
	UploadTTL time.Duration
}

// MaxListLimit is the largest listing page a request may ask for.
const MaxListLimit = 10000

// namespace holds media records; their tenant is "<visibility>/<bucket>"
// and their name the media path.
const namespace = keyspace.CloudStorage

// API is the cloud storage API over one engine.
type API struct {
	web.Deps
	cfg   Config
	users *Users
	// uploads and tus: resumable uploads (uploads.go).
	uploads *resumable.Store
	tus     *handler.UnroutedHandler
}

// New returns the API.
func New(cfg Config) *API {
	cfg.Deps = cfg.Deps.WithDefaults()
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = 5 << 30
	}
	if cfg.UploadTTL <= 0 {
		cfg.UploadTTL = uploadTTL
	}
	a := &API{Deps: cfg.Deps, cfg: cfg, users: NewUsers(cfg.Engine)}
	a.newUploads()
	return a
}

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API, served at
// /openapi/cloudstorage.json.
func OpenAPI() []byte { return openAPI }

// Routes are the API's endpoints. Both sections share the handlers: the
// path is parsed from the escaped URL, so the route only dispatches.
func (a *API) Routes() []web.Route {
	var rs []web.APIRoute
	for _, vis := range []string{"public", "protected"} {
		media := "/" + vis + "/:bucket/*path"
		bucket := "/" + vis + "/:bucket"
		rs = append(rs,
			web.APIRoute{Method: "GET", Path: media, Handle: a.dispatch},
			web.APIRoute{Method: "HEAD", Path: media, Handle: a.dispatch},
			web.APIRoute{Method: "POST", Path: media, Handle: a.dispatch, MaxBody: a.cfg.MaxUpload},
			web.APIRoute{Method: "PUT", Path: media, Handle: a.dispatch},
			web.APIRoute{Method: "DELETE", Path: media, Handle: a.dispatch},
			web.APIRoute{Method: "GET", Path: bucket, Handle: a.dispatch},
			web.APIRoute{Method: "HEAD", Path: bucket, Handle: a.dispatch},
		)
	}
	rs = append(rs, web.APIRoute{Method: "POST", Path: signedPrefix + "/protected/:bucket/*path", Handle: a.sign})
	for _, vis := range []string{"public", "protected"} {
		rs = append(rs, web.APIRoute{Method: "POST", Path: uploadsAt + "/" + vis + "/:bucket/*path", Handle: a.tusCreate, MaxBody: a.cfg.MaxUpload + 1<<20})
	}
	for _, m := range []string{"HEAD", "PATCH", "DELETE", "GET"} {
		rt := web.APIRoute{Method: m, Path: uploadsAt + "/:id", Handle: a.tusUpload}
		if m == "PATCH" {
			rt.MaxBody = a.cfg.MaxUpload + 1<<20
		}
		rs = append(rs, rt)
	}
	return append(web.Routes(a.writeError, rs...), web.Route{Method: "GET", Path: "/openapi/cloudstorage.json", Handle: web.Document(openAPI)})
}

// target is what a request path names.
type target struct {
	visibility, bucket string
	// path is the media path, "" for the bucket itself.
	path string
	dir  bool
}

func (t target) key() engine.Key {
	return engine.Key{Namespace: namespace, Tenant: t.visibility + "/" + t.bucket, Name: t.path}
}

// full is the path as clients write it: "public/277/images/a.jpeg".
func (t target) full(name string) string {
	return t.visibility + "/" + t.bucket + "/" + name
}

// url is the escaped absolute path of a media path in t's bucket.
func (t target) url(name string) string {
	return "/" + urlpath.Escape(append([]string{t.visibility, t.bucket}, strings.Split(name, "/")...))
}

// bucketURL is the escaped absolute path of t's bucket.
func (t target) bucketURL() string {
	return "/" + urlpath.Escape([]string{t.visibility, t.bucket})
}

func parseTarget(r *http.Request) (target, error) { return parseEscaped(r.URL.EscapedPath()) }

// parseEscaped parses an escaped request path.
func parseEscaped(escaped string) (target, error) {
	segs, dir, err := urlpath.Split(escaped)
	if err != nil {
		return target{}, err
	}
	if len(segs) < 2 || (segs[0] != "public" && segs[0] != "protected") {
		return target{}, urlpath.Invalid("want /public/<bucket>/<path> or /protected/<bucket>/<path>")
	}
	if len(segs[1]) > 255 {
		return target{}, urlpath.Invalid("bucket name longer than 255 bytes")
	}
	return target{visibility: segs[0], bucket: segs[1], path: urlpath.Join(segs[2:]), dir: dir}, nil
}
