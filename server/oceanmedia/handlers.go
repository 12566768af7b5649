package oceanmedia

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/jsonstream"
	"github.com/cairnstore/cairn/server/internal/publink"
	"github.com/cairnstore/cairn/server/internal/web"
)

// readBody parses a flat JSON body, streaming a payload into the store.
func (a *API) readBody(r *http.Request, usr User, errs fieldErrors) (map[string]json.RawMessage, *engine.Upload, error) {
	raw := map[string]json.RawMessage{}
	var up *engine.Upload
	err := jsonstream.Parse(r.Body, "payload", func(content io.Reader) error {
		release, err := a.Limits.Uploads.Acquire(r.Context(), web.Identity("oceanmedia", usr.ID))
		if err != nil {
			return err
		}
		defer release()
		up, err = a.Engine.Upload(r.Context(), web.LimitReader(content, a.cfg.MaxPayload))
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

func (a *API) create(w http.ResponseWriter, r *http.Request) error {
	usr, err := a.authorize(r, ReadWrite)
	if err != nil {
		return err
	}
	errs := fieldErrors{}
	raw, up, err := a.readBody(r, usr, errs)
	if err != nil {
		return err
	}
	if up != nil {
		defer up.Close()
	}
	now := a.Now().UTC().Truncate(time.Second)
	m := &medium{CreatedAt: now, UpdatedAt: now, CreatedBy: usr.ID, UpdatedBy: usr.ID, Link: publink.NewID()}
	m.apply(raw, errs)
	if _, given := raw["bytesize"]; !given && up != nil {
		m.Bytesize = up.Size()
	}
	m.validate(errs)
	if len(errs) > 0 {
		return errs
	}
	id := uuid.NewString()
	err = a.Engine.Update(r.Context(), func(tx *engine.Tx) error {
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
	if err != nil {
		return err
	}
	w.Header().Set("Location", a.BaseURL(r)+"/v1/media/"+id)
	web.JSON(w, http.StatusCreated, a.render(r, id, m))
	return nil
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

func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.authorize(r, ReadOnly); err != nil {
		return err
	}
	id := r.PathValue("id")
	rec, err := a.Engine.GetRecord(mediumKey(id))
	if err != nil {
		return err
	}
	m, err := decodeMedium(rec)
	if err != nil {
		return err
	}
	etag := fmt.Sprintf(`"%s-%d"`, id, m.LockVersion)
	w.Header().Set("ETag", etag)
	w.Header().Set("Last-Modified", m.UpdatedAt.UTC().Format(http.TimeFormat))
	if web.HasToken(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	web.JSON(w, http.StatusOK, a.render(r, id, m))
	return nil
}

func (a *API) update(w http.ResponseWriter, r *http.Request) error {
	usr, err := a.authorize(r, ReadWrite)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	errs := fieldErrors{}
	raw, up, err := a.readBody(r, usr, errs)
	if err != nil {
		return err
	}
	if up != nil {
		defer up.Close()
	}
	lv, ok := raw["lock_version"]
	var lockVersion int64
	if !ok || json.Unmarshal(lv, &lockVersion) != nil {
		return errMissingAttrs
	}
	var m *medium
	err = a.Engine.Update(r.Context(), func(tx *engine.Tx) error {
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
		m.UpdatedAt = a.Now().UTC().Truncate(time.Second)
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
	case err != nil:
		return err
	case len(errs) > 0:
		return errs
	}
	web.JSON(w, http.StatusOK, a.render(r, id, m))
	return nil
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.authorize(r, ReadWrite); err != nil {
		return err
	}
	id := r.PathValue("id")
	var m *medium
	err := a.Engine.Update(r.Context(), func(tx *engine.Tx) error {
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
		return err
	}
	a.cleanValues(r.Context(), m)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// cleanValues forgets the distinct values of m that no medium has any
// more, so that group stays a walk over live values.
func (a *API) cleanValues(ctx context.Context, m *medium) {
	for _, f := range indexed {
		prefix := valuePrefix(f, m.field(f))
		used := func() bool {
			for range a.Engine.Records(byNamespace, "", prefix, "") {
				return true
			}
			return false
		}
		if used() {
			continue
		}
		a.Engine.Update(ctx, func(tx *engine.Tx) error {
			if used() {
				return nil // re-used meanwhile
			}
			if err := tx.Delete(engine.Key{Namespace: valuesNamespace, Name: prefix}); err != nil && !isNotFound(err) {
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
		a.Logger.Error("autodeleted medium", "err", err)
		return
	}
	a.cleanValues(context.Background(), m)
	a.Logger.Info("medium autodeleted", "id", rec.Key.Name, "app", m.App, "context", m.Context, "name", m.Name, "locale", m.Locale)
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
