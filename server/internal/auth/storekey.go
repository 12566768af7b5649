package auth

import (
	"context"

	"github.com/cairnstore/cairn/engine"
)

// StoreKey returns the HS256 signing key kept in the store under
// namespace, making it on first use; tokens signed with it survive
// restarts. Each API keeps its own, so that a token of one is never
// accepted by another.
func StoreKey(ctx context.Context, e *engine.Engine, namespace string) ([]byte, error) {
	k := engine.Key{Namespace: namespace, Name: "hs256"}
	if rec, err := e.GetRecord(k); err == nil {
		return rec.Meta, nil
	}
	var key []byte
	err := e.Update(ctx, func(tx *engine.Tx) error {
		if rec, err := tx.Get(k); err == nil {
			key = rec.Meta
			return nil
		}
		key = []byte(NewSecret())
		_, err := tx.Put(k, engine.Record{Meta: key}, nil)
		return err
	})
	return key, err
}
