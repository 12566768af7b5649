// Package mediaservice serves the tenant media service at
// /media/{tenant}/assets: BLOB assets (multipart upload, stored here) and
// LINK assets (a URL, never fetched), with optimistic locking on
// metadata.version, a q query language (package query), sort and paging,
// and OAuth2 client-credentials tokens from POST /oauth/token carrying
// the scopes media.asset_manage and media.asset_read.
//
// Errors are {code,status,message,details}; a bad token is the
// gateway-style {"fault":{…}}. An API is safe for concurrent use.
package mediaservice

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/julienschmidt/httprouter"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/blobhttp"
	"github.com/cairnstore/cairn/server/internal/publink"
	"github.com/cairnstore/cairn/server/internal/web"
	"github.com/cairnstore/cairn/server/mediaservice/query"
)

// Config configures the API. Engine is required.
type Config struct {
	Engine *engine.Engine
	Logger *slog.Logger
	Now    func() time.Time
	// PublicURL is the base of absolute URLs; default the request's host.
	PublicURL string
	// MaxFile bounds an uploaded file; default 10 MB, as documented.
	MaxFile int64
	// TokenTTL is an access token's lifetime; default one hour.
	TokenTTL time.Duration
	// QueryCost bounds the work one list request's q may do, in
	// query.Budget units (about a nanosecond of CPU each): past it, the
	// request is 400. Default 50,000,000.
	QueryCost int64
	// Limits are what one client may take (upload and download slots,
	// failed sign-ins); the server passes those it shares between its
	// APIs, and any missing take their defaults.
	Limits web.Limits
}

// API is the media service over one engine.
type API struct {
	cfg       Config
	e         *engine.Engine
	clients   *Clients
	passwords *auth.Passwords
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
		cfg.MaxFile = 10 << 20
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	if cfg.QueryCost <= 0 {
		cfg.QueryCost = 50_000_000
	}
	return &API{cfg: cfg, e: cfg.Engine, clients: NewClients(cfg.Engine), passwords: auth.NewPasswords(time.Minute, cfg.Now)}
}

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API, served at
// /openapi/mediaservice.json: the vendor's 2025-04 contract with its
// defects fixed and cairn's answers written in.
func OpenAPI() []byte { return openAPI }

// Routes are the API's endpoints.
func (a *API) Routes() []web.Route {
	upload := a.cfg.MaxFile + 1<<20 // the file and the multipart around it
	return []web.Route{
		{Method: "POST", Path: "/oauth/token", Handle: a.token},
		{Method: "POST", Path: "/media/:tenant/assets", Handle: a.create, MaxBody: upload},
		{Method: "GET", Path: "/media/:tenant/assets", Handle: a.list},
		{Method: "GET", Path: "/media/:tenant/assets/:assetId", Handle: a.retrieve},
		{Method: "PUT", Path: "/media/:tenant/assets/:assetId", Handle: a.update, MaxBody: upload},
		{Method: "DELETE", Path: "/media/:tenant/assets/:assetId", Handle: a.delete},
		{Method: "GET", Path: "/media/:tenant/assets/:assetId/download", Handle: a.download},
		{Method: "HEAD", Path: "/media/:tenant/assets/:assetId/download", Handle: a.download},
		{Method: "GET", Path: "/openapi/mediaservice.json", Handle: web.Document(openAPI)},
	}
}

// --- errors ---

type apiErr struct {
	Code    int      `json:"code"`
	Status  string   `json:"status"`
	Message string   `json:"message"`
	Details []string `json:"details,omitempty"`
}

func (e *apiErr) Error() string { return e.Message }

func badRequest(msg string, details ...string) *apiErr {
	return &apiErr{Code: 400, Status: "Bad Request", Message: msg, Details: details}
}

