// Package cloudstorage serves the cloud storage API: media in the PUBLIC
// and PROTECTED sections of buckets, addressed as
// /<visibility>/<bucket>/<media_path>, uploaded with POST (a new POST
// overwrites), read with GET and HEAD, renamed with PUT
// {"action":"move","dest":…}, removed with DELETE, and listed with GET on
// /<visibility>/<bucket>. PUBLIC reads need no token; PROTECTED reads need
// READ on the bucket; listing needs READ in both sections; uploads, moves
// and deletes need WRITE. Users sign HS256 JWTs with their own secret.
//
// Errors are {"error":"<code>","message":"<text>"} with the status the
// README lists. An API is safe for concurrent use.
//
//	api := cloudstorage.New(cloudstorage.Config{Engine: e})
//	for _, rt := range api.Routes() { router.Handle(rt.Method, rt.Path, rt.Handle) }
package cloudstorage

import (
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/blobhttp"
	"github.com/cairnstore/cairn/server/internal/urlpath"
	"github.com/cairnstore/cairn/server/internal/web"
)

// Config configures the API. Engine is required.
type Config struct {
	Engine *engine.Engine
	Logger *slog.Logger
	Now    func() time.Time
	// MaxUpload bounds an uploaded file; default 5 GiB.
	MaxUpload int64
	// Limits are what one client may take (upload and download slots,
	// failed sign-ins); the server passes those it shares between its
	// APIs, and any missing take their defaults.
	Limits web.Limits
}

// MaxListLimit is the largest listing page a request may ask for.
const MaxListLimit = 10000

// namespace holds media records; their tenant is "<visibility>/<bucket>"
// and their name the media path.
const namespace = "cloudstorage"

// API is the cloud storage API over one engine.
type API struct {
	cfg   Config
	e     *engine.Engine
	users *Users
}

// New returns the API.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = 5 << 30
	}
	return &API{cfg: cfg, e: cfg.Engine, users: NewUsers(cfg.Engine)}
}

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API, served at
// /openapi/cloudstorage.json.
func OpenAPI() []byte { return openAPI }

