package storageapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/text/unicode/norm"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/keyspace"
	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/blobhttp"
	"github.com/cairnstore/cairn/server/internal/publink"
	"github.com/cairnstore/cairn/server/internal/records"
	"github.com/cairnstore/cairn/server/internal/web"
)

const filesNS = keyspace.StorageFiles

// stored is a file record's metadata.
type stored struct {
	Name       string `json:"name"`
	UploadedBy string `json:"uploadedBy,omitempty"`
	PublicLink string `json:"publicLink,omitempty"`
	// DeleteHash is the SHA-256 of a public file's delete token, which
	// is shown once, at upload, and kept only as this hash.
	DeleteHash string `json:"deleteHash,omitempty"`
}

func decodeFile(rec engine.Record) (stored, error) { return files.Decode(rec) }

// files decodes file records.
var files = records.Store[stored]{Namespace: filesNS, What: "file"}

// File is a file as the API shows it.
type File struct {
	FileID      string    `json:"fileId"`
	FileName    string    `json:"fileName"`
	ContentType string    `json:"contentType"`
	Size        int64     `json:"size"`
	Scope       string    `json:"scope"`
	CreatedAt   time.Time `json:"createdAt"`
	ETag        string    `json:"etag"`
	URL         string    `json:"url,omitempty"`
	UploadedBy  string    `json:"uploadedBy,omitempty"`
	DeleteToken string    `json:"deleteToken,omitempty"`
}

func (a *API) render(r *http.Request, ar area, rec engine.Record, f stored) File {
	out := File{
		FileID: rec.Key.Name, FileName: f.Name, ContentType: rec.ContentType, Size: rec.Size,
		Scope: ar.scope.name(), CreatedAt: rec.Created.UTC(), ETag: `"` + rec.Blob.String() + `"`,
		UploadedBy: f.UploadedBy,
	}
	if f.PublicLink != "" {
		out.URL = a.BaseURL(r) + publink.Path(f.PublicLink, f.Name)
	}
	return out
}

func fileKey(ar area, id string) engine.Key {
	return engine.Key{Namespace: filesNS, Tenant: ar.tenant, Name: id}
}

// validID: file IDs are UUIDs; anything else is a file that does not exist.
func validID(id string) bool {
	u, err := uuid.Parse(id)
	return err == nil && u.String() == id
}

func (a *API) load(ar area, id string) (engine.Record, stored, error) {
	if !validID(id) {
		return engine.Record{}, stored{}, errNotFound
	}
	rec, err := a.Engine.GetRecord(fileKey(ar, id))
	if err != nil {
		return rec, stored{}, err
	}
	f, err := decodeFile(rec)
	return rec, f, err
}