var (
	errNotFound  = &apiErr{Code: 404, Status: "element_resource_non_existing", Message: "The asset with the requested code does not exist."}
	errConflict  = &apiErr{Code: 409, Status: "Conflict", Message: "Conflict"}
	errForbidden = &apiErr{Code: 403, Status: "Bad request", Message: "The access to the requested resource has been forbidden by the server..", Details: []string{"Missing required scopes"}}
	errTenant    = &apiErr{Code: 400, Status: "Bad request", Message: "Tenant in the header is not matching with the one provided in the URI.", Details: []string{"https://saas-ag.com/patterns/errortypes.html"}}
	errVersion   = &apiErr{Code: 400, Status: "Bad request", Message: "The document version has to be provided on update operations.", Details: []string{"https://saas-ag.com/patterns/errortypes.html"}}
	errTooLarge  = &apiErr{Code: 413, Status: "Request Entity Too Large", Message: "The part named [file] exceeds the maximum allowed content length."}
	errInternal  = &apiErr{Code: 500, Status: "internal_service_error", Message: "A server-side exception occurred that prevented the system from correctly returning the result.", Details: []string{"https://pattern.yaas.io/errortypes.html"}}
)

// errFault is a failed token check, answered in the gateway's shape.
type errFault struct{ faultstring, errorcode string }

func (e *errFault) Error() string { return e.faultstring }

func (a *API) fail(w http.ResponseWriter, err error) {
	var ae *apiErr
	var fe *errFault
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &fe):
		w.Header().Set("WWW-Authenticate", `Bearer realm="cairn"`)
		web.JSON(w, http.StatusUnauthorized, map[string]any{"fault": map[string]any{"faultstring": fe.faultstring, "detail": map[string]string{"errorcode": fe.errorcode}}})
		return
	case errors.As(err, &ae):
	case errors.As(err, &mbe), errors.Is(err, web.ErrTooLarge):
		ae = errTooLarge
	case errors.Is(err, engine.ErrNotFound):
		ae = errNotFound
	case errors.Is(err, engine.ErrExists):
		ae = &apiErr{Code: 409, Status: "Conflict", Message: "An asset with this id already exists."}
	default:
		switch s := web.Status(err); s {
		case http.StatusInsufficientStorage, http.StatusServiceUnavailable, http.StatusRequestTimeout, http.StatusBadRequest, http.StatusTooManyRequests:
			ae = &apiErr{Code: s, Status: http.StatusText(s), Message: http.StatusText(s)}
		default:
			a.cfg.Logger.Error("media service request failed", "err", err)
			ae = errInternal
		}
	}
	web.JSON(w, ae.Code, ae)
}

// --- tokens ---

// token is POST /oauth/token, client-credentials grant; the client
// authenticates with HTTP Basic or client_id/client_secret form fields.
func (a *API) token(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	oauthErr := func(code int, e, desc string) {
		w.Header().Set("Cache-Control", "no-store")
		web.JSON(w, code, map[string]string{"error": e, "error_description": desc})
	}
	if err := r.ParseForm(); err != nil {
		oauthErr(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		oauthErr(400, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	id, secret, err := auth.BasicCredentials(r.Header.Get("Authorization"))
	if errors.Is(err, auth.ErrNoCredentials) {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	now := a.cfg.Now()
	addr, who := web.ClientAddr(r), "mediaservice:"+id
	if ok, wait := a.cfg.Limits.Logins.Allow(addr, who, now); !ok {
		w.Header().Set("Retry-After", web.RetryAfter(wait))
		oauthErr(http.StatusTooManyRequests, "temporarily_unavailable", "too many failed attempts from this address or for this client; retry later")
		return
	}
	cl, gerr := a.clients.Get(id)
	if !a.passwords.Verify(id, secret, cl.Hash, gerr == nil) {
		a.cfg.Limits.Logins.Failed(addr, who, now)
		w.Header().Set("WWW-Authenticate", `Basic realm="cairn"`)
		oauthErr(401, "invalid_client", "client authentication failed")
		return
	}
	a.cfg.Limits.Logins.Succeeded(addr, who, now)
	key, err := signingKey(r.Context(), a.e)
	if err != nil {
		a.fail(w, err)
		return
	}
	tok, err := auth.SignHS256Claims(&tokenClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: cl.ID, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(a.cfg.TokenTTL))},
		Gen:              cl.Gen,
	}, key)
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.JSON(w, http.StatusOK, map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int(a.cfg.TokenTTL.Seconds()),
		"scope": strings.Join(cl.Scopes, " "), "tenant": cl.Tenant,
	})
}

// tokenClaims are an access token's: the client's ID (sub) and its
// generation (Client.Gen).
type tokenClaims struct {
	jwt.RegisteredClaims
	Gen string `json:"gen,omitempty"`
}

