package mediaservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/keyspace"
	"github.com/cairnstore/cairn/server/internal/publink"
	"github.com/cairnstore/cairn/server/internal/records"
)

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
	namespace  = keyspace.MediaService
	byNS       = keyspace.MediaServiceBy
	createdNS  = keyspace.MediaServiceCreated
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

// byKey is the index record of an asset whose path holds value: in the
// asset's tenant, named by the pair (JSON, so that no value's prefix is
// a prefix of another's) and then the asset's id.
func byKey(tenant, path, value, id string) engine.Key {
	return engine.Key{Namespace: byNS, Tenant: tenant, Name: byPrefix(path, value) + id}
}

// byPrefix is the prefix of the names of the index records of path=value.
func byPrefix(path, value string) string {
	b, _ := json.Marshal([]string{path, value})
	return string(b) + "/"
}

// Migrate moves the index records an earlier version kept under tenants
// "<tenant>/<path>=<value>" into their tenant, once; the server runs it
// at start.
func Migrate(ctx context.Context, e *engine.Engine) error {
	return records.Migrate(ctx, e, "mediaservice.index-names", namespace, func(tx *engine.Tx, rec engine.Record) error {
		st, err := decodeStored(rec)
		if err != nil {
			return err
		}
		tenant := rec.Key.Tenant
		for path, vals := range indexValues(&st.Asset) {
			for _, v := range vals {
				old := engine.Key{Namespace: byNS, Tenant: tenant + "/" + path + "=" + v, Name: st.ID}
				if err := tx.Delete(old); err != nil && !errors.Is(err, engine.ErrNotFound) {
					return err
				}
				if _, err := tx.Put(byKey(tenant, path, v, st.ID), engine.Record{}, nil); err != nil {
					return err
				}
			}
		}
		return nil
	})
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

// assets decodes asset records.
var assets = records.Store[stored]{Namespace: namespace, What: "asset"}

func decodeStored(rec engine.Record) (*stored, error) {
	st, err := assets.Decode(rec)
	return &st, err
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
			as.URL = a.BaseURL(r) + publink.Path(st.PublicLink, name)
		} else {
			as.URL = a.BaseURL(r) + "/media/" + tenant + "/assets/" + url.PathEscape(as.ID) + "/download"
		}
	}
	if as.RefIDs == nil {
		as.RefIDs = []RefID{}
	}
	return as
}