// Routes are the API's endpoints. Both sections share the handlers: the
// path is parsed from the escaped URL, so the route only dispatches.
func (a *API) Routes() []web.Route {
	rs := []web.Route{{Method: "GET", Path: "/openapi/cloudstorage.json", Handle: web.Document(openAPI)}}
	for _, vis := range []string{"public", "protected"} {
		media := "/" + vis + "/:bucket/*path"
		bucket := "/" + vis + "/:bucket"
		rs = append(rs,
			web.Route{Method: "GET", Path: media, Handle: a.serve},
			web.Route{Method: "HEAD", Path: media, Handle: a.serve},
			web.Route{Method: "POST", Path: media, Handle: a.serve, MaxBody: a.cfg.MaxUpload},
			web.Route{Method: "PUT", Path: media, Handle: a.serve},
			web.Route{Method: "DELETE", Path: media, Handle: a.serve},
			web.Route{Method: "GET", Path: bucket, Handle: a.serve},
			web.Route{Method: "HEAD", Path: bucket, Handle: a.serve},
		)
	}
	return rs
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

func parseTarget(r *http.Request) (target, error) {
	segs, dir, err := urlpath.Split(r.URL.EscapedPath())
	if err != nil {
		return target{}, err
	}
	if len(segs) < 2 || (segs[0] != "public" && segs[0] != "protected") {
		return target{}, fmt.Errorf("%w: want /public/<bucket>/<path> or /protected/<bucket>/<path>", urlpath.ErrInvalid)
	}
	if len(segs[1]) > 255 {
		return target{}, fmt.Errorf("%w: bucket name longer than 255 bytes", urlpath.ErrInvalid)
	}
	return target{visibility: segs[0], bucket: segs[1], path: urlpath.Join(segs[2:]), dir: dir}, nil
}

// serve dispatches every request of the API.
func (a *API) serve(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	err := a.dispatch(w, r)
	if err != nil {
		a.writeError(w, r, err)
	}
}

func (a *API) dispatch(w http.ResponseWriter, r *http.Request) error {
	t, err := parseTarget(r)
	if err != nil {
		return err
	}
	if t.path == "" {
		if _, err := a.authorize(r, t.bucket, Read); err != nil {
			return err
		}
		return a.list(w, r, t)
	}
	switch r.Method {
	case "GET", "HEAD":
		need := Read
		if t.visibility == "public" {
			need = ""
		}
		if _, err := a.authorize(r, t.bucket, need); err != nil {
			return err
		}
		return a.get(w, r, t)
	}
	user, err := a.authorize(r, t.bucket, Write)
	if err != nil {
		return err
	}
	if t.dir {
		return fmt.Errorf("%w: a media path cannot end with /", urlpath.ErrInvalid)
	}
	switch r.Method {
	case "POST":
		return a.upload(w, r, t, user)
	case "PUT":
		return a.move(w, r, t)
	case "DELETE":
		return a.delete(w, r, t)
	}
	return errMethod
}

var errMethod = errors.New("cloudstorage: method not allowed")

// Errors of authorization, mapped to 401 and 403.
var (
	errForbidden = errors.New("cloudstorage: no access to the bucket")
)

// authorize checks that the request's user has need on bucket, and
// returns the user's ID; need "" allows anyone (and returns ""). A user
// without access gets errForbidden whether or not the media exists, so
// that access reveals nothing.
func (a *API) authorize(r *http.Request, bucket string, need Perm) (string, error) {
	if need == "" {
		return "", nil
	}
	tok, err := auth.Bearer(r.Header.Get("Authorization"))
	if err != nil {
		return "", err
	}
	var usr User
	var found bool
	sub, err := auth.VerifyHS256(tok, func(sub string) ([]byte, bool) {
		u, err := a.users.Get(sub)
		if errors.Is(err, engine.ErrSealed) {
			a.cfg.Logger.Error("a user's secret does not open: is this the store's key file?", "user", sub, "err", err)
		}
		if err != nil {
			return nil, false
		}
		usr, found = u, true
		return []byte(u.Secret), true
	}, a.cfg.Now)
	if err != nil {
		return "", err
	}
	if !found || usr.ID != sub {
		return "", auth.ErrInvalid
	}
	if p, ok := usr.Buckets[bucket]; ok && p.allows(need) {
		return sub, nil
	}
	return "", fmt.Errorf("%w: user %s lacks %s on bucket %s", errForbidden, sub, need, bucket)
}

func (a *API) get(w http.ResponseWriter, r *http.Request, t target) error {
	if t.dir {
		return fmt.Errorf("%w: %s/", engine.ErrNotFound, t.path)
	}
	rec, err := a.e.GetRecord(t.key())
	if err != nil {
		return err
	}
	name := t.path[strings.LastIndexByte(t.path, '/')+1:]
	release, err := a.cfg.Limits.Downloads.Acquire(r.Context(), web.Address(r))
	if err != nil {
		return err
	}
	defer release()
	return blobhttp.Serve(w, r, a.e, rec, name, t.visibility == "public")
}

// uploaded is the body of a successful upload or move.
type uploaded struct {
	Path        string `json:"path"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
	ETag        string `json:"etag"`
}

func (a *API) upload(w http.ResponseWriter, r *http.Request, t target, user string) error {
	release, err := a.cfg.Limits.Uploads.Acquire(r.Context(), web.Identity("cloudstorage", user))
	if err != nil {
		return err
	}
	defer release()
	ctype, body, err := web.Content(r.Header.Get("Content-Type"), r.Body)
	if err != nil {
		return err
	}
	rec, err := a.e.PutRecord(r.Context(), t.key(), body, engine.Write{ContentType: ctype})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if rec.Version == 1 {
		status = http.StatusCreated
	}
	w.Header().Set("Location", t.url(t.path))
	w.Header().Set("ETag", `"`+rec.Blob.String()+`"`)
	web.JSON(w, status, uploaded{Path: t.full(t.path), Size: rec.Size, ContentType: rec.ContentType, ETag: `"` + rec.Blob.String() + `"`})
	return nil
}

// moveRequest is PUT's body.
type moveRequest struct {
	Action string `json:"action"`
	Dest   string `json:"dest"`
}

func (a *API) move(w http.ResponseWriter, r *http.Request, t target) error {
	var req moveRequest
	if err := web.DecodeJSON(r.Body, &req); err != nil {
		if web.Status(err) == http.StatusRequestEntityTooLarge {
			return err
		}
		return badRequest("the body must be {\"action\":\"move\",\"dest\":\"<media path>\"}: %v", err)
	}
	if req.Action != "move" {
		return badRequest("unknown action %q: the only action is \"move\"", req.Action)
	}
	segs, err := urlpath.Name(req.Dest)
	if err != nil {
		return badRequest("dest %q is not a valid media path (it must not include the visibility or the bucket): %v", req.Dest, err)
	}
	dest := t
	dest.path = urlpath.Join(segs)
	var moved engine.Record
	err = a.e.Update(r.Context(), func(tx *engine.Tx) error {
		src, err := tx.Get(t.key())
		if err != nil {
			return err
		}
		if dest.path == t.path {
			moved = src
			return nil
		}
		if _, err := tx.Get(dest.key()); err == nil {
			return fmt.Errorf("%w: %s", engine.ErrExists, dest.full(dest.path))
		} else if !errors.Is(err, engine.ErrNotFound) {
			return err
		}
		if moved, err = tx.Put(dest.key(), engine.Record{Blob: src.Blob, ContentType: src.ContentType, Meta: src.Meta}, nil); err != nil {
			return err
		}
		return tx.Delete(t.key())
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", dest.url(dest.path))
	web.JSON(w, http.StatusOK, uploaded{Path: dest.full(dest.path), Size: moved.Size, ContentType: moved.ContentType, ETag: `"` + moved.Blob.String() + `"`})
	return nil
}

func (a *API) delete(w http.ResponseWriter, r *http.Request, t target) error {
	if err := a.e.DeleteRecord(r.Context(), t.key(), 0); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// list answers GET /<visibility>/<bucket>: a JSON array of media paths in
// name order. ?prefix=<media path prefix> filters and ?after=<media path>
// starts after that path. Without ?limit it is the whole section, as the
// document's clients expect of "the contents of a bucket", streamed in
// bounded memory; ?limit=N asks for a page of at most N, with a Link
// header (rel="next") to the next page when there is one.
func (a *API) list(w http.ResponseWriter, r *http.Request, t target) error {
	q := r.URL.Query()
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxListLimit {
			return badRequest("limit must be a number from 1 to %d", MaxListLimit)
		}
		limit = n
	}
	after, prefix := q.Get("after"), q.Get("prefix")
	w.Header().Set("Cache-Control", "private, no-store")
	if limit == 0 {
		return a.listAll(w, t, prefix, after)
	}
	paths := []string{}
	more := false
	for rec, err := range a.e.Records(namespace, t.key().Tenant, prefix, after) {
		if err != nil {
			return err
		}
		if rec.Key.Name == after {
			continue
		}
		if len(paths) == limit {
			more = true
			break
		}
		paths = append(paths, t.full(rec.Key.Name))
	}
	if more {
		last := strings.TrimPrefix(paths[len(paths)-1], t.visibility+"/"+t.bucket+"/")
		next := url.Values{"after": {last}, "limit": {strconv.Itoa(limit)}}
		if prefix != "" {
			next.Set("prefix", prefix)
		}
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", t.bucketURL(), next.Encode()))
	}
	web.JSON(w, http.StatusOK, paths)
	return nil
}

// listAll streams every media path of the section that begins with
// prefix and comes after after, a batch at a time.
func (a *API) listAll(w http.ResponseWriter, t target, prefix, after string) error {
	arr := web.NewArray(w, http.StatusOK)
	for recs, err := range a.e.Batches(namespace, t.key().Tenant, prefix, after, listBatch) {
		if err != nil {
			if arr.Started() {
				arr.Abort()
			}
			return err
		}
		for _, rec := range recs {
			if rec.Key.Name == after {
				continue
			}
			if arr.Add(t.full(rec.Key.Name)) != nil {
				return nil // the client is gone
			}
		}
	}
	arr.Close()
	return nil
}

// listBatch is how many names a listing reads from the index at a time.
const listBatch = 1000

// apiError is the API's error body.
type apiError struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

type badRequestError struct{ msg string }

func (e *badRequestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &badRequestError{fmt.Sprintf(format, args...)}
}

// writeError answers err with the API's error shape. Internal details
// stay in the log.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var bre *badRequestError
	var mbe *http.MaxBytesError
	status := web.Status(err)
	code, msg := "", ""
	switch {
	case errors.As(err, &bre):
		status, code, msg = http.StatusBadRequest, "bad_request", bre.msg
	case errors.Is(err, auth.ErrNoCredentials):
		w.Header().Set("WWW-Authenticate", `Bearer realm="cairn"`)
		status, code, msg = http.StatusUnauthorized, "unauthorized", "a Bearer token is required"
	case errors.Is(err, auth.ErrInvalid):
		w.Header().Set("WWW-Authenticate", `Bearer realm="cairn", error="invalid_token"`)
		status, code, msg = http.StatusUnauthorized, "unauthorized", "the token is invalid or expired"
	case errors.Is(err, errForbidden):
		status, code, msg = http.StatusForbidden, "forbidden", "no access to this bucket"
	case errors.Is(err, errMethod):
		status, code, msg = http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed"
	case errors.Is(err, urlpath.ErrInvalid):
		status, code, msg = http.StatusBadRequest, "bad_request", "invalid path: "+strings.TrimPrefix(err.Error(), "urlpath: invalid path: ")
	case status == http.StatusNotFound:
		code, msg = "not_found", "no media at this path"
	case status == http.StatusConflict:
		code, msg = "conflict", "the destination exists"
	case errors.As(err, &mbe):
		status, code, msg = http.StatusRequestEntityTooLarge, "payload_too_large", fmt.Sprintf("the body is larger than the limit of %d bytes", mbe.Limit)
	case status == http.StatusInsufficientStorage:
		code, msg = "insufficient_storage", "the store is out of space"
	case status == http.StatusTooManyRequests:
		code, msg = "too_many_requests", "too many uploads or downloads at once from this client; retry later"
	case errors.Is(err, engine.ErrBusy), errors.Is(err, web.ErrBusy):
		code, msg = "unavailable", "the server is busy; retry later"
	case status == http.StatusServiceUnavailable:
		code, msg = "unavailable", "the store is not accepting writes"
	case status == http.StatusBadRequest:
		code, msg = "bad_request", "the request could not be read"
	case status == http.StatusRequestTimeout:
		code, msg = "request_timeout", "the request body stopped arriving, or arrived too slowly"
	default:
		status, code, msg = http.StatusInternalServerError, "internal", "internal error"
	}
	if status >= 500 {
		a.cfg.Logger.Error("cloudstorage request failed", "method", r.Method, "path", r.URL.EscapedPath(), "status", status, "err", err)
	} else {
		a.cfg.Logger.Debug("cloudstorage request refused", "method", r.Method, "path", r.URL.EscapedPath(), "status", status, "err", err)
	}
	if r.Method == "HEAD" {
		w.WriteHeader(status)
		return
	}
	web.JSON(w, status, apiError{Error: code, Message: msg})
}