// authorize checks the bearer token, the tenant and that the client has
// one of the scopes, and returns the client's ID. A path that names
// another tenant than the token's is answered otherTenant: each
// operation's own answer from its contract (the 400 "Ambiguous tenant"
// is documented for create and update only).
func (a *API) authorize(r *http.Request, tenant string, otherTenant error, scopes ...string) (string, error) {
	tok, err := auth.Bearer(r.Header.Get("Authorization"))
	if err != nil {
		return "", &errFault{"Invalid access token", "oauth.v2.InvalidAccessToken"}
	}
	key, err := signingKey(r.Context(), a.e)
	if err != nil {
		return "", err
	}
	var c tokenClaims
	err = auth.VerifyHS256Claims(tok, &c, func(string) ([]byte, bool) { return key, true }, a.cfg.Now)
	id := c.Subject
	if err != nil {
		if strings.Contains(err.Error(), "expired") {
			return "", &errFault{"Access Token expired", "keymanagement.service.access_token_expired"}
		}
		return "", &errFault{"Invalid access token", "oauth.v2.InvalidAccessToken"}
	}
	cl, err := a.clients.Get(id)
	if err != nil || !auth.Equal(cl.Gen, c.Gen) {
		// Deleted, or deleted and made again: either way not this token's.
		return "", &errFault{"Invalid access token", "oauth.v2.InvalidAccessToken"}
	}
	if cl.Tenant != tenant {
		return "", otherTenant
	}
	for _, s := range scopes {
		if slices.Contains(cl.Scopes, s) {
			return cl.ID, nil
		}
	}
	return "", errForbidden
}

// --- assets ---

// RefID links an asset to a resource.
type RefID struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// Details are a BLOB's file facts.
type Details struct {
	Filename string `json:"filename,omitempty"`
	MimeType string `json:"mimeType,omitempty"`
	Bytes    *int64 `json:"bytes,omitempty"`
	ETag     string `json:"etag,omitempty"`
}

// Metadata are an asset's version and times.
type Metadata struct {
	Version    int    `json:"version"`
	CreatedAt  string `json:"createdAt"`
	ModifiedAt string `json:"modifiedAt"`
}

// Asset is the documented asset representation.
type Asset struct {
	ID       string   `json:"id"`
	Type     string   `json:"type"`
	Access   string   `json:"access"`
	URL      string   `json:"url,omitempty"`
	RefIDs   []RefID  `json:"refIds"`
	Details  *Details `json:"details,omitempty"`
	Metadata Metadata `json:"metadata"`
	// Link is the public link of a PUBLIC BLOB (not rendered).
	Link string `json:"-"`
}

// stored is what the store keeps: the asset and its public link ID.
type stored struct {
	Asset
	PublicLink string `json:"publicLink,omitempty"`
}

const (
	namespace  = "mediaservice"
	byNS       = "mediaservice.by"
	createdNS  = "mediaservice.created"
	timeLayout = "2006-01-02T15:04:05.000Z07:00"
)

// indexedPaths are the q paths an exact term can look up by index.
var indexedPaths = []string{"refIds.id", "details.mimeType", "type", "access"}

func assetKey(tenant, id string) engine.Key {
	return engine.Key{Namespace: namespace, Tenant: tenant, Name: id}
}

func indexValues(as *Asset) map[string][]string {
	v := map[string][]string{"type": {as.Type}, "access": {as.Access}}
	for _, r := range as.RefIDs {
		v["refIds.id"] = append(v["refIds.id"], r.ID)
	}
	if as.Details != nil && as.Details.MimeType != "" {
		v["details.mimeType"] = []string{as.Details.MimeType}
	}
	return v
}

func byKey(tenant, path, value, id string) engine.Key {
	return engine.Key{Namespace: byNS, Tenant: tenant + "/" + path + "=" + value, Name: id}
}

func createdKey(tenant string, as *Asset) engine.Key {
	t, _ := time.Parse(time.RFC3339Nano, as.Metadata.CreatedAt)
	return engine.Key{Namespace: createdNS, Tenant: tenant, Name: fmt.Sprintf("%020d/%s", t.UnixNano(), as.ID)}
}

