package storageapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/resumable"
	"github.com/cairnstore/cairn/server/internal/web"
)

// Resumable uploads: tus 1.0 (tus.io; core, creation,
// creation-with-upload, termination, expiration, concatenation,
// creation-defer-length) under /storage/{scope}/uploads, served by
// tusd's handler over a store in the engine (server/internal/resumable).
// The same token, role, size limit and rate limits as a plain upload;
// an upload is its creator's (another token, or none, finds nothing:
// 404). Finished, it is the file a plain upload makes: the PATCH that
// completes it answers 200 with the plain upload's JSON, which GET
// /storage/{scope}/uploads/{id} answers again later.

// uploadsNS holds the uploads in progress.
const uploadsNS = "storageapi.uploads"

// tusKey is the context key of a tus request's tusRequest.
type tusKey struct{}

// tusRequest is what the hooks and Finish need of the request.
type tusRequest struct {
	r  *http.Request
	ar area
}

func (a *API) newUploads() {
	a.uploads = &resumable.Store{Engine: a.Engine, Namespace: uploadsNS, TTL: a.cfg.UploadTTL, Now: a.Now, Finish: a.finishUpload, Owns: a.ownsUpload}
	a.tus = map[scope]*handler.UnroutedHandler{}
	for _, s := range []scope{public, user, org} {
		maxSize := a.cfg.MaxFile
		if s == public {
			maxSize = a.cfg.MaxPublicFile
		}
		a.tus[s] = a.uploads.Handler("/storage/"+string(s)+"/uploads/", maxSize, a.preCreate, a.preFinish)
	}
}

// tusRoute serves one tus request of scope s: the area from the token,
// the upload (if the path names one) the area's, then tusd.
func (a *API) tusRoute(s scope, hasID bool, serve func(http.ResponseWriter, *http.Request)) web.Handler {
	return a.with(s, func(w http.ResponseWriter, r *http.Request, ar area) error {
		if !ar.write {
			return errReadOnlyRole
		}
		if s == public && a.cfg.NoPublicUploads {
			return fail(http.StatusForbidden, "public_uploads_disabled", "anonymous uploads are switched off on this server")
		}
		if hasID {
			if err := a.ownUpload(r.PathValue("id"), ar); err != nil {
				return err
			}
		} else if s == public {
			if ok, wait := a.limit.Allow(web.ClientAddr(r), a.Now()); !ok {
				e := fail(http.StatusTooManyRequests, "rate_limited", "too many anonymous uploads from this address; retry later")
				e.retry = wait
				return e
			}
		}
		if r.Method == http.MethodPatch || r.Method == http.MethodPost {
			who := web.Anonymous(r)
			if s != public {
				who = web.Identity("storageapi", ar.userID)
			}
			release, err := a.Limits.Uploads.Acquire(r.Context(), who)
			if err != nil {
				return err
			}
			defer release()
		}
		r = r.WithContext(context.WithValue(r.Context(), tusKey{}, tusRequest{r: r, ar: ar}))
		resumable.Serve(a.tus[s], serve, "/storage/"+string(s)+"/uploads", a.BaseURL(r), w, r)
		return nil
	})
}

// ownUpload: the upload id exists and is ar's (else 404, as for one that
// does not exist).
func (a *API) ownUpload(id string, ar area) error {
	st, err := a.uploads.Storage(id)
	if errors.Is(err, handler.ErrNotFound) {
		return errNoUpload
	}
	if err != nil {
		return err
	}
	if !owns(st, ar) {
		return errNoUpload
	}
	return nil
}

// owns: an upload of storage st is area ar's.
func owns(st map[string]string, ar area) bool {
	return st["scope"] == string(ar.scope) && st["tenant"] == ar.tenant && st["user"] == ar.userID
}

// ownsUpload is the uploads' resumable.Store.Owns: the request's area
// has the upload.
func (a *API) ownsUpload(ctx context.Context, st map[string]string) bool {
	tr, ok := ctx.Value(tusKey{}).(tusRequest)
	return ok && owns(st, tr.ar)
}

