// Package mediaupload serves the media upload API v2 at /cms/v2/content:
// base64 content in a JSON body, decoded as a stream, stored with an
// expiration date (default today + 30 days, at most a year ahead), and
// served publicly at its Location until then. The same bytes uploaded
// again by the same account answer 302 with the existing file; another
// account gets its own 201, so deduplication is never an oracle. Accounts
// use HTTP Basic auth. Errors of GET, PUT and DELETE are all 404, as
// documented; upload validation answers 400 with every reason that
// applies.
//
// An API is safe for concurrent use.
package mediaupload

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/julienschmidt/httprouter"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/jsonstream"
	"github.com/cairnstore/cairn/server/internal/publink"
	"github.com/cairnstore/cairn/server/internal/web"
)

// Config configures the API. Engine is required.
type Config struct {
	Engine *engine.Engine
	Logger *slog.Logger
	Now    func() time.Time
	// PublicURL is the base of the Location URLs ("https://media.example");
	// default the request's own scheme and host.
	PublicURL string
	// MaxContent bounds the decoded content; default 100 MB.
	MaxContent int64
	// Limits are what one client may take (upload and download slots,
	// failed sign-ins); the server passes those it shares between its
	// APIs, and any missing take their defaults.
	Limits web.Limits
}

// Namespaces in the index: files; per account the content hash of each
// file (duplicate detection) and the X-Request-Id of its upload (the
// document's other identifier of a file).
const (
	namespace    = "mediaupload"
	dupNamespace = "mediaupload.dup"
	ridNamespace = "mediaupload.rid"
)

// API is the media upload API over one engine.
type API struct {
	cfg       Config
	e         *engine.Engine
	accounts  *Accounts
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
	if cfg.MaxContent <= 0 {
		cfg.MaxContent = 100_000_000
	}
	return &API{cfg: cfg, e: cfg.Engine, accounts: NewAccounts(cfg.Engine), passwords: auth.NewPasswords(time.Minute, cfg.Now)}
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
	return []web.Route{
		{Method: "POST", Path: "/cms/v2/content", Handle: a.upload, MaxBody: maxBody},
		{Method: "PUT", Path: "/cms/v2/content", Handle: a.update},
		{Method: "GET", Path: "/cms/v2/content/:id", Handle: a.get},
		{Method: "DELETE", Path: "/cms/v2/content/:id", Handle: a.delete},
		{Method: "GET", Path: "/openapi/mediaupload.json", Handle: web.Document(openAPI)},
	}
}

// info is the documented description of a file.
type info struct {
	ID             string `json:"id"`
	ExpirationDate string `json:"expirationDate"`
	Size           int64  `json:"size"`
	ContentType    string `json:"contentType"`
	Location       string `json:"location,omitempty"`
}

// meta is what the API keeps in a file's record.
type meta struct {
	Link string `json:"link"` // the public link ID
	// Date is the expiration date, YYYY-MM-DD: the record expires when
	// that UTC day ends. Files stored before it was kept have none, and
	// expire at the start of the date their expiry time shows.
	Date string `json:"date,omitempty"`
	// RequestID is the X-Request-Id of the file's upload, which
	// identifies the file as well as its id does.
	RequestID string `json:"rid,omitempty"`
}

func metaOf(rec engine.Record) meta {
	var m meta
	json.Unmarshal(rec.Meta, &m)
	return m
}