// putAsset writes an asset and its index records; up is its file (BLOB)
// or nil (LINK, or a BLOB update without a new file: keep).
func putAsset(tx *engine.Tx, tenant string, st *stored, old *stored, up *engine.Upload, keep engine.Record) error {
	if old != nil {
		for path, vals := range indexValues(&old.Asset) {
			for _, v := range vals {
				if err := tx.Delete(byKey(tenant, path, v, old.ID)); err != nil && !errors.Is(err, engine.ErrNotFound) {
					return err
				}
			}
		}
	} else if _, err := tx.Put(createdKey(tenant, &st.Asset), engine.Record{Meta: []byte(st.ID)}, nil); err != nil {
		return err
	}
	meta, _ := json.Marshal(st)
	ctype := ""
	if st.Details != nil {
		ctype = st.Details.MimeType
	}
	if _, err := tx.Put(assetKey(tenant, st.ID), engine.Record{Blob: keep.Blob, ContentType: ctype, Meta: meta}, up); err != nil {
		return err
	}
	for path, vals := range indexValues(&st.Asset) {
		for _, v := range vals {
			if _, err := tx.Put(byKey(tenant, path, v, st.ID), engine.Record{}, nil); err != nil {
				return err
			}
		}
	}
	if st.PublicLink != "" {
		return publink.Put(tx, st.PublicLink, assetKey(tenant, st.ID), time.Time{})
	}
	return nil
}

func decodeStored(rec engine.Record) (*stored, error) {
	var st stored
	if err := json.Unmarshal(rec.Meta, &st); err != nil {
		return nil, fmt.Errorf("%w: asset %s: %w", engine.ErrCorrupt, rec.Key.Name, err)
	}
	return &st, nil
}

