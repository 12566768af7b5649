package records

import (
	"context"
	"errors"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/keyspace"
)

// Migrate runs a change of the index's layout once: fix is called for
// every record of namespace, of every tenant, a batch of them per
// transaction, and then the migration's name is recorded, so that the
// next start skips it. fix must be idempotent: a crash before the name
// is recorded runs it again over records it already fixed.
func Migrate(ctx context.Context, e *engine.Engine, name, namespace string, fix func(*engine.Tx, engine.Record) error) error {
	done := engine.Key{Namespace: keyspace.Migrations, Name: name}
	if _, err := e.GetRecord(done); err == nil || !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	var batch []engine.Record
	flush := func() error {
		err := e.Update(ctx, func(tx *engine.Tx) error {
			for _, rec := range batch {
				if err := fix(tx, rec); err != nil {
					return err
				}
			}
			return nil
		})
		batch = batch[:0]
		return err
	}
	for rec, err := range e.Namespace(namespace) {
		if err != nil {
			return err
		}
		if batch = append(batch, rec); len(batch) == 256 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	return e.Update(ctx, func(tx *engine.Tx) error {
		_, err := tx.Put(done, engine.Record{}, nil)
		return err
	})
}
