package cloudstorage

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cairnstore/cairn/server/internal/signurl"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/blobhttp"
	"github.com/cairnstore/cairn/server/internal/urlpath"
	"github.com/cairnstore/cairn/server/internal/web"
)

// dispatch serves every request of the API: both sections share the
// handlers, and the path is parsed from the escaped URL.
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
		if need != "" && signurl.Signed(r) {
			if err := a.verifySigned(r, t); err != nil {
				return err
			}
			return a.get(w, r, t)
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
		return urlpath.Invalid("a media path cannot end with /")
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
			a.Logger.Error("a user's secret does not open: is this the store's key file?", "user", sub, "err", err)
		}
		if err != nil {
			return nil, false
		}
		usr, found = u, true
		return []byte(u.Secret), true
	}, a.Now)
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
	rec, err := a.Engine.GetRecord(t.key())
	if err != nil {
		return err
	}
	name := t.path[strings.LastIndexByte(t.path, '/')+1:]
	release, err := a.Limits.Downloads.Acquire(r.Context(), web.Address(r))
	if err != nil {
		return err
	}
	defer release()
	caching := blobhttp.Private()
	if t.visibility == "public" {
		caching = blobhttp.Public(a.PublicMaxAge)
	}
	return blobhttp.Serve(w, r, a.Engine, rec, name, caching, a.Variants)
}

// uploaded is the body of a successful upload or move.
type uploaded struct {
	Path        string `json:"path"`
	Size        int64  `json:"size"`
	ContentType string `json:"contentType"`
	ETag        string `json:"etag"`
}

func (a *API) upload(w http.ResponseWriter, r *http.Request, t target, user string) error {
	release, err := a.Limits.Uploads.Acquire(r.Context(), web.Identity("cloudstorage", user))
	if err != nil {
		return err
	}
	defer release()
	ctype, body, err := web.Content(r.Header.Get("Content-Type"), r.Body)
	if err != nil {
		return err
	}
	rec, err := a.Engine.PutRecord(r.Context(), t.key(), body, engine.Write{ContentType: ctype})
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
	err = a.Engine.Update(r.Context(), func(tx *engine.Tx) error {
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
	if err := a.Engine.DeleteRecord(r.Context(), t.key()); err != nil {
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
	recs, more, err := web.Page(a.Engine, namespace, t.key().Tenant, prefix, after, limit)
	if err != nil {
		return err
	}
	paths := make([]string, len(recs))
	for i, rec := range recs {
		paths[i] = t.full(rec.Key.Name)
	}
	if more {
		next := url.Values{"after": {recs[len(recs)-1].Key.Name}, "limit": {strconv.Itoa(limit)}}
		if prefix != "" {
			next.Set("prefix", prefix)
		}
		web.SetNext(w, t.bucketURL(), next)
	}
	web.JSON(w, http.StatusOK, paths)
	return nil
}

// listAll streams every media path of the section that begins with
// prefix and comes after after, a batch at a time.
func (a *API) listAll(w http.ResponseWriter, t target, prefix, after string) error {
	arr := web.NewArray(w, http.StatusOK)
	for recs, err := range a.Engine.Batches(namespace, t.key().Tenant, prefix, after, listBatch) {
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