func (a *API) base(r *http.Request) string {
	if a.cfg.PublicURL != "" {
		return strings.TrimSuffix(a.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// render fills the asset's url for this request.
func (a *API) render(r *http.Request, tenant string, st *stored) Asset {
	as := st.Asset
	if as.Type == "BLOB" {
		if st.PublicLink != "" {
			name := ""
			if as.Details != nil {
				name = as.Details.Filename
			}
			as.URL = a.base(r) + publink.Path(st.PublicLink, name)
		} else {
			as.URL = a.base(r) + "/media/" + tenant + "/assets/" + url.PathEscape(as.ID) + "/download"
		}
	}
	if as.RefIDs == nil {
		as.RefIDs = []RefID{}
	}
	return as
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// body is the create/update body (the JSON, or the multipart body part).
type body struct {
	ID       *string   `json:"id"`
	Type     string    `json:"type"`
	Access   string    `json:"access"`
	URL      string    `json:"url"`
	RefIDs   []RefID   `json:"refIds"`
	Details  *Details  `json:"details"`
	Metadata *Metadata `json:"metadata"`
}

// refTypes are the contract's RefId.type enum (2025-04). The rule that
// assets with these references must be PUBLIC, and the MODULE and custom
// types, belong to the vendor's later contract.
var refTypes = []string{"BRAND", "CATEGORY", "LABEL", "PRODUCT"}

func (b *body) validate(wantType string, create bool) error {
	if b.Type != wantType {
		return badRequest(fmt.Sprintf("type must be %s for this content type", wantType))
	}
	if b.Access != "PUBLIC" && b.Access != "PRIVATE" {
		return badRequest("access must be PUBLIC or PRIVATE")
	}
	if create && b.ID != nil && !idRE.MatchString(*b.ID) {
		return badRequest("id must be 1 to 64 letters, digits, '.', '_' or '-'")
	}
	if len(b.RefIDs) > 100 {
		return badRequest("at most 100 refIds")
	}
	for _, r := range b.RefIDs {
		if r.ID == "" || len(r.ID) > 256 || r.Type == "" {
			return badRequest("every refId needs an id and a type")
		}
		if !slices.Contains(refTypes, r.Type) {
			return badRequest("refIds type must be one of " + strings.Join(refTypes, ", "))
		}
	}
	if b.Details != nil && (len(b.Details.Filename) > 255 || len(b.Details.MimeType) > 255) {
		return badRequest("details.filename and details.mimeType are at most 255 characters")
	}
	if wantType == "LINK" {
		u, err := url.Parse(b.URL)
		if b.URL == "" || len(b.URL) > 2048 || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return badRequest("url must be an http or https URL of at most 2048 characters")
		}
	}
	return nil
}

// readRequest reads a create or update request: JSON (LINK) or multipart
// with a `body` part and a `file` part (BLOB), the file streamed into the
// store. It returns the body, the upload (BLOB) and the file part's name
// and declared type.
func (a *API) readRequest(r *http.Request, client string) (b body, up *engine.Upload, fname, ftype string, typ string, err error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/json":
		if err := web.DecodeJSON(r.Body, &b); err != nil {
			if web.Status(err) == http.StatusRequestEntityTooLarge {
				return b, nil, "", "", "", err
			}
			return b, nil, "", "", "", badRequest("the body is not a valid asset: " + err.Error())
		}
		return b, nil, "", "", "LINK", nil
	case "multipart/form-data":
	default:
		return b, nil, "", "", "", badRequest("Content-Type must be multipart/form-data (BLOB) or application/json (LINK)")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return b, nil, "", "", "", badRequest("bad multipart body: " + err.Error())
	}
	gotBody := false
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			if up != nil {
				up.Close()
			}
			if web.Status(err) == http.StatusRequestEntityTooLarge {
				return b, nil, "", "", "", err
			}
			return b, nil, "", "", "", badRequest("bad multipart body: " + err.Error())
		}
		switch p.FormName() {
		case "body":
			raw, err := io.ReadAll(io.LimitReader(p, web.DefaultMaxBody+1))
			if err == nil && len(raw) > web.DefaultMaxBody {
				err = errors.New("the body part is too large")
			}
			if err == nil {
				err = json.Unmarshal(raw, &b)
			}
			if err != nil {
				if up != nil {
					up.Close()
				}
				return b, nil, "", "", "", badRequest("the body part is not a valid asset: " + err.Error())
			}
			gotBody = true
		case "file":
			if up != nil {
				up.Close()
				return b, nil, "", "", "", badRequest("more than one file part")
			}
			fname, ftype = p.FileName(), p.Header.Get("Content-Type")
			if len(fname) > 255 || len(ftype) > 255 {
				return b, nil, "", "", "", badRequest("the file part's name and type are at most 255 characters")
			}
			release, err := a.cfg.Limits.Uploads.Acquire(r.Context(), web.Identity("mediaservice", client))
			if err != nil {
				return b, nil, "", "", "", err
			}
			ctype, rd, err := web.Content(ftype, web.LimitReader(p, a.cfg.MaxFile))
			if err == nil {
				ftype = ctype
				up, err = a.e.Upload(r.Context(), rd)
			}
			release()
			if err != nil {
				return b, nil, "", "", "", err
			}
		default:
			io.Copy(io.Discard, io.LimitReader(p, 1<<20))
		}
	}
	if !gotBody || up == nil {
		if up != nil {
			up.Close()
		}
		return b, nil, "", "", "", badRequest("a BLOB needs a body part and a file part")
	}
	return b, up, fname, ftype, "BLOB", nil
}

// newID returns a new asset id: 24 random hex digits, the shape of the
// documented examples.
func newID() string { return publink.NewID()[:24] }

