// Package oceanmedia serves the Ocean framework's /v1/media resource:
// media organised by app, context, name and locale, each rendered as
// {"medium":{…}} with exactly four _links (self, url, creator, updater),
// created from flat JSON with an optional base64 payload (decoded as a
// stream), updated with PATCH semantics under optimistic locking
// (lock_version), deleted, listed with exact matches, a file-name search,
// grouping and paging served from index records, and deleted
// automatically at delete_at, with an optional e-mail notification.
// Requests carry an X-API-Token issued by POST /v1/authentications.
//
// Errors are {"_api_error":[…]} or, for validation, {"field":["message"]}.
// An API is safe for concurrent use.
package oceanmedia

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
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
	// PublicURL is the base of absolute URLs; default the request's host.
	PublicURL string
	// MaxPayload bounds a decoded payload; default 5 GiB.
	MaxPayload int64
	// TokenTTL is how long an authentication token lasts; default 30 min.
	TokenTTL time.Duration
	// SMTPAddr ("host:port"), if set, is the relay autodelete
	// notifications go through, from SMTPFrom.
	SMTPAddr, SMTPFrom string
	// Limits are what one client may take (upload and download slots,
	// failed sign-ins); the server passes those it shares between its
	// APIs, and any missing take their defaults.
	Limits web.Limits
}

// API is the /v1/media API over one engine.
type API struct {
	cfg       Config
	e         *engine.Engine
	users     *Users
	passwords *auth.Passwords
	// mail sends autodelete notifications; nil without Config.SMTPAddr.
	mail *notifier
}

// New returns the API and registers its autodelete hook with the engine.
func New(cfg Config) *API {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 5 << 30
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = 30 * time.Minute
	}
	if cfg.SMTPFrom == "" {
		cfg.SMTPFrom = "cairn@localhost"
	}
	a := &API{cfg: cfg, e: cfg.Engine, users: NewUsers(cfg.Engine), passwords: auth.NewPasswords(time.Minute, cfg.Now)}
	if cfg.SMTPAddr != "" {
		a.mail = newNotifier(cfg.SMTPAddr, cfg.SMTPFrom, cfg.Logger, cfg.Now)
	}
	cfg.Engine.OnExpire(namespace, a.autodeleted)
	return a
}

//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3 document of the API, served at
// /openapi/oceanmedia.json.
func OpenAPI() []byte { return openAPI }

// Routes are the API's endpoints.
func (a *API) Routes() []web.Route {
	maxBody := a.cfg.MaxPayload/3*4 + 8 + jsonstream.MaxSmall
	return []web.Route{
		{Method: "POST", Path: "/v1/authentications", Handle: a.authenticate},
		{Method: "GET", Path: "/v1/media", Handle: a.list},
		{Method: "POST", Path: "/v1/media", Handle: a.create, MaxBody: maxBody},
		{Method: "GET", Path: "/v1/media/:id", Handle: a.get},
		{Method: "PUT", Path: "/v1/media/:id", Handle: a.update, MaxBody: maxBody},
		{Method: "PATCH", Path: "/v1/media/:id", Handle: a.update, MaxBody: maxBody},
		{Method: "DELETE", Path: "/v1/media/:id", Handle: a.delete},
		{Method: "GET", Path: "/openapi/oceanmedia.json", Handle: web.Document(openAPI)},
	}
}

// apiError answers {"_api_error":[msg]} with status.
func apiError(w http.ResponseWriter, status int, msg string) {
	web.JSON(w, status, map[string][]string{"_api_error": {msg}})
}

func isNotFound(err error) bool { return errors.Is(err, engine.ErrNotFound) }

