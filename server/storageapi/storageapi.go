// Package storageapi serves the Storage API under /storage/: files in
// three modes. Public files need no token; a user's files are seen only
// with that user's token; an organization's files are shared by its
// members through organization tokens (admin and manager upload, delete
// and share; member reads and lists). Users, organizations and roles are
// kept in the store (IAM); POST /storage/auth/login exchanges an email
// and password for a user token and one token per organization.
//
// The endpoints are described by the OpenAPI 3 document served at
// /storage/openapi.json (openapi.json here). Errors are
// {"error":"<code>","message":"<text>"}. An API is safe for concurrent use.
package storageapi

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"
	"golang.org/x/text/unicode/norm"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/blobhttp"
	"github.com/cairnstore/cairn/server/internal/publink"
	"github.com/cairnstore/cairn/server/internal/web"
)

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API.
func OpenAPI() []byte { return openAPI }

// Config configures the API. Engine is required.
type Config struct {
	Engine *engine.Engine
	Logger *slog.Logger
	Now    func() time.Time
	// PublicURL is the base of absolute URLs; default the request's host.
	PublicURL string
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
	// Limits are what one client may take (upload and download slots,
	// failed sign-ins); the server passes those it shares between its
	// APIs, and any missing take their defaults.
	Limits web.Limits
}

// API is the Storage API over one engine.
type API struct {
	cfg       Config
	e         *engine.Engine
	iam       *IAM
	passwords *auth.Passwords
	limit     *web.Rate
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
	return &API{
		cfg: cfg, e: cfg.Engine, iam: NewIAM(cfg.Engine),
		passwords: auth.NewPasswords(time.Minute, cfg.Now),
		limit:     web.NewRate(cfg.PublicRate, max(1, int(cfg.PublicRate))),
	}
}

// Routes are the API's endpoints.
func (a *API) Routes() []web.Route {
	rs := []web.Route{
		{Method: "POST", Path: "/storage/auth/login", Handle: a.login},
		{Method: "GET", Path: "/storage/openapi.json", Handle: web.Document(openAPI)},
	}
	for _, s := range []scope{public, user, org} {
		base := "/storage/" + string(s) + "/files"
		maxBody := a.cfg.MaxFile
		if s == public {
			maxBody = a.cfg.MaxPublicFile
		}
		rs = append(rs,
			web.Route{Method: "POST", Path: base, Handle: a.with(s, a.upload), MaxBody: maxBody + 1<<20},
			web.Route{Method: "GET", Path: base + "/:id", Handle: a.with(s, a.download)},
			web.Route{Method: "HEAD", Path: base + "/:id", Handle: a.with(s, a.download)},
			web.Route{Method: "GET", Path: base + "/:id/info", Handle: a.with(s, a.info)},
			web.Route{Method: "GET", Path: base + "/:id/url", Handle: a.with(s, a.getURL)},
			web.Route{Method: "DELETE", Path: base + "/:id", Handle: a.with(s, a.delete)},
		)
		if s != public {
			rs = append(rs,
				web.Route{Method: "GET", Path: base, Handle: a.with(s, a.list)},
				web.Route{Method: "POST", Path: base + "/:id/url", Handle: a.with(s, a.share)},
				web.Route{Method: "DELETE", Path: base + "/:id/url", Handle: a.with(s, a.unshare)},
			)
		}
	}
	return rs
}

// --- errors ---

type apiError struct {
	status  int
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Message }