func (a *API) create(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	tenant := ps.ByName("tenant")
	client, err := a.authorize(r, tenant, errTenant, ScopeManage)
	if err != nil {
		a.fail(w, err)
		return
	}
	b, up, fname, ftype, typ, err := a.readRequest(r, client)
	if up != nil {
		defer up.Close()
	}
	if err == nil {
		err = b.validate(typ, true)
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	now := a.cfg.Now().UTC().Format(timeLayout)
	st := &stored{Asset: Asset{ID: newID(), Type: typ, Access: b.Access, RefIDs: b.RefIDs, Metadata: Metadata{Version: 1, CreatedAt: now, ModifiedAt: now}}}
	if b.ID != nil {
		st.ID = *b.ID
	}
	if typ == "LINK" {
		st.URL = b.URL
	} else {
		st.Details = blobDetails(b.Details, fname, ftype, up)
		if b.Access == "PUBLIC" {
			st.PublicLink = publink.NewID()
		}
	}
	err = a.e.Update(r.Context(), func(tx *engine.Tx) error {
		if _, err := tx.Get(assetKey(tenant, st.ID)); err == nil {
			return engine.ErrExists
		}
		return putAsset(tx, tenant, st, nil, up, engine.Record{})
	})
	if err != nil {
		a.fail(w, err)
		return
	}
	web.JSON(w, http.StatusCreated, map[string]string{"id": st.ID})
}

func blobDetails(d *Details, fname, ftype string, up *engine.Upload) *Details {
	out := &Details{Filename: fname, MimeType: ftype}
	if d != nil {
		if d.Filename != "" {
			out.Filename = d.Filename
		}
		if d.MimeType != "" {
			out.MimeType = d.MimeType
		}
	}
	n := up.Size()
	out.Bytes = &n
	out.ETag = `"` + up.ID().String() + `"`
	return out
}

func (a *API) load(tenant, id string) (*stored, engine.Record, error) {
	rec, err := a.e.GetRecord(assetKey(tenant, id))
	if err != nil {
		return nil, rec, err
	}
	st, err := decodeStored(rec)
	return st, rec, err
}

func (a *API) retrieve(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	tenant := ps.ByName("tenant")
	if _, err := a.authorize(r, tenant, errNotFound, ScopeRead); err != nil {
		a.fail(w, err)
		return
	}
	st, _, err := a.load(tenant, ps.ByName("assetId"))
	if err != nil {
		a.fail(w, err)
		return
	}
	web.JSON(w, http.StatusOK, a.render(r, tenant, st))
}

func (a *API) update(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	tenant, id := ps.ByName("tenant"), ps.ByName("assetId")
	client, err := a.authorize(r, tenant, errTenant, ScopeManage)
	if err != nil {
		a.fail(w, err)
		return
	}
	b, up, fname, ftype, typ, err := a.readRequest(r, client)
	if up != nil {
		defer up.Close()
	}
	if err == nil {
		err = b.validate(typ, false)
	}
	if err == nil && (b.Metadata == nil || b.Metadata.Version < 1) {
		err = errVersion
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	err = a.e.Update(r.Context(), func(tx *engine.Tx) error {
		cur, err := tx.Get(assetKey(tenant, id))
		if err != nil {
			return err
		}
		old, err := decodeStored(cur)
		if err != nil {
			return err
		}
		if old.Type != typ || old.Access != b.Access {
			return badRequest("type and access are immutable")
		}
		if old.Metadata.Version != b.Metadata.Version {
			return errConflict
		}
		st := *old
		st.RefIDs = b.RefIDs
		st.Metadata.Version++
		st.Metadata.ModifiedAt = a.cfg.Now().UTC().Format(timeLayout)
		if typ == "LINK" {
			st.URL = b.URL
		} else {
			st.Details = blobDetails(b.Details, fname, ftype, up)
		}
		return putAsset(tx, tenant, &st, old, up, cur)
	})
	if err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) delete(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	tenant, id := ps.ByName("tenant"), ps.ByName("assetId")
	if _, err := a.authorize(r, tenant, errNotFound, ScopeManage); err != nil {
		a.fail(w, err)
		return
	}
	err := a.e.Update(r.Context(), func(tx *engine.Tx) error {
		cur, err := tx.Get(assetKey(tenant, id))
		if err != nil {
			return err
		}
		st, err := decodeStored(cur)
		if err != nil {
			return err
		}
		for path, vals := range indexValues(&st.Asset) {
			for _, v := range vals {
				if err := tx.Delete(byKey(tenant, path, v, id)); err != nil && !errors.Is(err, engine.ErrNotFound) {
					return err
				}
			}
		}
		if err := tx.Delete(createdKey(tenant, &st.Asset)); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return err
		}
		if st.PublicLink != "" {
			if err := publink.Delete(tx, st.PublicLink); err != nil {
				return err
			}
		}
		return tx.Delete(assetKey(tenant, id))
	})
	if err != nil {
		a.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) download(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	tenant := ps.ByName("tenant")
	if _, err := a.authorize(r, tenant, errNotFound, ScopeRead); err != nil {
		a.fail(w, err)
		return
	}
	st, rec, err := a.load(tenant, ps.ByName("assetId"))
	if err != nil {
		a.fail(w, err)
		return
	}
	if st.Type == "LINK" || st.PublicLink != "" {
		http.Redirect(w, r, a.render(r, tenant, st).URL, http.StatusMovedPermanently)
		return
	}
	name := ""
	if st.Details != nil {
		name = st.Details.Filename
	}
	release, err := a.cfg.Limits.Downloads.Acquire(r.Context(), web.Address(r))
	if err == nil {
		err = blobhttp.Serve(w, r, a.e, rec, name, false) // a PRIVATE BLOB (a PUBLIC one was redirected)
		release()
	}
	if err != nil {
		a.fail(w, err)
	}
}

// --- listing ---

// MaxPageNumber bounds pageNumber, so that pageNumber times pageSize
// (at most 10^10) never overflows.
const MaxPageNumber = 1_000_000

func (a *API) list(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	tenant := ps.ByName("tenant")
	// Another tenant's list is 403, a status the contract lists for it:
	// the token does not reach that tenant, whether it exists or not.
	if _, err := a.authorize(r, tenant, errForbidden, ScopeRead, ScopeManage); err != nil {
		a.fail(w, err)
		return
	}
	v := r.URL.Query()
	page, size := 1, 60
	var err error
	if s := v.Get("pageNumber"); s != "" {
		if page, err = strconv.Atoi(s); err != nil || page < 1 || page > MaxPageNumber {
			a.fail(w, badRequest(fmt.Sprintf("pageNumber must be a number from 1 to %d", MaxPageNumber)))
			return
		}
	}
	if s := v.Get("pageSize"); s != "" {
		if size, err = strconv.Atoi(s); err != nil || size < 1 || size > 10000 {
			a.fail(w, badRequest("pageSize must be a number from 1 to 10000"))
			return
		}
	}
	q, err := query.Parse(v.Get("q"))
	if err != nil {
		a.fail(w, badRequest(err.Error()))
		return
	}
	sorts, err := parseSort(v.Get("sort"))
	if err != nil {
		a.fail(w, err)
		return
	}
	wantTotal := web.HasToken(r.Header.Get("X-Total-Count"), "true")
	docs, total, err := a.matching(r.Context(), tenant, q, sorts != nil, wantTotal, page*size)
	if err != nil {
		a.fail(w, err)
		return
	}
	sortDocs(docs, sorts)
	if wantTotal {
		w.Header().Set("X-Total-Count", strconv.Itoa(total))
	}
	out := []Asset{}
	for i := (page - 1) * size; i < len(docs) && len(out) < size; i++ {
		out = append(out, a.render(r, tenant, docs[i].st))
	}
	web.JSON(w, http.StatusOK, out)
}

type doc struct {
	st  *stored
	obj map[string]any
}

// candidates returns the ids an index can narrow q to, or narrowed false
// when every asset of the tenant must be looked at. exact says the ids are
// precisely the assets that match the indexed term (an exact-value lookup);
// a createdAt range is cut at whole index keys and is only a superset.
func (a *API) candidates(tenant string, q *query.Query) (ids []string, narrowed, exact bool, err error) {
	for _, path := range indexedPaths {
		vals, ok := q.Exact(path)
		if !ok {
			continue
		}
		seen := map[string]bool{}
		var ids []string
		for _, val := range vals {
			for rec, err := range a.e.Records(byNS, tenant+"/"+path+"="+val, "", "") {
				if err != nil {
					return nil, false, false, err
				}
				if !seen[rec.Key.Name] {
					seen[rec.Key.Name] = true
					ids = append(ids, rec.Key.Name)
				}
			}
		}
		return ids, true, true, nil
	}
	if lo, hi, ok := q.Bounds("metadata.createdAt"); ok {
		start := ""
		if !lo.IsZero() {
			start = fmt.Sprintf("%020d", lo.Truncate(time.Millisecond).UnixNano())
		}
		var ids []string
		for rec, err := range a.e.Records(createdNS, tenant, "", start) {
			if err != nil {
				return nil, false, false, err
			}
			if !hi.IsZero() && rec.Key.Name > fmt.Sprintf("%020d~", hi.UnixNano()) {
				break
			}
			ids = append(ids, string(rec.Meta))
		}
		return ids, true, false, nil
	}
	return nil, false, false, nil
}

// matching returns the tenant's assets that satisfy q, in id order, and
// their total if wantTotal. Unless sorted needs every match, it stops
// after limit matches, so a page of a list loads only what it shows; and
// when an index answers q exactly, the total is counted from the index.
func (a *API) matching(ctx context.Context, tenant string, q *query.Query, sorted, wantTotal bool, limit int) (docs []doc, total int, err error) {
	ids, narrowed, exact, err := a.candidates(tenant, q)
	if err != nil {
		return nil, 0, err
	}
	exact = exact && len(q.Terms) == 1
	all := sorted || wantTotal && !exact
	budget := query.NewBudget(a.cfg.QueryCost)
	consider := func(rec engine.Record) (bool, error) {
		var obj map[string]any
		if err := json.Unmarshal(rec.Meta, &obj); err != nil {
			return false, fmt.Errorf("%w: asset %s: %w", engine.ErrCorrupt, rec.Key.Name, err)
		}
		if ok, err := q.Match(obj, budget); err != nil {
			return false, badRequest("q is too costly to evaluate over this tenant's assets: use fewer or simpler regular expressions, or narrow it with a term on refIds.id, details.mimeType, type, access or a metadata.createdAt range")
		} else if !ok {
			return false, ctx.Err()
		}
		st, err := decodeStored(rec)
		if err != nil {
			return false, err
		}
		docs = append(docs, doc{st: st, obj: obj})
		return !all && len(docs) >= limit, ctx.Err()
	}
	if narrowed {
		slices.Sort(ids)
		for _, id := range ids {
			rec, err := a.e.GetRecord(assetKey(tenant, id))
			if errors.Is(err, engine.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, 0, err
			}
			if stop, err := consider(rec); err != nil || stop {
				if err != nil {
					return nil, 0, err
				}
				break
			}
		}
	} else {
		for rec, err := range a.e.Records(namespace, tenant, "", "") {
			if err != nil {
				return nil, 0, err
			}
			if stop, err := consider(rec); err != nil || stop {
				if err != nil {
					return nil, 0, err
				}
				break
			}
		}
	}
	switch {
	case all:
		total = len(docs)
	case exact:
		total = len(ids)
	}
	return docs, total, nil
}

type sortKey struct {
	path []string
	desc bool
}

// sortable are the asset's documented scalar fields: the ones a list
// sorts by. A documented field that is an object or array (refIds,
// details, metadata) cannot be sorted by; any other name is no field of
// an asset, which every asset lacks alike, so it leaves the order as it
// is (the document's own example sorts by name).
var sortable = []string{"id", "type", "access", "url", "details.filename", "details.mimeType", "details.bytes", "details.etag",
	"metadata.version", "metadata.createdAt", "metadata.modifiedAt"}

func parseSort(s string) ([]sortKey, error) {
	var out []sortKey
	if s == "" {
		return nil, nil
	}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		name, dir, _ := strings.Cut(f, ":")
		if name == "" || len(out) == 8 {
			return nil, badRequest("sort is field[:desc], up to 8 fields separated by commas")
		}
		top, _, _ := strings.Cut(name, ".")
		switch {
		case slices.Contains(sortable, name):
			out = append(out, sortKey{path: strings.Split(name, "."), desc: dir == "desc" || dir == "DESC"})
		case top == "refIds" || top == "details" || top == "metadata":
			return nil, badRequest("sort takes scalar fields of an asset: " + strings.Join(sortable, ", "))
		}
	}
	return out, nil
}

// sortDocs orders docs by the sort keys (missing values last), then id.
// Sort keys are scalar fields (parseSort), so a comparison is of two
// strings, numbers or booleans, never of whole objects.
func sortDocs(docs []doc, keys []sortKey) {
	slices.SortStableFunc(docs, func(x, y doc) int {
		for _, k := range keys {
			a, aok := lookup(x.obj, k.path)
			b, bok := lookup(y.obj, k.path)
			switch {
			case !aok && !bok:
				continue
			case !aok:
				return 1
			case !bok:
				return -1
			}
			c := compareAny(a, b)
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return strings.Compare(x.st.ID, y.st.ID)
	})
}

func lookup(v any, path []string) (any, bool) {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[p]; !ok {
			return nil, false
		}
	}
	return v, v != nil
}

func compareAny(a, b any) int {
	switch x := a.(type) {
	case float64:
		if y, ok := b.(float64); ok {
			switch {
			case x < y:
				return -1
			case x > y:
				return 1
			}
			return 0
		}
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y)
		}
	}
	return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
}