type invalid struct {
	InvalidReasons []string `json:"invalidReasons"`
	Valid          bool     `json:"valid"`
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

// tooLarge is the validation reason for content over the limit.
func (a *API) tooLarge() string {
	return fmt.Sprintf("content is larger than %d bytes", a.cfg.MaxContent)
}

// authenticate returns the account of the request's Basic credentials.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request) (Account, bool) {
	user, pw, err := auth.BasicCredentials(r.Header.Get("Authorization"))
	if err == nil {
		now := a.cfg.Now()
		addr, who := web.ClientAddr(r), "mediaupload:"+user
		if ok, wait := a.cfg.Limits.Logins.Allow(addr, who, now); !ok {
			w.Header().Set("Retry-After", web.RetryAfter(wait))
			web.JSON(w, http.StatusTooManyRequests, map[string]string{"message": "Too many failed sign-ins; retry later"})
			return Account{}, false
		}
		acc, gerr := a.accounts.Get(user)
		if a.passwords.Verify(user, pw, acc.Hash, gerr == nil) {
			a.cfg.Limits.Logins.Succeeded(addr, who, now)
			return acc, true
		}
		a.cfg.Limits.Logins.Failed(addr, who, now)
		if gerr != nil && !errors.Is(gerr, ErrNoAccount) {
			a.cfg.Logger.Error("reading an account", "err", gerr)
		}
	}
	unauthorized(w)
	return Account{}, false
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="cairn", charset="UTF-8"`)
	web.JSON(w, http.StatusUnauthorized, map[string]string{"message": "Unauthorized"})
}

func fileKey(acc Account, id string) engine.Key {
	return engine.Key{Namespace: namespace, Tenant: acc.tenant(), Name: id}
}

// dupKey is the record of a file's content hash, in the file's tenant.
func dupKey(file engine.Record) engine.Key {
	return engine.Key{Namespace: dupNamespace, Tenant: file.Key.Tenant, Name: file.Blob.String()}
}

// ridKey is the record of an upload's X-Request-Id, in the file's tenant;
// its Meta is the file's id.
func ridKey(tenant, rid string) engine.Key {
	return engine.Key{Namespace: ridNamespace, Tenant: tenant, Name: rid}
}

// lookup returns the file that id names in the account: its id, or the
// X-Request-Id its upload was answered with ("is used to identify the
// media in other tasks", and the document's GET example uses it).
// Another account's file is engine.ErrNotFound, exactly as a missing one.
func lookup(get func(engine.Key) (engine.Record, error), acc Account, id string) (engine.Record, error) {
	rec, err := get(fileKey(acc, id))
	if !errors.Is(err, engine.ErrNotFound) || !isRequestID(id) {
		return rec, err
	}
	alias, err := get(ridKey(acc.tenant(), id))
	if err != nil {
		return engine.Record{}, err
	}
	return get(fileKey(acc, string(alias.Meta)))
}

// errAccountGone: the account was deleted (or deleted and made again)
// while a request of it was being served.
var errAccountGone = errors.New("mediaupload: the account is gone")

// stillThere checks, inside a write's transaction, that acc is still the
// account of its name, so that a file cannot land in an account deleted
// meanwhile, nor in a new one of the same name.
func stillThere(tx *engine.Tx, acc Account) error {
	cur, err := tx.Get(accountKey(acc.Name))
	if err != nil {
		return errAccountGone
	}
	if now, err := decodeAccount(cur); err != nil || now.ID != acc.ID {
		return errAccountGone
	}
	return nil
}

// deleteFile deletes a file's record, its public link and its content
// hash record.
func deleteFile(tx *engine.Tx, file engine.Record) error {
	if err := tx.Delete(file.Key); err != nil {
		return err
	}
	m := metaOf(file)
	if err := publink.Delete(tx, m.Link); err != nil {
		return err
	}
	if err := tx.Delete(dupKey(file)); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	if m.RequestID != "" {
		if err := tx.Delete(ridKey(file.Key.Tenant, m.RequestID)); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return err
		}
	}
	return nil
}

func (a *API) location(r *http.Request, rec engine.Record) string {
	m := metaOf(rec)
	base := a.cfg.PublicURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return strings.TrimSuffix(base, "/") + publink.Path(m.Link, rec.Key.Name)
}

func (a *API) describe(r *http.Request, rec engine.Record) info {
	date := rec.Expires.UTC().Format("2006-01-02T15:04:05Z")
	if d := metaOf(rec).Date; d != "" {
		date = d + "T00:00:00Z"
	}
	return info{
		ID: rec.Key.Name, ExpirationDate: date,
		Size: rec.Size, ContentType: rec.ContentType, Location: a.location(r, rec),
	}
}

// today is the current date, midnight UTC.
func (a *API) today() time.Time {
	return a.cfg.Now().UTC().Truncate(24 * time.Hour)
}

// endOf is when a file whose expiration date is d expires: it is kept
// through the whole of its expiration date, and deleted when that UTC day
// ends. (Today is a valid date, "it cannot be in the past", so a file
// must not be gone the moment it is stored.)
func endOf(d time.Time) time.Time { return d.AddDate(0, 0, 1) }

// parseDate checks an expiration date: YYYY-MM-DD, not before today, not
// after today + one year. It returns midnight UTC of that day.
func (a *API) parseDate(s string) (time.Time, []string) {
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, []string{"expirationDate must be a date in the format YYYY-MM-DD"}
	}
	today := a.today()
	switch {
	case d.Before(today):
		return d, []string{"expirationDate cannot be in the past"}
	case d.After(today.AddDate(1, 0, 0)):
		return d, []string{"expirationDate cannot be more than one year from the current date"}
	}
	return d, nil
}

func (a *API) upload(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	w.Header().Set("X-Request-Id", requestID())
	account, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		web.JSON(w, http.StatusBadRequest, invalid{InvalidReasons: []string{"Content-Type must be application/json"}})
		return
	}
	var (
		up    *engine.Upload
		ctype string
	)
	defer func() {
		if up != nil {
			up.Close()
		}
	}()
	var (
		hasContent bool
		date       *string
		reasons    []string
	)
	err := jsonstream.Parse(r.Body, "content", func(content io.Reader) error {
		hasContent = true
		release, err := a.cfg.Limits.Uploads.Acquire(r.Context(), web.Identity("mediaupload", account.tenant()))
		if err != nil {
			return err
		}
		defer release()
		t, rd, err := web.Content("", web.LimitReader(content, a.cfg.MaxContent))
		if err != nil {
			return err
		}
		ctype = t
		up, err = a.e.Upload(r.Context(), rd)
		return err
	}, func(key string, raw json.RawMessage) error {
		switch key {
		case "content": // null
			hasContent = true
			reasons = append(reasons, "content must be a base64 string")
		case "expirationDate":
			var s *string
			if json.Unmarshal(raw, &s) != nil {
				bad := "not a string"
				s = &bad
			}
			date = s
		}
		return nil
	})
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, web.ErrTooLarge), errors.As(err, &tooBig):
		// Whether the body declared its length or came chunked: the
		// document's statuses for an upload are 201, 302, 400, 401 and
		// 500, and "The maximum size can be no larger than 100 MB" is a
		// validation failure. Nothing past the limit was read.
		reasons = append(reasons, a.tooLarge())
	case errors.Is(err, jsonstream.ErrBase64):
		reasons = append(reasons, "content is not valid base64")
	case errors.Is(err, jsonstream.ErrNotString):
		hasContent = true
		reasons = append(reasons, "content must be a base64 string")
	case err != nil:
		a.fail(w, err)
		return
	case !hasContent:
		reasons = append(reasons, "content is required")
	case up != nil && up.Size() == 0:
		reasons = append(reasons, "content is empty")
	}
	expires := a.today().AddDate(0, 0, 30)
	if date != nil {
		d, bad := a.parseDate(*date)
		reasons = append(reasons, bad...)
		expires = d
	}
	if len(reasons) > 0 {
		web.JSON(w, http.StatusBadRequest, invalid{InvalidReasons: reasons})
		return
	}

	var rec engine.Record
	dup := false
	rid := w.Header().Get("X-Request-Id")
	err = a.e.Update(r.Context(), func(tx *engine.Tx) error {
		if err := stillThere(tx, account); err != nil {
			return err
		}
		dk := engine.Key{Namespace: dupNamespace, Tenant: account.tenant(), Name: up.ID().String()}
		if d, err := tx.Get(dk); err == nil {
			if rec, err = tx.Get(fileKey(account, string(d.Meta))); err == nil {
				dup = true
				return nil
			}
		}
		id := uuid.NewString()
		link := publink.NewID()
		m, _ := json.Marshal(meta{Link: link, Date: expires.Format("2006-01-02"), RequestID: rid})
		k := fileKey(account, id)
		end := endOf(expires)
		var err error
		if rec, err = tx.Put(k, engine.Record{ContentType: ctype, Meta: m, Expires: end}, up); err != nil {
			return err
		}
		if _, err := tx.Put(dk, engine.Record{Meta: []byte(id), Expires: end}, nil); err != nil {
			return err
		}
		if _, err := tx.Put(ridKey(account.tenant(), rid), engine.Record{Meta: []byte(id), Expires: end}, nil); err != nil {
			return err
		}
		return publink.Put(tx, link, k, end)
	})
	if err != nil {
		a.fail(w, err)
		return
	}
	d := a.describe(r, rec)
	w.Header().Set("Location", d.Location)
	if dup {
		// "The request ID and file location are returned in this
		// response": the request ID that identifies the existing file.
		if m := metaOf(rec); m.RequestID != "" {
			w.Header().Set("X-Request-Id", m.RequestID)
		}
		web.JSON(w, http.StatusFound, d)
		return
	}
	d.Location = "" // the 201 body is documented without it
	web.JSON(w, http.StatusCreated, d)
}

func (a *API) get(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	w.Header().Set("X-Request-Id", requestID())
	account, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	rec, err := lookup(a.e.GetRecord, account, ps.ByName("id"))
	if err != nil {
		a.notFound(w, err)
		return
	}
	if m := metaOf(rec); m.RequestID != "" {
		w.Header().Set("X-Request-Id", m.RequestID)
	}
	d := a.describe(r, rec)
	w.Header().Set("Location", d.Location)
	web.JSON(w, http.StatusOK, d)
}

// updateRequest is PUT's body.
type updateRequest struct {
	ID             string `json:"id"`
	ExpirationDate string `json:"expirationDate"`
}

func (a *API) update(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	w.Header().Set("X-Request-Id", requestID())
	account, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	var req updateRequest
	if err := web.DecodeJSON(r.Body, &req); err != nil || req.ID == "" {
		a.notFound(w, fmt.Errorf("bad PUT body: %v", err))
		return
	}
	d, bad := a.parseDate(req.ExpirationDate)
	if bad != nil {
		a.notFound(w, errors.New(bad[0]))
		return
	}
	var rec engine.Record
	err := a.e.Update(r.Context(), func(tx *engine.Tx) error {
		cur, err := lookup(tx.Get, account, req.ID)
		if err != nil {
			return err
		}
		m := metaOf(cur)
		m.Date = d.Format("2006-01-02")
		mb, _ := json.Marshal(m)
		end := endOf(d)
		if rec, err = tx.Put(cur.Key, engine.Record{Blob: cur.Blob, ContentType: cur.ContentType, Meta: mb, Expires: end}, nil); err != nil {
			return err
		}
		if _, err := tx.Put(dupKey(cur), engine.Record{Meta: []byte(cur.Key.Name), Expires: end}, nil); err != nil {
			return err
		}
		if m.RequestID != "" {
			if _, err := tx.Put(ridKey(cur.Key.Tenant, m.RequestID), engine.Record{Meta: []byte(cur.Key.Name), Expires: end}, nil); err != nil {
				return err
			}
		}
		return publink.Put(tx, m.Link, cur.Key, end)
	})
	if err != nil {
		a.notFound(w, err)
		return
	}
	if m := metaOf(rec); m.RequestID != "" {
		w.Header().Set("X-Request-Id", m.RequestID)
	}
	web.JSON(w, http.StatusOK, a.describe(r, rec))
}

func (a *API) delete(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	w.Header().Set("X-Request-Id", requestID())
	account, ok := a.authenticate(w, r)
	if !ok {
		return
	}
	err := a.e.Update(r.Context(), func(tx *engine.Tx) error {
		cur, err := lookup(tx.Get, account, ps.ByName("id"))
		if err != nil {
			return err
		}
		return deleteFile(tx, cur)
	})
	if err != nil {
		a.notFound(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// notFound answers any error of GET, PUT and DELETE, as documented.
func (a *API) notFound(w http.ResponseWriter, err error) {
	if s := web.Status(err); s >= 500 {
		a.cfg.Logger.Error("media upload request failed", "err", err)
	}
	web.JSON(w, http.StatusNotFound, invalid{InvalidReasons: []string{"no such content for this account"}})
}

// fail answers an upload that failed for a reason other than validation.
func (a *API) fail(w http.ResponseWriter, err error) {
	if errors.Is(err, errAccountGone) {
		unauthorized(w)
		return
	}
	status := web.Status(err)
	var reason string
	switch {
	case errors.Is(err, jsonstream.ErrSyntax):
		status, reason = http.StatusBadRequest, err.Error()
	case status == http.StatusInsufficientStorage:
		reason = "the store is out of space"
	case status == http.StatusTooManyRequests:
		reason = "too many uploads at once from this account; retry later"
	case status == http.StatusServiceUnavailable:
		reason = "the store is busy or not accepting uploads; retry later"
	case status == http.StatusRequestTimeout:
		reason = "the request body stalled or arrived too slowly"
	case status == http.StatusBadRequest:
		reason = "the request body could not be read"
	default:
		status, reason = http.StatusInternalServerError, "Unexpected error"
		a.cfg.Logger.Error("media upload failed", "err", err)
	}
	web.JSON(w, status, invalid{InvalidReasons: []string{reason}})
}
