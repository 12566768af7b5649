package mediaupload

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/google/uuid"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/jsonstream"
	"github.com/cairnstore/cairn/server/internal/publink"
	"github.com/cairnstore/cairn/server/internal/web"
)

// authenticate returns the account of the request's Basic credentials.
func (a *API) authenticate(r *http.Request) (Account, error) {
	user, pw, err := auth.BasicCredentials(r.Header.Get("Authorization"))
	if err != nil {
		return Account{}, errUnauthorized
	}
	var acc Account
	err = a.Limits.Logins.SignIn(r, "mediaupload:"+user, a.Now(), func() bool {
		var gerr error
		acc, gerr = a.accounts.Get(user)
		if gerr != nil && !errors.Is(gerr, ErrNoAccount) {
			a.Logger.Error("reading an account", "err", gerr)
		}
		return a.passwords.Verify(user, pw, acc.Hash, gerr == nil)
	})
	return acc, err
}

func (a *API) upload(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("X-Request-Id", requestID())
	account, err := a.authenticate(r)
	if err != nil {
		return err
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return invalidf("Content-Type must be application/json")
	}
	var (
		up         *engine.Upload
		ctype      string
		hasContent bool
		date       *string
		reasons    []string
	)
	defer func() {
		if up != nil {
			up.Close()
		}
	}()
	err = jsonstream.Parse(r.Body, "content", func(content io.Reader) error {
		hasContent = true
		release, err := a.Limits.Uploads.Acquire(r.Context(), web.Identity("mediaupload", account.tenant()))
		if err != nil {
			return err
		}
		defer release()
		t, rd, err := web.Content("", web.LimitReader(content, a.cfg.MaxContent))
		if err != nil {
			return err
		}
		ctype = t
		up, err = a.Engine.Upload(r.Context(), rd)
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
		reasons = append(reasons, "content must be a base64 string")
	case err != nil:
		return err
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
		return &invalidError{reasons}
	}

	var rec engine.Record
	dup := false
	rid := w.Header().Get("X-Request-Id")
	err = a.Engine.Update(r.Context(), func(tx *engine.Tx) error {
		if err := a.stillThere(tx, account); err != nil {
			return err
		}
		dk := engine.Key{Namespace: dupNamespace, Tenant: account.tenant(), Name: up.ID().String()}
		if d, err := tx.Get(dk); err == nil {
			if rec, err = tx.Get(fileKey(account, string(d.Meta))); err == nil {
				dup = true
				return nil
			}
		}
		var err error
		rec, err = putFile(tx, fileKey(account, uuid.NewString()), engine.Record{ContentType: ctype}, meta{Link: publink.NewID(), RequestID: rid}, expires, up)
		return err
	})
	if err != nil {
		return err
	}
	d, err := a.describe(r, rec)
	if err != nil {
		return err
	}
	w.Header().Set("Location", d.Location)
	if dup {
		// "The request ID and file location are returned in this
		// response": the request ID that identifies the existing file.
		if m, _ := metaOf(rec); m.RequestID != "" {
			w.Header().Set("X-Request-Id", m.RequestID)
		}
		web.JSON(w, http.StatusFound, d)
		return nil
	}
	d.Location = "" // the 201 body is documented without it
	web.JSON(w, http.StatusCreated, d)
	return nil
}

// tooLarge is the validation reason for content over the limit.
func (a *API) tooLarge() string {
	return fmt.Sprintf("content is larger than %d bytes", a.cfg.MaxContent)
}

// answer writes a file's description, under the request ID of its upload.
func (a *API) answer(w http.ResponseWriter, r *http.Request, rec engine.Record, location bool) error {
	d, err := a.describe(r, rec)
	if err != nil {
		return err
	}
	if m, _ := metaOf(rec); m.RequestID != "" {
		w.Header().Set("X-Request-Id", m.RequestID)
	}
	if location {
		w.Header().Set("Location", d.Location)
	}
	web.JSON(w, http.StatusOK, d)
	return nil
}

func (a *API) get(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("X-Request-Id", requestID())
	account, err := a.authenticate(r)
	if err != nil {
		return err
	}
	rec, err := lookup(a.Engine.GetRecord, account, r.PathValue("id"))
	if err != nil {
		return err
	}
	return a.answer(w, r, rec, true)
}

// updateRequest is PUT's body.
type updateRequest struct {
	ID             string `json:"id"`
	ExpirationDate string `json:"expirationDate"`
}

func (a *API) update(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("X-Request-Id", requestID())
	account, err := a.authenticate(r)
	if err != nil {
		return err
	}
	var req updateRequest
	if err := web.DecodeJSON(r.Body, &req); err != nil || req.ID == "" {
		return invalidf("bad PUT body: %v", err)
	}
	d, bad := a.parseDate(req.ExpirationDate)
	if bad != nil {
		return &invalidError{bad}
	}
	var rec engine.Record
	err = a.Engine.Update(r.Context(), func(tx *engine.Tx) error {
		cur, err := lookup(tx.Get, account, req.ID)
		if err != nil {
			return err
		}
		m, err := metaOf(cur)
		if err != nil {
			return err
		}
		rec, err = putFile(tx, cur.Key, engine.Record{Blob: cur.Blob, ContentType: cur.ContentType}, m, d, nil)
		return err
	})
	if err != nil {
		return err
	}
	return a.answer(w, r, rec, false)
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("X-Request-Id", requestID())
	account, err := a.authenticate(r)
	if err != nil {
		return err
	}
	err = a.Engine.Update(r.Context(), func(tx *engine.Tx) error {
		cur, err := lookup(tx.Get, account, r.PathValue("id"))
		if err != nil {
			return err
		}
		return deleteFile(tx, cur)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