// fileName checks and normalises a multipart file name: NFC, at most 255
// bytes, no control characters or path separators.
func fileName(s string) (string, error) {
	if s == "" {
		return "file", nil
	}
	if !utf8.ValidString(s) {
		return "", fail(http.StatusBadRequest, "bad_request", "the file name is not UTF-8")
	}
	s = norm.NFC.String(s)
	if len(s) > 255 || strings.ContainsAny(s, `/\`) || strings.ContainsFunc(s, unicode.IsControl) || s == "." || s == ".." {
		return "", fail(http.StatusBadRequest, "bad_request", "the file name must be at most 255 bytes, without control characters or path separators")
	}
	return s, nil
}

func (a *API) upload(w http.ResponseWriter, r *http.Request, ar area) error {
	if !ar.write {
		return errReadOnlyRole
	}
	limit := a.cfg.MaxFile
	if ar.scope == public {
		if a.cfg.NoPublicUploads {
			return fail(http.StatusForbidden, "public_uploads_disabled", "anonymous uploads are switched off on this server")
		}
		if ok, wait := a.limit.Allow(web.ClientAddr(r), a.Now()); !ok {
			e := fail(http.StatusTooManyRequests, "rate_limited", "too many anonymous uploads from this address; retry later")
			e.retry = wait
			return e
		}
		limit = a.cfg.MaxPublicFile
	}
	who := web.Anonymous(r)
	if ar.scope != public {
		who = web.Identity("storageapi", ar.userID)
	}
	release, err := a.Limits.Uploads.Acquire(r.Context(), who)
	if err != nil {
		return err
	}
	defer release()
	up, err := web.ReadForm(r, a.Engine, web.Form{Limit: limit, Name: fileName})
	var fe *web.FormError
	if errors.As(err, &fe) {
		return fail(http.StatusBadRequest, "bad_request", "%s", fe.Reason)
	}
	if err != nil {
		return err
	}
	defer up.Close()
	var out File
	err = a.Engine.Update(r.Context(), func(tx *engine.Tx) error {
		var err error
		out, err = a.storeFile(tx, r, ar, up.Name, up.ContentType, up.Upload)
		return err
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", a.BaseURL(r)+"/storage/"+string(ar.scope)+"/files/"+out.FileID)
	web.JSON(w, http.StatusCreated, out)
	return nil
}

// storeFile writes, in tx, the file an upload of up named name makes in
// ar, and returns its answer (with a public file's delete token, shown
// this once): a plain upload's, and a resumable one's once finished.
func (a *API) storeFile(tx *engine.Tx, r *http.Request, ar area, name, ctype string, up *engine.Upload) (File, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return File{}, err
	}
	f := stored{Name: name, UploadedBy: ar.userID}
	var deleteToken string
	if ar.scope == public {
		deleteToken = auth.NewSecret()
		f.DeleteHash = hashToken(deleteToken)
		f.PublicLink = publink.NewID()
	}
	k := fileKey(ar, id.String())
	if err := a.stillThere(tx, ar); err != nil {
		return File{}, err
	}
	meta, _ := json.Marshal(f)
	rec, err := tx.Put(k, engine.Record{ContentType: ctype, Meta: meta}, up)
	if err != nil {
		return File{}, err
	}
	if f.PublicLink != "" {
		if err := publink.Put(tx, f.PublicLink, k, time.Time{}); err != nil {
			return File{}, err
		}
	}
	out := a.render(r, ar, rec, f)
	out.DeleteToken = deleteToken
	return out, nil
}

// stillThere checks, inside the upload's transaction, that the user (and
// membership) the token named still exist, so that an upload racing a
// deletion of its owner cannot leave files in an area no one owns.
func (a *API) stillThere(tx *engine.Tx, ar area) error {
	switch ar.scope {
	case user:
		if _, err := tx.Get(key(usersNS, "", ar.userID)); err != nil {
			return errBadToken
		}
	case org:
		if _, err := tx.Get(key(membersNS, ar.userID, strings.TrimPrefix(ar.tenant, "o/"))); err != nil {
			return errBadToken
		}
	}
	return nil
}

func (a *API) download(w http.ResponseWriter, r *http.Request, ar area) error {
	rec, f, err := a.load(ar, r.PathValue("id"))
	if err != nil {
		return err
	}
	release, err := a.Limits.Downloads.Acquire(r.Context(), web.Address(r))
	if err != nil {
		return err
	}
	defer release()
	caching := blobhttp.Private()
	if ar.scope == public {
		caching = blobhttp.Public(a.PublicMaxAge)
	}
	return blobhttp.Serve(w, r, a.Engine, rec, f.Name, caching, a.Variants)
}

func (a *API) info(w http.ResponseWriter, r *http.Request, ar area) error {
	rec, f, err := a.load(ar, r.PathValue("id"))
	if err != nil {
		return err
	}
	web.JSON(w, http.StatusOK, a.render(r, ar, rec, f))
	return nil
}

// getURL answers a file's public URL; a user's or organization's file has
// one only once it was shared (POST).
func (a *API) getURL(w http.ResponseWriter, r *http.Request, ar area) error {
	rec, f, err := a.load(ar, r.PathValue("id"))
	if err != nil {
		return err
	}
	if f.PublicLink == "" {
		return fail(http.StatusNotFound, "not_shared", "the file has no public URL; POST to this URL to make one")
	}
	web.JSON(w, http.StatusOK, map[string]string{"url": a.render(r, ar, rec, f).URL})
	return nil
}

// share makes a public URL for a user's or organization's file (the same
// one again if it has one), or with ?expiresIn= a signed one.
func (a *API) share(w http.ResponseWriter, r *http.Request, ar area) error {
	if r.URL.Query().Has("expiresIn") {
		return a.signURL(w, r, ar)
	}
	return a.setLink(w, r, r.PathValue("id"), ar, true)
}

// unshare removes a file's public URL; the file stays.
func (a *API) unshare(w http.ResponseWriter, r *http.Request, ar area) error {
	return a.setLink(w, r, r.PathValue("id"), ar, false)
}

func (a *API) setLink(w http.ResponseWriter, r *http.Request, id string, ar area, on bool) error {
	if !ar.write {
		return errReadOnlyRole
	}
	if !validID(id) {
		return errNotFound
	}
	var rec engine.Record
	var f stored
	err := a.Engine.Update(r.Context(), func(tx *engine.Tx) error {
		cur, err := tx.Get(fileKey(ar, id))
		if err != nil {
			return err
		}
		if f, err = decodeFile(cur); err != nil {
			return err
		}
		rec = cur
		switch {
		case on && f.PublicLink == "":
			f.PublicLink = publink.NewID()
			if err := publink.Put(tx, f.PublicLink, cur.Key, time.Time{}); err != nil {
				return err
			}
		case !on && f.PublicLink != "":
			if err := publink.Delete(tx, f.PublicLink); err != nil {
				return err
			}
			f.PublicLink = ""
		default:
			return nil
		}
		meta, _ := json.Marshal(f)
		cur.Meta = meta
		_, err = tx.Put(cur.Key, cur, nil)
		return err
	})
	if err != nil {
		return err
	}
	if !on {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	web.JSON(w, http.StatusOK, map[string]string{"url": a.render(r, ar, rec, f).URL})
	return nil
}

func (a *API) delete(w http.ResponseWriter, r *http.Request, ar area) error {
	if !ar.write {
		return errReadOnlyRole
	}
	id := r.PathValue("id")
	if !validID(id) {
		return errNotFound
	}
	err := a.Engine.Update(r.Context(), func(tx *engine.Tx) error {
		cur, err := tx.Get(fileKey(ar, id))
		if err != nil {
			return err
		}
		if ar.scope == public {
			f, err := decodeFile(cur)
			if err != nil {
				return err
			}
			if !auth.Equal(hashToken(r.Header.Get("X-Delete-Token")), f.DeleteHash) {
				return fail(http.StatusForbidden, "forbidden", "deleting a public file takes the X-Delete-Token its upload returned")
			}
		}
		return deleteFile(tx, cur)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// Listing bounds.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// list is GET on a user's or organization's files: {"files":[…]} in
// upload order, a page at a time (?limit, ?after=<fileId>); "next" is the
// after of the next page while there is one.
func (a *API) list(w http.ResponseWriter, r *http.Request, ar area) error {
	q := r.URL.Query()
	limit := DefaultListLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxListLimit {
			return fail(http.StatusBadRequest, "bad_request", "limit must be a number from 1 to %d", MaxListLimit)
		}
		limit = n
	}
	after := q.Get("after")
	if after != "" && !validID(after) {
		return fail(http.StatusBadRequest, "bad_request", "after must be a file ID")
	}
	recs, more, err := web.Page(a.Engine, filesNS, ar.tenant, "", after, limit)
	if err != nil {
		return err
	}
	files := []File{}
	for _, rec := range recs {
		f, err := decodeFile(rec)
		if err != nil {
			return err
		}
		files = append(files, a.render(r, ar, rec, f))
	}
	out := map[string]any{"files": files}
	if more {
		next := files[len(files)-1].FileID
		out["next"] = next
		web.SetNext(w, r.URL.Path, url.Values{"after": {next}, "limit": {strconv.Itoa(limit)}})
	}
	web.JSON(w, http.StatusOK, out)
	return nil
}