var errNoUpload = fail(http.StatusNotFound, "not_found", "no such upload")

// uploadMeta is the file's name and declared type, from the upload's
// metadata (filename, filetype: what tus-js-client and Uppy send).
func uploadMeta(m handler.MetaData) (string, string, error) {
	raw := m["filename"]
	if raw == "" {
		raw = m["name"]
	}
	name, err := fileName(raw)
	if err != nil {
		return "", "", err
	}
	ctype := m["filetype"]
	if ctype == "" {
		ctype = m["type"]
	}
	return name, ctype, nil
}

// preCreate checks a new upload's name and records whose it is.
func (a *API) preCreate(hook handler.HookEvent) (handler.HTTPResponse, handler.FileInfoChanges, error) {
	tr, ok := hook.Context.Value(tusKey{}).(tusRequest)
	if !ok {
		return handler.HTTPResponse{}, handler.FileInfoChanges{}, errors.New("storageapi: a tus request without its area")
	}
	if !hook.Upload.IsPartial {
		if _, _, err := uploadMeta(hook.Upload.MetaData); err != nil {
			return handler.HTTPResponse{}, handler.FileInfoChanges{}, handler.NewError("ERR_FILE_NAME", err.Error(), http.StatusBadRequest)
		}
	}
	// The partial uploads a final one names are the area's: tusd found
	// them through the store, which finds no other (ownsUpload).
	return handler.HTTPResponse{}, handler.FileInfoChanges{Storage: map[string]string{
		"scope": string(tr.ar.scope), "tenant": tr.ar.tenant, "user": tr.ar.userID,
	}}, nil
}

// finishUpload makes the file of a complete upload, as a plain upload
// does, in the transaction that ends the upload.
func (a *API) finishUpload(ctx context.Context, tx *engine.Tx, info handler.FileInfo, up *engine.Upload, head []byte) ([]byte, error) {
	tr, ok := ctx.Value(tusKey{}).(tusRequest)
	if !ok {
		return nil, errors.New("storageapi: finishing an upload outside a request")
	}
	ar := area{scope: scope(info.Storage["scope"]), tenant: info.Storage["tenant"], userID: info.Storage["user"], write: true}
	name, declared, err := uploadMeta(info.MetaData)
	if err != nil {
		return nil, err
	}
	ctype, _, err := web.Content(declared, bytes.NewReader(head))
	if err != nil {
		return nil, err
	}
	out, err := a.storeFile(tx, tr.r, ar, name, ctype, up)
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// preFinish answers the PATCH that completed an upload with the file's
// JSON, as a plain upload would (200: tus clients take any 2xx).
func (a *API) preFinish(hook handler.HookEvent) (handler.HTTPResponse, error) {
	if hook.Upload.IsPartial {
		return handler.HTTPResponse{}, nil
	}
	res, done, err := a.uploads.Result(hook.Upload.ID)
	if err != nil || !done {
		return handler.HTTPResponse{}, err
	}
	return handler.HTTPResponse{StatusCode: http.StatusOK, Body: string(res), Header: handler.HTTPHeader{
		"Content-Type": "application/json", "Cache-Control": "no-store",
	}}, nil
}

// uploadResult is GET /storage/{scope}/uploads/{id}: the file a finished
// upload made (its JSON, as the upload's last PATCH answered), or 409
// while bytes are missing.
func (a *API) uploadResult(w http.ResponseWriter, r *http.Request, ar area) error {
	id := r.PathValue("id")
	if err := a.ownUpload(id, ar); err != nil {
		return err
	}
	// Reading it finishes an upload whose finish a crash cut off.
	ctx := context.WithValue(r.Context(), tusKey{}, tusRequest{r: r, ar: ar})
	if _, err := a.uploads.GetUpload(ctx, id); err != nil {
		return err
	}
	res, done, err := a.uploads.Result(id)
	if err != nil {
		return err
	}
	if !done {
		return fail(http.StatusConflict, "upload_incomplete", "the upload has not received all its bytes")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(res)
	return nil
}

// uploadTTL is an upload's default lifetime.
const uploadTTL = 24 * time.Hour
