package oceanmedia

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/keyspace"
	"github.com/cairnstore/cairn/server/internal/publink"
	"github.com/cairnstore/cairn/server/internal/records"
)

// medium is what the store keeps of a Medium, as JSON in its record's
// Meta; the bytes are the record's blob.
type medium struct {
	App         string     `json:"app"`
	Context     string     `json:"context"`
	Name        string     `json:"name"`
	Locale      string     `json:"locale"`
	Usage       string     `json:"usage"`
	FileName    string     `json:"file_name"`
	ContentType string     `json:"content_type"`
	Bytesize    int64      `json:"bytesize"`
	Tags        string     `json:"tags"`
	DeleteAt    *time.Time `json:"delete_at"`
	Email       *string    `json:"email"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	LockVersion int64      `json:"lock_version"`
	CreatedBy   string     `json:"created_by"`
	UpdatedBy   string     `json:"updated_by"`
	// Link is the public link ID of the url hyperlink.
	Link string `json:"link"`
}

// indexed are the properties collections match and group on, in the
// order a match picks its driving index (the most selective first).
var indexed = []string{"name", "context", "app", "content_type", "locale"}

func (m *medium) field(f string) string {
	switch f {
	case "app":
		return m.App
	case "context":
		return m.Context
	case "name":
		return m.Name
	case "locale":
		return m.Locale
	case "content_type":
		return m.ContentType
	}
	return ""
}

var localeRE = regexp.MustCompile(`^[a-z]{2}-[A-Z]{2}$`)

// maxField bounds string properties (they become index keys).
const maxField = 255

// apply sets the properties given in a request body (flat JSON), as
// PATCH does; unknown properties are ignored. Type errors are recorded.
func (m *medium) apply(raw map[string]json.RawMessage, errs fieldErrors) {
	str := func(key string, dst *string) {
		v, ok := raw[key]
		if !ok {
			return
		}
		var s *string
		if json.Unmarshal(v, &s) != nil {
			errs.add(key, "is invalid")
			return
		}
		if s == nil {
			*dst = ""
			return
		}
		*dst = *s
	}
	str("app", &m.App)
	str("context", &m.Context)
	str("name", &m.Name)
	str("locale", &m.Locale)
	str("usage", &m.Usage)
	str("file_name", &m.FileName)
	str("content_type", &m.ContentType)
	str("tags", &m.Tags)
	if v, ok := raw["bytesize"]; ok {
		var n *int64
		if json.Unmarshal(v, &n) != nil || n != nil && *n < 0 {
			errs.add("bytesize", "is not a number")
		} else if n != nil {
			m.Bytesize = *n
		}
	}
	if v, ok := raw["email"]; ok {
		var s *string
		if json.Unmarshal(v, &s) != nil {
			errs.add("email", "is invalid")
		} else if s == nil || *s == "" {
			m.Email = nil
		} else {
			m.Email = s
		}
	}
	if v, ok := raw["delete_at"]; ok {
		var s *string
		switch {
		case json.Unmarshal(v, &s) != nil:
			errs.add("delete_at", "is invalid")
		case s == nil || *s == "":
			m.DeleteAt = nil
		default:
			t, err := time.Parse(time.RFC3339, *s)
			if err != nil {
				errs.add("delete_at", "is invalid")
				break
			}
			t = t.UTC().Truncate(time.Second)
			m.DeleteAt = &t
		}
	}
}

// validate checks a medium as the original model did, and that the
// properties that name it (and go into its autodelete notification) hold
// no control characters.
func (m *medium) validate(errs fieldErrors) {
	for _, f := range []struct {
		name, v string
	}{{"app", m.App}, {"context", m.Context}, {"name", m.Name}, {"locale", m.Locale}, {"content_type", m.ContentType}, {"file_name", m.FileName}} {
		switch {
		case strings.TrimSpace(f.v) == "":
			errs.add(f.name, "can't be blank")
		case len(f.v) > maxField:
			errs.add(f.name, fmt.Sprintf("is too long (maximum is %d characters)", maxField))
		case strings.ContainsFunc(f.v, unicode.IsControl) || !utf8.ValidString(f.v):
			errs.add(f.name, "is invalid")
		}
	}
	if m.Locale != "" && !localeRE.MatchString(m.Locale) {
		errs.add("locale", "is invalid")
	}
	for _, f := range []struct{ name, v string }{{"usage", m.Usage}, {"tags", m.Tags}} {
		if len(f.v) > 4096 {
			errs.add(f.name, "is too long (maximum is 4096 characters)")
		}
	}
	if m.Email != nil && !validEmail(*m.Email) {
		errs.add("email", "is invalid")
	}
}

// validEmail: one bare address (RFC 5322, as net/mail parses it), at most
// 254 bytes.
func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s && len(s) <= 254
}

// expires is the record expiry of a medium: its delete_at.
func (m *medium) expires() time.Time {
	if m.DeleteAt == nil {
		return time.Time{}
	}
	return *m.DeleteAt
}

// Index records (content-less, expiring with the medium):
//   - oceanmedia.unique / "" / [app,context,name,locale,content_type] → id
//   - oceanmedia.by / "<field>=<value>" and "all" / "<updated_at>/<id>" → entry
//   - oceanmedia.values / <field> / <value>: the distinct values, for group
const (
	namespace       = keyspace.OceanMedia
	uniqueNamespace = keyspace.OceanMediaUnique
	byNamespace     = keyspace.OceanMediaBy
	valuesNamespace = keyspace.OceanMediaValues
)

func mediumKey(id string) engine.Key { return engine.Key{Namespace: namespace, Name: id} }

func uniqueKey(m *medium) engine.Key {
	b, _ := json.Marshal([]string{m.App, m.Context, m.Name, m.Locale, m.ContentType})
	return engine.Key{Namespace: uniqueNamespace, Name: string(b)}
}

// byName orders index entries by updated_at, then id.
func byName(m *medium, id string) string {
	return fmt.Sprintf("%020d/%s", m.UpdatedAt.UnixNano(), id)
}

// Media have no tenant: their index records are named for what they
// index. A by record's name is a prefix (every medium's, or one field's
// value) and then byName; a values record's name is a field's value.
// Prefixes are JSON, so no value's prefix is a prefix of another's.
const allPrefix = `["all"]/`

// valuePrefix is the prefix of the by records of media whose field has
// value, and the name of value's values record.
func valuePrefix(field, value string) string {
	b, _ := json.Marshal([]string{field, value})
	return string(b) + "/"
}

// fieldPrefix is the prefix of the names of field's values records.
func fieldPrefix(field string) string {
	b, _ := json.Marshal([]string{field})
	return string(b[:len(b)-1]) + ","
}

// valueOf is the value a values record of field names.
func valueOf(name string) (string, error) {
	var fv []string
	if err := json.Unmarshal([]byte(strings.TrimSuffix(name, "/")), &fv); err != nil || len(fv) != 2 {
		return "", fmt.Errorf("%w: values record %q", engine.ErrCorrupt, name)
	}
	return fv[1], nil
}

// byPrefixes are the prefixes of a medium's by records.
func byPrefixes(m *medium) []string {
	out := []string{allPrefix}
	for _, f := range indexed {
		out = append(out, valuePrefix(f, m.field(f)))
	}
	return out
}

func byKey(prefix string, m *medium, id string) engine.Key {
	return engine.Key{Namespace: byNamespace, Name: prefix + byName(m, id)}
}

// entry is what an index entry carries, so that collections filter
// without loading every medium.
type entry struct {
	ID       string `json:"id"`
	App      string `json:"app"`
	Context  string `json:"context"`
	Name     string `json:"name"`
	Locale   string `json:"locale"`
	Type     string `json:"content_type"`
	FileName string `json:"file_name"`
}

func (en *entry) field(f string) string {
	switch f {
	case "app":
		return en.App
	case "context":
		return en.Context
	case "name":
		return en.Name
	case "locale":
		return en.Locale
	case "content_type":
		return en.Type
	}
	return ""
}

func newEntry(m *medium, id string) entry {
	return entry{ID: id, App: m.App, Context: m.Context, Name: m.Name, Locale: m.Locale, Type: m.ContentType, FileName: m.FileName}
}

// putIndex writes a medium's unique, by and values entries.
func putIndex(tx *engine.Tx, m *medium, id string) error {
	exp := m.expires()
	if _, err := tx.Put(uniqueKey(m), engine.Record{Meta: []byte(id), Expires: exp}, nil); err != nil {
		return err
	}
	meta, _ := json.Marshal(newEntry(m, id))
	for _, p := range byPrefixes(m) {
		if _, err := tx.Put(byKey(p, m, id), engine.Record{Meta: meta, Expires: exp}, nil); err != nil {
			return err
		}
	}
	for _, f := range indexed {
		k := engine.Key{Namespace: valuesNamespace, Name: valuePrefix(f, m.field(f))}
		if _, err := tx.Get(k); err != nil {
			if _, err := tx.Put(k, engine.Record{}, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteIndex removes a medium's unique and by entries (values are
// cleaned by cleanValues once no medium has them).
func deleteIndex(tx *engine.Tx, m *medium, id string) error {
	del := func(k engine.Key) error {
		if err := tx.Delete(k); err != nil && !isNotFound(err) {
			return err
		}
		return nil
	}
	if err := del(uniqueKey(m)); err != nil {
		return err
	}
	for _, p := range byPrefixes(m) {
		if err := del(byKey(p, m, id)); err != nil {
			return err
		}
	}
	return nil
}

type hyperlink struct {
	Href string `json:"href"`
	Type string `json:"type"`
}

func link(href, typ string) hyperlink { return hyperlink{Href: href, Type: typ} }

func iso(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// render is the documented representation of a medium.
func (a *API) render(r *http.Request, id string, m *medium) map[string]any {
	base := a.BaseURL(r)
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

// media decodes medium records.
var media = records.Store[medium]{Namespace: namespace, What: "medium"}

func decodeMedium(rec engine.Record) (*medium, error) {
	m, err := media.Decode(rec)
	return &m, err
}

// Migrate moves the index records an earlier version kept under tenants
// "field=value" (and "all", and a field's name for its values) to the
// names they have now, once; the server runs it at start.
func Migrate(ctx context.Context, e *engine.Engine) error {
	return records.Migrate(ctx, e, "oceanmedia.index-names", namespace, func(tx *engine.Tx, rec engine.Record) error {
		m, err := decodeMedium(rec)
		if err != nil {
			return err
		}
		id := rec.Key.Name
		old := []engine.Key{{Namespace: byNamespace, Tenant: "all", Name: byName(m, id)}}
		for _, f := range indexed {
			old = append(old,
				engine.Key{Namespace: byNamespace, Tenant: f + "=" + m.field(f), Name: byName(m, id)},
				engine.Key{Namespace: valuesNamespace, Tenant: f, Name: m.field(f)})
		}
		for _, k := range old {
			if k.Name == "" {
				continue // an empty value had no values record
			}
			if err := tx.Delete(k); err != nil && !isNotFound(err) {
				return err
			}
		}
		return putIndex(tx, m, id)
	})
}
