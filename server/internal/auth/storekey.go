package auth

import (
	"context"

	"github.com/cairnstore/cairn/engine"
)

// StoreKey returns the HS256 signing key kept in the store under
// namespace, making it on first use; tokens signed with it survive
// restarts. Each API keeps its own, so that a token of one is never
// accepted by another. The key is kept sealed with the store's key file
// (engine.Seal); a key an earlier version kept in clear is sealed here,
// the first time it is used.
func StoreKey(ctx context.Context, e *engine.Engine, namespace string) ([]byte, error) {
	k := engine.Key{Namespace: namespace, Name: "hs256"}
	purpose := namespace + "/hs256"
	if rec, err := e.GetRecord(k); err == nil {
		key, sealed, err := e.Unseal(purpose, rec.Meta)
		if err != nil || sealed {
			return key, err
		}
	}
	var key []byte
	err := e.Update(ctx, func(tx *engine.Tx) error {
		if rec, err := tx.Get(k); err == nil {
			plain, sealed, err := e.Unseal(purpose, rec.Meta)
			if err != nil || sealed {
				key = plain
				return err
			}
			key = plain // in clear: seal it
		} else {
			key = []byte(NewSecret())
		}
		_, err := tx.Put(k, engine.Record{Meta: e.Seal(purpose, key)}, nil)
		return err
	})
	return key, err
}