func fail(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

var (
	errNotFound      = fail(http.StatusNotFound, "not_found", "no such file")
	errNoToken       = fail(http.StatusUnauthorized, "unauthorized", "a bearer token is required")
	errBadToken      = fail(http.StatusUnauthorized, "invalid_token", "the token is invalid or expired")
	errLogin         = fail(http.StatusUnauthorized, "invalid_credentials", "wrong email or password")
	errTooManyLogins = fail(http.StatusTooManyRequests, "rate_limited", "too many failed sign-ins from this address or for this user; retry later")
	errReadOnlyRole  = fail(http.StatusForbidden, "forbidden", "an organization member may read and list; uploading, deleting and sharing take a manager or admin")
)

func (a *API) fail(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		switch s := web.Status(err); s {
		case http.StatusRequestEntityTooLarge:
			ae = fail(s, "too_large", "the file is larger than the limit")
		case http.StatusNotFound:
			ae = errNotFound
		case http.StatusInsufficientStorage:
			ae = fail(s, "insufficient_storage", "the store is full")
		case http.StatusTooManyRequests:
			ae = fail(s, "rate_limited", "too many uploads or downloads at once from this client; retry later")
		case http.StatusServiceUnavailable:
			ae = fail(s, "unavailable", "the store is busy or read-only; retry later")
		case http.StatusRequestTimeout:
			ae = fail(s, "request_timeout", "the request body stalled or arrived too slowly")
		case http.StatusBadRequest:
			ae = fail(s, "bad_request", "the request body was cut off")
		default:
			a.cfg.Logger.Error("storage API request failed", "err", err)
			ae = fail(http.StatusInternalServerError, "internal", "internal error")
		}
	}
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cairn-storage"`)
	}
	web.JSON(w, ae.status, ae)
}

// --- tokens and areas ---

// scope is one of the three modes, and the path segment naming it.
type scope string

const (
	public scope = "public"
	user   scope = "user"
	org    scope = "org"
)

// name is the scope as File.Scope reports it.
func (s scope) name() string {
	if s == org {
		return "organization"
	}
	return string(s)
}

const (
	tokenUser = "user"
	tokenOrg  = "organization"
	audience  = "cairn-storage"
)

type claims struct {
	jwt.RegisteredClaims
	Type string `json:"token_type"`
	Org  string `json:"org,omitempty"`
}

func userArea(id string) string { return "u/" + id }
func orgArea(id string) string  { return "o/" + id }

// area is where a request acts, and what its token may do there.
type area struct {
	scope  scope
	tenant string // the files' tenant in the store
	userID string // who acts ("" in public mode)
	write  bool
}

// with resolves the request's area from its token before calling h.
func (a *API) with(s scope, h func(http.ResponseWriter, *http.Request, httprouter.Params, area)) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		ar, err := a.area(r, s)
		if err != nil {
			a.fail(w, err)
			return
		}
		h(w, r, ps, ar)
	}
}

func (a *API) area(r *http.Request, s scope) (area, error) {
	if s == public {
		return area{scope: public, tenant: "public", write: true}, nil
	}
	tok, err := auth.Bearer(r.Header.Get("Authorization"))
	if errors.Is(err, auth.ErrNoCredentials) {
		return area{}, errNoToken
	}
	if err != nil {
		return area{}, errBadToken
	}
	key, err := auth.StoreKey(r.Context(), a.e, keyNS)
	if err != nil {
		return area{}, err
	}
	var c claims
	if err := auth.VerifyHS256Claims(tok, &c, func(string) ([]byte, bool) { return key, true }, a.cfg.Now); err != nil {
		return area{}, errBadToken
	}
	if !slices.Contains(c.Audience, audience) {
		return area{}, errBadToken
	}
	u, err := a.iam.User(c.Subject)
	if errors.Is(err, ErrNoSuch) || err == nil && c.IssuedAt != nil && c.IssuedAt.Before(u.Changed) {
		return area{}, errBadToken // deleted, or the password changed since
	}
	if err != nil {
		return area{}, err
	}
	switch {
	case s == user && c.Type == tokenUser:
		return area{scope: user, tenant: userArea(u.ID), userID: u.ID, write: true}, nil
	case s == org && c.Type == tokenOrg:
		role, err := a.iam.Role(u.ID, c.Org)
		if errors.Is(err, ErrNoSuch) {
			return area{}, errBadToken // no longer a member
		}
		if err != nil {
			return area{}, err
		}
		return area{scope: org, tenant: orgArea(c.Org), userID: u.ID, write: role.canWrite()}, nil
	case c.Type == tokenUser || c.Type == tokenOrg:
		return area{}, fail(http.StatusForbidden, "wrong_token_type", "the %s area takes %s token, not %s token", s.name(), article(s), c.Type)
	}
	return area{}, errBadToken
}

