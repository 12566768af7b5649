package cloudstorage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/resumable"
	"github.com/cairnstore/cairn/server/internal/web"
)

// Resumable uploads: tus 1.0 (tus.io), served by tusd's handler over a
// store in the engine (server/internal/resumable). POST
// /uploads/<visibility>/<bucket>/<media path> creates an upload that,
// once all its bytes are in, is that media, as a POST of the bytes makes
// it (the PATCH that completes it answers 200 with the same JSON); the
// upload itself is /uploads/<id>. Each request needs WRITE on the bucket
// and is its creator's: another user, or one whose WRITE went, finds
// nothing (404).

const (
	uploadsNS = "cloudstorage.uploads"
	uploadTTL = 24 * time.Hour
	uploadsAt = "/uploads"
)

// tusKey is the context key of a tus request's tusRequest.
type tusKey struct{}

type tusRequest struct {
	r    *http.Request
	user string
	t    target
}

func (a *API) newUploads() {
	a.uploads = &resumable.Store{Engine: a.Engine, Namespace: uploadsNS, TTL: a.cfg.UploadTTL, Now: a.Now, Finish: a.finishUpload, Owns: ownsUpload}
	a.tus = a.uploads.Handler(uploadsAt+"/", a.cfg.MaxUpload, a.preCreate, a.preFinish)
}

// tusCreate is POST /uploads/<visibility>/<bucket>/<media path>.
func (a *API) tusCreate(w http.ResponseWriter, r *http.Request) error {
	t, err := parseEscaped(strings.TrimPrefix(r.URL.EscapedPath(), uploadsAt))
	if err != nil {
		return err
	}
	if t.path == "" || t.dir {
		return badRequest("an upload needs a media path that does not end with /")
	}
	user, err := a.authorize(r, t.bucket, Write)
	if err != nil {
		return err
	}
	return a.serveTus(w, r, a.tus.PostFile, tusRequest{r: r, user: user, t: t})
}

// tusUpload serves HEAD, PATCH, DELETE and GET of /uploads/<id>.
func (a *API) tusUpload(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	st, err := a.uploads.Storage(id)
	if errors.Is(err, handler.ErrNotFound) {
		return errNoUpload
	}
	if err != nil {
		return err
	}
	t := target{visibility: st["visibility"], bucket: st["bucket"], path: st["path"]}
	user, err := a.authorize(r, t.bucket, Write)
	if err != nil {
		return err
	}
	if user != st["user"] {
		return errNoUpload
	}
	tr := tusRequest{r: r, user: user, t: t}
	switch r.Method {
	case http.MethodGet:
		return a.uploadResult(w, r, id, tr)
	case http.MethodHead:
		return a.serveTus(w, r, a.tus.HeadFile, tr)
	case http.MethodPatch:
		return a.serveTus(w, r, a.tus.PatchFile, tr)
	default:
		return a.serveTus(w, r, a.tus.DelFile, tr)
	}
}

var (
	errNoUpload   = errors.New("no such upload")
	errIncomplete = errors.New("the upload has not received all its bytes")
)

func (a *API) serveTus(w http.ResponseWriter, r *http.Request, serve func(http.ResponseWriter, *http.Request), tr tusRequest) error {
	if r.Method == http.MethodPatch || r.Method == http.MethodPost {
		release, err := a.Limits.Uploads.Acquire(r.Context(), web.Identity("cloudstorage", tr.user))
		if err != nil {
			return err
		}
		defer release()
	}
	r = r.WithContext(context.WithValue(r.Context(), tusKey{}, tr))
	strip := uploadsAt
	if r.Method == http.MethodPost {
		strip = r.URL.Path // tusd's POST takes no path
	}
	resumable.Serve(a.tus, serve, strip, a.BaseURL(r), w, r)
	return nil
}

// ownsUpload is the uploads' resumable.Store.Owns: the request's user
// made the upload.
func ownsUpload(ctx context.Context, st map[string]string) bool {
	tr, ok := ctx.Value(tusKey{}).(tusRequest)
	return ok && st["user"] == tr.user
}

// preCreate records whose the upload is and where it goes.
func (a *API) preCreate(hook handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
	tr, ok := hook.Context.Value(tusKey{}).(tusRequest)
	if !ok {
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, errors.New("cloudstorage: a tus request without its target")
	}
	// A final upload concatenates partial ones of the same user only:
	// tusd found them through the store, which finds no other's
	// (ownsUpload).
	return handler.HTTPResponse{}, handler.FileInfoChanges{Storage: map[string]string{
		"user": tr.user, "visibility": tr.t.visibility, "bucket": tr.t.bucket, "path": tr.t.path,
	}}, nil
}

// finishUpload stores the media, as a POST of the bytes does.
func (a *API) finishUpload(ctx context.Context, tx *engine.Tx, info handler.FileInfo, up *engine.Upload, head []byte) ([]byte, error) {
	t := target{visibility: info.Storage["visibility"], bucket: info.Storage["bucket"], path: info.Storage["path"]}
	declared := info.MetaData["filetype"]
	ctype, _, err := web.Content(declared, bytes.NewReader(head))
	if err != nil {
		return nil, err
	}
	rec, err := tx.Put(t.key(), engine.Record{ContentType: ctype}, up)
	if err != nil {
		return nil, err
	}
	return json.Marshal(uploaded{Path: t.full(t.path), Size: rec.Size, ContentType: rec.ContentType, ETag: `"` + rec.Blob.String() + `"`})
}

// preFinish answers the PATCH that completed an upload with the media's
// JSON (200: tus clients take any 2xx), its Location and ETag.
func (a *API) preFinish(hook handler.HookEvent) (handler.HTTPResponse, error) {
	res, done, err := a.uploads.Result(hook.Upload.ID)
	if err != nil || !done {
		return handler.HTTPResponse{}, err
	}
	var u uploaded
	json.Unmarshal(res, &u)
	t := target{visibility: hook.Upload.Storage["visibility"], bucket: hook.Upload.Storage["bucket"], path: hook.Upload.Storage["path"]}
	return handler.HTTPResponse{StatusCode: http.StatusOK, Body: string(res), Header: handler.HTTPHeader{
		"Content-Type": "application/json", "Location": t.url(t.path), "ETag": u.ETag,
	}}, nil
}

// uploadResult is GET /uploads/<id>: the media a finished upload made,
// or 409 while bytes are missing.
func (a *API) uploadResult(w http.ResponseWriter, r *http.Request, id string, tr tusRequest) error {
	ctx := context.WithValue(r.Context(), tusKey{}, tr)
	if _, err := a.uploads.GetUpload(ctx, id); err != nil {
		return err
	}
	res, done, err := a.uploads.Result(id)
	if err != nil {
		return err
	}
	if !done {
		return errIncomplete
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(res)
	return nil
}
