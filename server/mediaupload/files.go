package mediaupload

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/keyspace"
	"github.com/cairnstore/cairn/server/internal/publink"
	"github.com/cairnstore/cairn/server/internal/records"
)

// Namespaces in the index: files; per account the content hash of each
// file (duplicate detection) and the X-Request-Id of its upload (the
// document's other identifier of a file).
const (
	namespace    = keyspace.MediaUpload
	dupNamespace = keyspace.MediaUploadDup
	ridNamespace = keyspace.MediaUploadRID
)

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

// metaOf decodes a file's meta; bad bytes in the index are corruption.
func metaOf(rec engine.Record) (meta, error) { return files.Decode(rec) }

// files decodes file records.
var files = records.Store[meta]{Namespace: namespace, What: "media upload file"}

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

// stillThere checks, inside a write's transaction, that acc is still the
// account of its name, so that a file cannot land in an account deleted
// meanwhile, nor in a new one of the same name.
func (a *API) stillThere(tx *engine.Tx, acc Account) error {
	now, _, err := a.accounts.s.GetTx(tx, "", acc.Name)
	if err != nil || now.ID != acc.ID {
		return errAccountGone
	}
	return nil
}

// putFile writes a file's record, its duplicate and request ID records
// and its public link, all to expire when its expiration date d ends.
func putFile(tx *engine.Tx, k engine.Key, rec engine.Record, m meta, d time.Time, up *engine.Upload) (engine.Record, error) {
	m.Date = d.Format(dateLayout)
	rec.Meta, _ = json.Marshal(m)
	rec.Expires = endOf(d)
	rec, err := tx.Put(k, rec, up)
	if err != nil {
		return rec, err
	}
	if _, err := tx.Put(dupKey(rec), engine.Record{Meta: []byte(k.Name), Expires: rec.Expires}, nil); err != nil {
		return rec, err
	}
	if m.RequestID != "" {
		if _, err := tx.Put(ridKey(k.Tenant, m.RequestID), engine.Record{Meta: []byte(k.Name), Expires: rec.Expires}, nil); err != nil {
			return rec, err
		}
	}
	return rec, publink.Put(tx, m.Link, k, rec.Expires)
}

// deleteFile deletes a file's record, its public link, and its content
// hash and request ID records.
func deleteFile(tx *engine.Tx, file engine.Record) error {
	m, err := metaOf(file)
	if err != nil {
		return err
	}
	if err := tx.Delete(file.Key); err != nil {
		return err
	}
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

// describe is the documented description of a file, with its public
// location.
func (a *API) describe(r *http.Request, rec engine.Record) (info, error) {
	m, err := metaOf(rec)
	if err != nil {
		return info{}, err
	}
	date := rec.Expires.UTC().Format("2006-01-02T15:04:05Z")
	if m.Date != "" {
		date = m.Date + "T00:00:00Z"
	}
	return info{
		ID: rec.Key.Name, ExpirationDate: date, Size: rec.Size, ContentType: rec.ContentType,
		Location: a.BaseURL(r) + publink.Path(m.Link, rec.Key.Name),
	}, nil
}

// dateLayout is an expiration date's.
const dateLayout = "2006-01-02"

// today is the current date, midnight UTC.
func (a *API) today() time.Time {
	return a.Now().UTC().Truncate(24 * time.Hour)
}

// endOf is when a file whose expiration date is d expires: it is kept
// through the whole of its expiration date, and deleted when that UTC day
// ends. (Today is a valid date, "it cannot be in the past", so a file
// must not be gone the moment it is stored.)
func endOf(d time.Time) time.Time { return d.AddDate(0, 0, 1) }

// parseDate checks an expiration date: YYYY-MM-DD, not before today, not
// after today + one year. It returns midnight UTC of that day.
func (a *API) parseDate(s string) (time.Time, []string) {
	d, err := time.Parse(dateLayout, s)
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