func article(s scope) string {
	if s == org {
		return "an organization"
	}
	return "a user"
}

func (a *API) sign(ctx context.Context, sub, typ, org string, now time.Time) (string, time.Time, error) {
	key, err := auth.StoreKey(ctx, a.e, keyNS)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := now.Add(a.cfg.TokenTTL)
	tok, err := auth.SignHS256Claims(&claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: sub, Audience: jwt.ClaimStrings{audience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
		},
		Type: typ, Org: org,
	}, key)
	return tok, exp, err
}

type loginOrg struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// login is POST /storage/auth/login: {"email","password"} → a user token
// and a token for each of the user's organizations.
func (a *API) login(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var in struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := web.DecodeJSON(r.Body, &in); err != nil {
		if web.Status(err) != http.StatusRequestEntityTooLarge {
			err = fail(http.StatusBadRequest, "bad_request", "the body must be JSON {\"email\",\"password\"}")
		}
		a.fail(w, err)
		return
	}
	now := a.cfg.Now()
	addr, who := web.ClientAddr(r), "storageapi:"+strings.ToLower(in.Email)
	if ok, wait := a.cfg.Limits.Logins.Allow(addr, who, now); !ok {
		w.Header().Set("Retry-After", web.RetryAfter(wait))
		a.fail(w, errTooManyLogins)
		return
	}
	u, err := a.iam.UserByEmail(in.Email)
	if err != nil && !errors.Is(err, ErrNoSuch) {
		a.fail(w, err)
		return
	}
	// An unknown email costs a hash comparison too.
	if !a.passwords.Verify(u.ID, in.Password, u.Hash, err == nil) {
		a.cfg.Limits.Logins.Failed(addr, who, now)
		a.fail(w, errLogin)
		return
	}
	a.cfg.Limits.Logins.Succeeded(addr, who, now)
	tok, exp, err := a.sign(r.Context(), u.ID, tokenUser, "", now)
	if err != nil {
		a.fail(w, err)
		return
	}
	ms, err := a.iam.Memberships(u.ID)
	if err != nil {
		a.fail(w, err)
		return
	}
	orgs := []loginOrg{}
	for _, m := range ms {
		otok, _, err := a.sign(r.Context(), u.ID, tokenOrg, m.OrgID, now)
		if err != nil {
			a.fail(w, err)
			return
		}
		orgs = append(orgs, loginOrg{ID: m.OrgID, Name: m.Org, Role: m.Role, Token: otok, ExpiresAt: exp.UTC()})
	}
	type loginUser struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	}
	w.Header().Set("Cache-Control", "no-store")
	web.JSON(w, http.StatusOK, struct {
		User          loginUser  `json:"user"`
		Token         string     `json:"token"`
		ExpiresAt     time.Time  `json:"expiresAt"`
		Organizations []loginOrg `json:"organizations"`
	}{loginUser{u.ID, u.Email}, tok, exp.UTC(), orgs})
}

// --- files ---

const filesNS = "storageapi.files"

// stored is a file record's metadata.
type stored struct {
	Name       string `json:"name"`
	UploadedBy string `json:"uploadedBy,omitempty"`
	PublicLink string `json:"publicLink,omitempty"`
	// DeleteHash is the SHA-256 of a public file's delete token, which
	// is shown once, at upload, and kept only as this hash.
	DeleteHash string `json:"deleteHash,omitempty"`
}

func decodeFile(rec engine.Record) (stored, error) {
	var f stored
	if err := json.Unmarshal(rec.Meta, &f); err != nil {
		return f, fmt.Errorf("%w: file %s: %w", engine.ErrCorrupt, rec.Key.Name, err)
	}
	return f, nil
}

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
		out.URL = a.base(r) + publink.Path(f.PublicLink, f.Name)
	}
	return out
}