// fail maps an error of the store to a status and an _api_error.
func (a *API) fail(w http.ResponseWriter, err error) {
	status := web.Status(err)
	msg := http.StatusText(status)
	switch {
	case errors.Is(err, jsonstream.ErrSyntax):
		status, msg = http.StatusBadRequest, err.Error()
	case status == http.StatusNotFound:
		msg = "Not found"
	case status >= 500 && status != http.StatusInsufficientStorage && status != http.StatusServiceUnavailable:
		status, msg = http.StatusInternalServerError, "Internal error"
		a.cfg.Logger.Error("/v1/media request failed", "err", err)
	}
	apiError(w, status, msg)
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

// --- authentication ---

// authenticate is POST /v1/authentications: X-API-Authenticate carries
// base64(user:password) (with or without "Basic "); the answer is a token.
func (a *API) authenticate(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	h := strings.TrimSpace(r.Header.Get("X-API-Authenticate"))
	if h == "" {
		apiError(w, http.StatusBadRequest, "X-API-Authenticate missing")
		return
	}
	if !strings.HasPrefix(strings.ToLower(h), "basic ") {
		h = "Basic " + h
	}
	name, pw, err := auth.BasicCredentials(h)
	if err != nil {
		apiError(w, http.StatusBadRequest, "Malformed credentials")
		return
	}
	now := a.cfg.Now()
	addr, who := web.ClientAddr(r), "oceanmedia:"+name
	if ok, wait := a.cfg.Limits.Logins.Allow(addr, who, now); !ok {
		w.Header().Set("Retry-After", web.RetryAfter(wait))
		apiError(w, http.StatusTooManyRequests, "Too many failed authentications")
		return
	}
	usr, gerr := a.users.Get(name)
	if !a.passwords.Verify(name, pw, usr.Hash, gerr == nil) {
		a.cfg.Limits.Logins.Failed(addr, who, now)
		apiError(w, http.StatusForbidden, "Does not authenticate")
		return
	}
	a.cfg.Limits.Logins.Succeeded(addr, who, now)
	tok := auth.NewSecret()
	now = now.UTC().Truncate(time.Second)
	t := token{User: name, UserID: usr.ID, Expires: now.Add(a.cfg.TokenTTL)}
	meta, _ := json.Marshal(t)
	err = a.e.Update(r.Context(), func(tx *engine.Tx) error {
		_, err := tx.Put(tokenKey(tok), engine.Record{Meta: meta, Expires: t.Expires.Add(tokenGrace)}, nil)
		return err
	})
	if err != nil {
		a.fail(w, err)
		return
	}
	web.JSON(w, http.StatusCreated, map[string]any{"authentication": map[string]any{
		"token": tok, "max_age": int(a.cfg.TokenTTL.Seconds()),
		"created_at": now.Format(time.RFC3339), "expires_at": t.Expires.Format(time.RFC3339),
		"_links": map[string]any{"creator": link(a.base(r)+"/v1/api_users/"+usr.ID, "application/json")},
	}})
}

// authorize checks X-API-Token and the right the request needs; on
// failure it has answered.
func (a *API) authorize(w http.ResponseWriter, r *http.Request, need Right) (User, bool) {
	tok := r.Header.Get("X-API-Token")
	if tok == "" {
		apiError(w, http.StatusBadRequest, "X-API-Token missing")
		return User{}, false
	}
	rec, err := a.e.GetRecord(tokenKey(tok))
	var t token
	if err == nil {
		err = json.Unmarshal(rec.Meta, &t)
	}
	var usr User
	if err == nil {
		usr, err = a.users.Get(t.User)
	}
	if err == nil && !auth.Equal(usr.ID, t.UserID) {
		err = ErrNoUser // another user of the same name, made since
	}
	switch {
	case err != nil && !isNotFound(err) && !errors.Is(err, ErrNoUser):
		a.fail(w, err)
		return User{}, false
	case err != nil:
		apiError(w, http.StatusBadRequest, "Unknown authentication")
		return User{}, false
	case !a.cfg.Now().Before(t.Expires):
		apiError(w, 419, "Authentication expired")
		return User{}, false
	case need == ReadWrite && usr.Right != ReadWrite:
		apiError(w, http.StatusForbidden, "Not authorized")
		return User{}, false
	}
	return usr, true
}

// --- representation ---

type hyperlink struct {
	Href string `json:"href"`
	Type string `json:"type"`
}

func link(href, typ string) hyperlink { return hyperlink{Href: href, Type: typ} }

func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// render is the documented representation of a medium.
func (a *API) render(r *http.Request, id string, m *medium) map[string]any {
	base := a.base(r)
	creator, updater := m.CreatedBy, m.UpdatedBy
	if creator == "" {
		creator = "0"
	}
	if updater == "" {
		updater = "0"
	}
	var deleteAt any
	if m.DeleteAt != nil {
		deleteAt = iso(*m.DeleteAt)
	}
	return map[string]any{"medium": map[string]any{
		"_links": map[string]hyperlink{
			"self":    link(base+"/v1/media/"+id, "application/json"),
			"url":     link(base+publink.Path(m.Link, m.FileName), m.ContentType),
			"creator": link(base+"/v1/api_users/"+creator, "application/json"),
			"updater": link(base+"/v1/api_users/"+updater, "application/json"),
		},
		"app": m.App, "context": m.Context, "name": m.Name, "locale": m.Locale,
		"usage": m.Usage, "file_name": m.FileName, "content_type": m.ContentType,
		"bytesize": m.Bytesize, "tags": m.Tags, "delete_at": deleteAt, "email": m.Email,
		"created_at": iso(m.CreatedAt), "updated_at": iso(m.UpdatedAt), "lock_version": m.LockVersion,
	}}
}

func decodeMedium(rec engine.Record) (*medium, error) {
	var m medium
	if err := json.Unmarshal(rec.Meta, &m); err != nil {
		return nil, fmt.Errorf("%w: medium %s: %w", engine.ErrCorrupt, rec.Key.Name, err)
	}
	return &m, nil
}

// --- handlers ---

// readBody parses a flat JSON body, streaming a payload into the store.
func (a *API) readBody(r *http.Request, usr User, errs fieldErrors) (map[string]json.RawMessage, *engine.Upload, error) {
	raw := map[string]json.RawMessage{}
	var up *engine.Upload
	err := jsonstream.Parse(r.Body, "payload", func(content io.Reader) error {
		release, err := a.cfg.Limits.Uploads.Acquire(r.Context(), web.Identity("oceanmedia", usr.ID))
		if err != nil {
			return err
		}
		defer release()
		up, err = a.e.Upload(r.Context(), web.LimitReader(content, a.cfg.MaxPayload))
		return err
	}, func(k string, v json.RawMessage) error {
		raw[k] = slices.Clone(v)
		return nil
	})
	var corrupt base64.CorruptInputError
	switch {
	case errors.Is(err, jsonstream.ErrBase64), errors.Is(err, jsonstream.ErrNotString), errors.As(err, &corrupt):
		errs.add("payload", "is invalid")
		err = nil
	case errors.Is(err, web.ErrTooLarge):
		errs.add("payload", fmt.Sprintf("is too large (maximum is %d bytes)", a.cfg.MaxPayload))
		err = nil
	}
	if err != nil && up != nil {
		up.Close()
		up = nil
	}
	return raw, up, err
}

var errNotUnique = errors.New("oceanmedia: resource not unique")

func (a *API) create(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	usr, ok := a.authorize(w, r, ReadWrite)
	if !ok {
		return
	}
	errs := fieldErrors{}
	raw, up, err := a.readBody(r, usr, errs)
	if err != nil {
		a.fail(w, err)
		return
	}
	if up != nil {
		defer up.Close()
	}
	now := a.cfg.Now().UTC().Truncate(time.Second)
	m := &medium{CreatedAt: now, UpdatedAt: now, CreatedBy: usr.ID, UpdatedBy: usr.ID, Link: publink.NewID()}
	m.apply(raw, errs)
	if _, given := raw["bytesize"]; !given && up != nil {
		m.Bytesize = up.Size()
	}
	m.validate(errs)
	if len(errs) > 0 {
		web.JSON(w, http.StatusUnprocessableEntity, errs)
		return
	}
	id := uuid.NewString()
	err = a.e.Update(r.Context(), func(tx *engine.Tx) error {
		if taken(tx, m, "") {
			return errNotUnique
		}
		if _, err := tx.Put(mediumKey(id), engine.Record{ContentType: m.ContentType, Meta: mustJSON(m), Expires: m.expires()}, up); err != nil {
			return err
		}
		if err := putIndex(tx, m, id); err != nil {
			return err
		}
		return publink.Put(tx, m.Link, mediumKey(id), m.expires())
	})
	if errors.Is(err, errNotUnique) {
		apiError(w, http.StatusUnprocessableEntity, "Resource not unique")
		return
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Location", a.base(r)+"/v1/media/"+id)
	web.JSON(w, http.StatusCreated, a.render(r, id, m))
}

// taken reports whether another live medium (not id) has m's unique tuple.
func taken(tx *engine.Tx, m *medium, id string) bool {
	u, err := tx.Get(uniqueKey(m))
	if err != nil {
		return false
	}
	other := string(u.Meta)
	if other == id {
		return false
	}
	_, err = tx.Get(mediumKey(other))
	return err == nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // a medium always marshals
	}
	return b
}

func (a *API) get(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if _, ok := a.authorize(w, r, ReadOnly); !ok {
		return
	}
	id := ps.ByName("id")
	rec, err := a.e.GetRecord(mediumKey(id))
	if err != nil {
		a.fail(w, err)
		return
	}
	m, err := decodeMedium(rec)
	if err != nil {
		a.fail(w, err)
		return
	}
	etag := fmt.Sprintf(`"%s-%d"`, id, m.LockVersion)
	w.Header().Set("ETag", etag)
	w.Header().Set("Last-Modified", m.UpdatedAt.UTC().Format(http.TimeFormat))
	if web.HasToken(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	web.JSON(w, http.StatusOK, a.render(r, id, m))
}

var errStale = errors.New("oceanmedia: stale medium")

func (a *API) update(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	usr, ok := a.authorize(w, r, ReadWrite)
	if !ok {
		return
	}
	id := ps.ByName("id")
	errs := fieldErrors{}
	raw, up, err := a.readBody(r, usr, errs)
	if err != nil {
		a.fail(w, err)
		return
	}
	if up != nil {
		defer up.Close()
	}
	lv, ok := raw["lock_version"]
	var lockVersion int64
	if !ok || json.Unmarshal(lv, &lockVersion) != nil {
		apiError(w, http.StatusUnprocessableEntity, "Missing resource attributes")
		return
	}
	var m *medium
	err = a.e.Update(r.Context(), func(tx *engine.Tx) error {
		errs = fieldErrors{}
		cur, err := tx.Get(mediumKey(id))
		if err != nil {
			return err
		}
		old, err := decodeMedium(cur)
		if err != nil {
			return err
		}
		if old.LockVersion != lockVersion {
			return errStale
		}
		m = new(medium)
		*m = *old
		m.apply(raw, errs)
		if _, given := raw["bytesize"]; !given && up != nil {
			m.Bytesize = up.Size()
		}
		m.validate(errs)
		if len(errs) > 0 {
			return nil
		}
		if taken(tx, m, id) {
			return errNotUnique
		}
		m.LockVersion++
		m.UpdatedAt = a.cfg.Now().UTC().Truncate(time.Second)
		m.UpdatedBy = usr.ID
		if err := deleteIndex(tx, old, id); err != nil {
			return err
		}
		if _, err := tx.Put(mediumKey(id), engine.Record{Blob: cur.Blob, ContentType: m.ContentType, Meta: mustJSON(m), Expires: m.expires()}, up); err != nil {
			return err
		}
		if err := putIndex(tx, m, id); err != nil {
			return err
		}
		return publink.Put(tx, m.Link, mediumKey(id), m.expires())
	})
	switch {
	case errors.Is(err, errStale):
		apiError(w, http.StatusConflict, "Stale Medium")
	case errors.Is(err, errNotUnique):
		apiError(w, http.StatusUnprocessableEntity, "Resource not unique")
	case err != nil:
		a.fail(w, err)
	case len(errs) > 0:
		web.JSON(w, http.StatusUnprocessableEntity, errs)
	default:
		web.JSON(w, http.StatusOK, a.render(r, id, m))
	}
}

func (a *API) delete(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	if _, ok := a.authorize(w, r, ReadWrite); !ok {
		return
	}
	id := ps.ByName("id")
	var m *medium
	err := a.e.Update(r.Context(), func(tx *engine.Tx) error {
		cur, err := tx.Get(mediumKey(id))
		if err != nil {
			return err
		}
		if m, err = decodeMedium(cur); err != nil {
			return err
		}
		if err := tx.Delete(mediumKey(id)); err != nil {
			return err
		}
		if err := deleteIndex(tx, m, id); err != nil {
			return err
		}
		return publink.Delete(tx, m.Link)
	})
	if err != nil {
		a.fail(w, err)
		return
	}
	a.cleanValues(r.Context(), m)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNoContent)
}

// cleanValues forgets the distinct values of m that no medium has any
// more, so that group stays a walk over live values.
func (a *API) cleanValues(ctx context.Context, m *medium) {
	for _, f := range indexed {
		v := m.field(f)
		used := false
		for range a.e.Records(byNamespace, f+"="+v, "", "") {
			used = true
			break
		}
		if used {
			continue
		}
		a.e.Update(ctx, func(tx *engine.Tx) error {
			for range a.e.Records(byNamespace, f+"="+v, "", "") {
				return nil // re-used meanwhile
			}
			if err := tx.Delete(engine.Key{Namespace: valuesNamespace, Tenant: f, Name: v}); err != nil && !isNotFound(err) {
				return err
			}
			return nil
		})
	}
}

// autodeleted runs after the sweeper deleted a medium at its delete_at:
// its index entries expired with it; the distinct values are cleaned and
// the e-mail, if any, notified.
func (a *API) autodeleted(rec engine.Record) {
	m, err := decodeMedium(rec)
	if err != nil {
		a.cfg.Logger.Error("autodeleted medium", "err", err)
		return
	}
	a.cleanValues(context.Background(), m)
	a.cfg.Logger.Info("medium autodeleted", "id", rec.Key.Name, "app", m.App, "context", m.Context, "name", m.Name, "locale", m.Locale)
	// Only a medium that was to live until its delete_at is notified: one
	// written with a delete_at already past was never served, and a
	// notification "at once" would make the server a mail relay.
	if m.Email == nil || a.mail == nil || !m.UpdatedAt.Before(m.expires()) || !validEmail(*m.Email) {
		return
	}
	a.mail.notify(*m.Email,
		plain(fmt.Sprintf("Medium %s/%s/%s/%s was deleted", m.App, m.Context, m.Name, m.Locale)),
		plain(fmt.Sprintf("The medium %q (app %q, context %q, locale %q, file %q) reached its delete_at (%s) and was deleted.", m.Name, m.App, m.Context, m.Locale, m.FileName, iso(m.expires())))+"\r\n")
}

// --- collections ---

// MaxPage bounds the page a collection may ask for, so that page times
// page_size (at most 1000) never overflows.
const MaxPage = 1_000_000

func (a *API) list(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if _, ok := a.authorize(w, r, ReadOnly); !ok {
		return
	}
	q := r.URL.Query()
	match := map[string]string{}
	for _, f := range indexed {
		if q.Has(f) {
			match[f] = q.Get(f)
		}
	}
	search := strings.ToLower(q.Get("search"))
	group := q.Get("group")
	if !slices.Contains(indexed, group) {
		group = "" // as the original: an unknown group is ignored
	}
	// "The basic URL returns all Medium resources": a collection pages
	// only when page is given, as the original did.
	page, size, paged := 0, 25, q.Has("page")
	if paged {
		n, err := strconv.Atoi(q.Get("page"))
		if err == nil && n > MaxPage || errors.Is(err, strconv.ErrRange) {
			apiError(w, http.StatusBadRequest, fmt.Sprintf("page must be at most %d", MaxPage))
			return
		}
		if err == nil {
			page = n
		}
		if s := q.Get("page_size"); s != "" {
			if n, err := strconv.Atoi(s); err == nil && n > 0 {
				size = min(n, 1000)
			}
		}
	}
	arr := web.NewArray(w, http.StatusOK)
	if page < 0 {
		arr.Close()
		return
	}
	matches := func(en *entry) bool {
		for f, v := range match {
			if en.field(f) != v {
				return false
			}
		}
		return search == "" || strings.Contains(strings.ToLower(en.FileName), search)
	}
	ids := a.matching(match, matches)
	if group != "" {
		ids = a.grouped(group, match, matches)
	}
	skip, left := page*size, size
	for id, err := range ids {
		if err == nil && skip > 0 {
			skip--
			continue
		}
		var rec engine.Record
		if err == nil {
			rec, err = a.e.GetRecord(mediumKey(id))
			if isNotFound(err) {
				continue // deleted meanwhile
			}
		}
		var m *medium
		if err == nil {
			m, err = decodeMedium(rec)
		}
		if err != nil {
			if arr.Started() {
				a.cfg.Logger.Error("/v1/media collection cut off", "err", err)
				arr.Abort()
			}
			a.fail(w, err)
			return
		}
		if arr.Add(a.render(r, id, m)) != nil {
			return // the client is gone
		}
		if left--; paged && left == 0 {
			break
		}
	}
	arr.Close()
}

// driving picks the index a collection walks: one of the matched
// properties, or every medium.
func driving(match map[string]string) string {
	for _, f := range indexed {
		if v, ok := match[f]; ok {
			return f + "=" + v
		}
	}
	return "all"
}

// listBatch is how many index records a collection reads at a time.
var listBatch = 256

// matching yields the ids of the media that match, in updated_at order,
// reading the index a batch at a time.
func (a *API) matching(match map[string]string, ok func(*entry) bool) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		for recs, err := range a.e.Batches(byNamespace, driving(match), "", "", listBatch) {
			if err != nil {
				yield("", err)
				return
			}
			for _, rec := range recs {
				var en entry
				if err := json.Unmarshal(rec.Meta, &en); err != nil {
					yield("", err)
					return
				}
				if ok(&en) && !yield(en.ID, nil) {
					return
				}
			}
		}
	}
}

// grouped yields one medium per distinct value of field among those that
// match (the earliest updated), in updated_at order. It holds one
// (order, id) pair per distinct value, to sort them.
func (a *API) grouped(field string, match map[string]string, ok func(*entry) bool) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		type pick struct {
			order, id string
		}
		var picks []pick
		values := []string{}
		if v, fixed := match[field]; fixed {
			values = append(values, v)
		} else {
			for rec, err := range a.e.Records(valuesNamespace, field, "", "") {
				if err != nil {
					yield("", err)
					return
				}
				values = append(values, rec.Key.Name)
			}
		}
		for _, v := range values {
			for rec, err := range a.e.Records(byNamespace, field+"="+v, "", "") {
				if err != nil {
					yield("", err)
					return
				}
				var en entry
				if err := json.Unmarshal(rec.Meta, &en); err != nil {
					yield("", err)
					return
				}
				if ok(&en) {
					picks = append(picks, pick{rec.Key.Name, en.ID})
					break
				}
			}
		}
		slices.SortFunc(picks, func(x, y pick) int { return strings.Compare(x.order, y.order) })
		for _, p := range picks {
			if !yield(p.id, nil) {
				return
			}
		}
	}
}
