package oceanmedia

import (
	"context"
	"encoding/json"

	"github.com/cairnstore/cairn/engine"
)

// SetListBatch sets how many index records a collection reads at a time,
// and returns a function that puts it back.
func SetListBatch(n int) func() {
	old := listBatch
	listBatch = n
	return func() { listBatch = old }
}

// OldLayout rewrites every medium's index records as an earlier version
// kept them (under tenants "all", "field=value", and a field's name for
// its values), for a test of Migrate.
func OldLayout(ctx context.Context, e *engine.Engine) error {
	return e.Update(ctx, func(tx *engine.Tx) error {
		for rec, err := range e.Namespace(namespace) {
			if err != nil {
				return err
			}
			m, err := decodeMedium(rec)
			if err != nil {
				return err
			}
			id := rec.Key.Name
			if err := deleteIndex(tx, m, id); err != nil {
				return err
			}
			meta, _ := json.Marshal(newEntry(m, id))
			exp := m.expires()
			tenants := []string{"all"}
			for _, f := range indexed {
				tenants = append(tenants, f+"="+m.field(f))
				tx.Delete(engine.Key{Namespace: valuesNamespace, Name: valuePrefix(f, m.field(f))})
				if _, err := tx.Put(engine.Key{Namespace: valuesNamespace, Tenant: f, Name: m.field(f)}, engine.Record{}, nil); err != nil {
					return err
				}
			}
			for _, t := range tenants {
				if _, err := tx.Put(engine.Key{Namespace: byNamespace, Tenant: t, Name: byName(m, id)}, engine.Record{Meta: meta, Expires: exp}, nil); err != nil {
					return err
				}
			}
			if _, err := tx.Put(uniqueKey(m), engine.Record{Meta: []byte(id), Expires: exp}, nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// IndexTenants are the tenants of the index records, for a test that
// none holds anything but a tenant.
func IndexTenants(e *engine.Engine) ([]string, error) {
	var out []string
	for _, ns := range []string{byNamespace, valuesNamespace, uniqueNamespace} {
		for rec, err := range e.Namespace(ns) {
			if err != nil {
				return nil, err
			}
			if rec.Key.Tenant != "" {
				out = append(out, rec.Key.Tenant)
			}
		}
	}
	return out, nil
}