func (a *API) base(r *http.Request) string {
	if a.cfg.PublicURL != "" {
		return strings.TrimRight(a.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
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
	rec, err := a.e.GetRecord(fileKey(ar, id))
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

func (a *API) upload(w http.ResponseWriter, r *http.Request, _ httprouter.Params, ar area) {
	if !ar.write {
		a.fail(w, errReadOnlyRole)
		return
	}
	limit := a.cfg.MaxFile
	if ar.scope == public {
		if a.cfg.NoPublicUploads {
			a.fail(w, fail(http.StatusForbidden, "public_uploads_disabled", "anonymous uploads are switched off on this server"))
			return
		}
		if ok, wait := a.limit.Allow(web.ClientAddr(r), a.cfg.Now()); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			a.fail(w, fail(http.StatusTooManyRequests, "rate_limited", "too many anonymous uploads from this address; retry later"))
			return
		}
		limit = a.cfg.MaxPublicFile
	}
	who := web.Anonymous(r)
	if ar.scope != public {
		who = web.Identity("storageapi", ar.userID)
	}
	release, err := a.cfg.Limits.Uploads.Acquire(r.Context(), who)
	if err != nil {
		a.fail(w, err)
		return
	}
	defer release()
	up, name, err := a.readFile(r, limit)
	if err != nil {
		a.fail(w, err)
		return
	}
	defer up.Close()
	id, err := uuid.NewV7()
	if err != nil {
		a.fail(w, err)
		return
	}
	f := stored{Name: name, UploadedBy: ar.userID}
	var deleteToken string
	if ar.scope == public {
		deleteToken = auth.NewSecret()
		f.DeleteHash = hashToken(deleteToken)
		f.PublicLink = publink.NewID()
	}
	k := fileKey(ar, id.String())
	var rec engine.Record
	err = a.e.Update(r.Context(), func(tx *engine.Tx) error {
		if err := a.stillThere(tx, ar); err != nil {
			return err
		}
		meta, _ := json.Marshal(f)
		var err error
		if rec, err = tx.Put(k, engine.Record{ContentType: up.ContentType, Meta: meta}, up.Upload); err != nil {
			return err
		}
		if f.PublicLink != "" {
			return publink.Put(tx, f.PublicLink, k, time.Time{})
		}
		return nil
	})
	if err != nil {
		a.fail(w, err)
		return
	}
	out := a.render(r, ar, rec, f)
	out.DeleteToken = deleteToken
	w.Header().Set("Location", a.base(r)+"/storage/"+string(ar.scope)+"/files/"+out.FileID)
	web.JSON(w, http.StatusCreated, out)
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

type upload struct {
	*engine.Upload
	ContentType string
}

// readFile streams the multipart body's `file` part into the store; other
// parts are skipped.
func (a *API) readFile(r *http.Request, limit int64) (*upload, string, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return nil, "", fail(http.StatusBadRequest, "bad_request", "the body must be multipart/form-data with a part named file")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, "", fail(http.StatusBadRequest, "bad_request", "bad multipart body: %v", err)
	}
	var up *upload
	var name string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err == nil && p.FormName() == "file" && up != nil {
			err = fail(http.StatusBadRequest, "bad_request", "more than one part named file")
		}
		if err == nil && p.FormName() == "file" {
			name, err = fileName(p.FileName())
			var ctype string
			var rd io.Reader
			if err == nil {
				ctype, rd, err = web.Content(p.Header.Get("Content-Type"), web.LimitReader(p, limit))
			}
			var eu *engine.Upload
			if err == nil {
				eu, err = a.e.Upload(r.Context(), rd)
			}
			if err == nil {
				up = &upload{Upload: eu, ContentType: ctype}
			}
		} else if err == nil {
			_, err = io.Copy(io.Discard, io.LimitReader(p, 1<<20))
		}
		if err != nil {
			if up != nil {
				up.Close()
			}
			var ae *apiError
			if errors.As(err, &ae) || web.Status(err) != http.StatusInternalServerError && web.Status(err) != http.StatusBadRequest {
				return nil, "", err
			}
			return nil, "", fail(http.StatusBadRequest, "bad_request", "bad multipart body: %v", err)
		}
	}
	if up == nil {
		return nil, "", fail(http.StatusBadRequest, "bad_request", "no part named file")
	}
	return up, name, nil
}

func (a *API) download(w http.ResponseWriter, r *http.Request, ps httprouter.Params, ar area) {
	rec, f, err := a.load(ar, ps.ByName("id"))
	var release func()
	if err == nil {
		release, err = a.cfg.Limits.Downloads.Acquire(r.Context(), web.Address(r))
	}
	if err == nil {
		err = blobhttp.Serve(w, r, a.e, rec, f.Name, ar.scope == public)
		release()
	}
	if err != nil {
		a.fail(w, err)
	}
}

func (a *API) info(w http.ResponseWriter, r *http.Request, ps httprouter.Params, ar area) {
	rec, f, err := a.load(ar, ps.ByName("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	web.JSON(w, http.StatusOK, a.render(r, ar, rec, f))
}

// getURL answers a file's public URL; a user's or organization's file has
// one only once it was shared (POST).
func (a *API) getURL(w http.ResponseWriter, r *http.Request, ps httprouter.Params, ar area) {
	rec, f, err := a.load(ar, ps.ByName("id"))
	if err != nil {
		a.fail(w, err)
		return
	}
	if f.PublicLink == "" {
		a.fail(w, fail(http.StatusNotFound, "not_shared", "the file has no public URL; POST to this URL to make one"))
		return
	}
	web.JSON(w, http.StatusOK, map[string]string{"url": a.render(r, ar, rec, f).URL})
}

// share makes a public URL for a user's or organization's file (the same
// one again if it has one).
func (a *API) share(w http.ResponseWriter, r *http.Request, ps httprouter.Params, ar area) {
	a.setLink(w, r, ps.ByName("id"), ar, true)
}

// unshare removes a file's public URL; the file stays.
func (a *API) unshare(w http.ResponseWriter, r *http.Request, ps httprouter.Params, ar area) {
	a.setLink(w, r, ps.ByName("id"), ar, false)
}

func (a *API) setLink(w http.ResponseWriter, r *http.Request, id string, ar area, on bool) {
	if !ar.write {
		a.fail(w, errReadOnlyRole)
		return
	}
	if !validID(id) {
		a.fail(w, errNotFound)
		return
	}
	var rec engine.Record
	var f stored
	err := a.e.Update(r.Context(), func(tx *engine.Tx) error {
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
		a.fail(w, err)
		return
	}
	if !on {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	web.JSON(w, http.StatusOK, map[string]string{"url": a.render(r, ar, rec, f).URL})
}

func (a *API) delete(w http.ResponseWriter, r *http.Request, ps httprouter.Params, ar area) {
	if !ar.write {
		a.fail(w, errReadOnlyRole)
		return
	}
	id := ps.ByName("id")
	if !validID(id) {
		a.fail(w, errNotFound)
		return
	}
	err := a.e.Update(r.Context(), func(tx *engine.Tx) error {
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
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
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
func (a *API) list(w http.ResponseWriter, r *http.Request, _ httprouter.Params, ar area) {
	q := r.URL.Query()
	limit := DefaultListLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxListLimit {
			a.fail(w, fail(http.StatusBadRequest, "bad_request", "limit must be a number from 1 to %d", MaxListLimit))
			return
		}
		limit = n
	}
	after := q.Get("after")
	if after != "" && !validID(after) {
		a.fail(w, fail(http.StatusBadRequest, "bad_request", "after must be a file ID"))
		return
	}
	files := []File{}
	next := ""
	for rec, err := range a.e.Records(filesNS, ar.tenant, "", after) {
		if err != nil {
			a.fail(w, err)
			return
		}
		if rec.Key.Name == after {
			continue
		}
		if len(files) == limit {
			next = files[len(files)-1].FileID
			break
		}
		f, err := decodeFile(rec)
		if err != nil {
			a.fail(w, err)
			return
		}
		files = append(files, a.render(r, ar, rec, f))
	}
	out := map[string]any{"files": files}
	if next != "" {
		out["next"] = next
		nextURL := url.Values{"after": {next}, "limit": {strconv.Itoa(limit)}}
		w.Header().Set("Link", "<"+r.URL.Path+"?"+nextURL.Encode()+`>; rel="next"`)
	}
	web.JSON(w, http.StatusOK, out)
}
