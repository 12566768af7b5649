package mediaservice

import (
	"context"
	"strings"

	"github.com/cairnstore/cairn/engine"
)

// OldLayout rewrites every asset's index records as an earlier version
// kept them (under tenants "<tenant>/<path>=<value>"), for a test of
// Migrate.
func OldLayout(ctx context.Context, e *engine.Engine) error {
	return e.Update(ctx, func(tx *engine.Tx) error {
		for rec, err := range e.Namespace(namespace) {
			if err != nil {
				return err
			}
			st, err := decodeStored(rec)
			if err != nil {
				return err
			}
			for path, vals := range indexValues(&st.Asset) {
				for _, v := range vals {
					if err := tx.Delete(byKey(rec.Key.Tenant, path, v, st.ID)); err != nil {
						return err
					}
					old := engine.Key{Namespace: byNS, Tenant: rec.Key.Tenant + "/" + path + "=" + v, Name: st.ID}
					if _, err := tx.Put(old, engine.Record{}, nil); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}

// IndexTenants are the tenants of the index records that are not plain
// tenants, for a test that there are none.
func IndexTenants(e *engine.Engine) ([]string, error) {
	var out []string
	for rec, err := range e.Namespace(byNS) {
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(rec.Key.Tenant, "/=") {
			out = append(out, rec.Key.Tenant)
		}
	}
	return out, nil
}
