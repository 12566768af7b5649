package mediaservice

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/cairnstore/cairn/internal/variant"
	"github.com/cairnstore/cairn/server/internal/signurl"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/internal/blobhttp"
	"github.com/cairnstore/cairn/server/internal/publink"
	"github.com/cairnstore/cairn/server/internal/web"
)

func (a *API) create(w http.ResponseWriter, r *http.Request) error {
	tenant := r.PathValue("tenant")
	client, err := a.authorize(r, tenant, errTenant, ScopeManage)
	if err != nil {
		return err
	}
	b, up, fname, ftype, typ, err := a.readRequest(r, client)
	if up != nil {
		defer up.Close()
	}
	if err == nil {
		err = b.validate(typ, true)
	}
	if err != nil {
		return err
	}
	now := a.Now().UTC().Format(timeLayout)
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
	err = a.Engine.Update(r.Context(), func(tx *engine.Tx) error {
		if _, err := tx.Get(assetKey(tenant, st.ID)); err == nil {
			return engine.ErrExists
		}
		return putAsset(tx, tenant, st, nil, up, engine.Record{})
	})
	if err != nil {
		return err
	}
	web.JSON(w, http.StatusCreated, map[string]string{"id": st.ID})
	return nil
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
	rec, err := a.Engine.GetRecord(assetKey(tenant, id))
	if err != nil {
		return nil, rec, err
	}
	st, err := decodeStored(rec)
	return st, rec, err
}

func (a *API) retrieve(w http.ResponseWriter, r *http.Request) error {
	tenant := r.PathValue("tenant")
	if _, err := a.authorize(r, tenant, errNotFound, ScopeRead); err != nil {
		return err
	}
	st, _, err := a.load(tenant, r.PathValue("assetId"))
	if err != nil {
		return err
	}
	web.JSON(w, http.StatusOK, a.render(r, tenant, st))
	return nil
}

func (a *API) update(w http.ResponseWriter, r *http.Request) error {
	tenant, id := r.PathValue("tenant"), r.PathValue("assetId")
	client, err := a.authorize(r, tenant, errTenant, ScopeManage)
	if err != nil {
		return err
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
		return err
	}
	err = a.Engine.Update(r.Context(), func(tx *engine.Tx) error {
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
		st.Metadata.ModifiedAt = a.Now().UTC().Format(timeLayout)
		if typ == "LINK" {
			st.URL = b.URL
		} else {
			st.Details = blobDetails(b.Details, fname, ftype, up)
		}
		return putAsset(tx, tenant, &st, old, up, cur)
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) delete(w http.ResponseWriter, r *http.Request) error {
	tenant, id := r.PathValue("tenant"), r.PathValue("assetId")
	if _, err := a.authorize(r, tenant, errNotFound, ScopeManage); err != nil {
		return err
	}
	err := a.Engine.Update(r.Context(), func(tx *engine.Tx) error {
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
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) download(w http.ResponseWriter, r *http.Request) error {
	tenant := r.PathValue("tenant")
	if signurl.Signed(r) {
		if err := a.verifySigned(r, tenant, r.PathValue("assetId")); err != nil {
			return err
		}
	} else if _, err := a.authorize(r, tenant, errNotFound, ScopeRead); err != nil {
		return err
	}
	st, rec, err := a.load(tenant, r.PathValue("assetId"))
	if err != nil {
		return err
	}
	if st.Type == "LINK" || st.PublicLink != "" {
		to := a.render(r, tenant, st).URL
		if st.Type != "LINK" && variant.Asked(r.URL.Query()) {
			// The variant of the public file: its options go along.
			q := url.Values{}
			for _, p := range variant.Params {
				if v, ok := r.URL.Query()[p]; ok {
					q[p] = v
				}
			}
			to += "?" + q.Encode()
		}
		http.Redirect(w, r, to, http.StatusMovedPermanently)
		return nil
	}
	name := ""
	if st.Details != nil {
		name = st.Details.Filename
	}
	release, err := a.Limits.Downloads.Acquire(r.Context(), web.Address(r))
	if err != nil {
		return err
	}
	defer release()
	return blobhttp.Serve(w, r, a.Engine, rec, name, blobhttp.Private(), a.Variants) // a PRIVATE BLOB (a PUBLIC one was redirected)
}
