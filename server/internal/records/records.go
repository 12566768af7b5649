// Package records is a typed record store.
//
// A Store is one namespace of index records whose Meta is a T, as JSON.
//
// The APIs' identity stores (users, accounts, clients) are Stores, and
// the APIs decode their own records through them, so that bytes in the
// index that do not decode are always engine.ErrCorrupt, and a missing
// record is always the API's own sentinel.
//
// A Store is a value, safe for concurrent use.
package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"

	"github.com/cairnstore/cairn/engine"
)

// Store is the records of one namespace whose metadata is a T.
type Store[T any] struct {
	Engine    *engine.Engine
	Namespace string
	// What names a record in errors ("API user").
	What string
	// Missing is the sentinel a missing record is reported as (wrapped,
	// with its name); Exists, the one Add reports a taken name as.
	Missing, Exists error
}

// Key is the key of the record name of tenant ("" for none).
func (s Store[T]) Key(tenant, name string) engine.Key {
	return engine.Key{Namespace: s.Namespace, Tenant: tenant, Name: name}
}

// Decode returns the T of rec's metadata; bytes that do not decode are
// engine.ErrCorrupt.
func (s Store[T]) Decode(rec engine.Record) (T, error) {
	var v T
	if err := json.Unmarshal(rec.Meta, &v); err != nil {
		return v, fmt.Errorf("%w: %s %s: %w", engine.ErrCorrupt, s.What, rec.Key.Name, err)
	}
	return v, nil
}

func (s Store[T]) missing(name string) error { return fmt.Errorf("%w: %s", s.Missing, name) }

// Get returns the value of name, or Missing.
func (s Store[T]) Get(tenant, name string) (T, error) {
	v, _, err := s.From(s.Engine.GetRecord, tenant, name)
	return v, err
}

// GetTx is Get inside a transaction; it returns the record too.
func (s Store[T]) GetTx(tx *engine.Tx, tenant, name string) (T, engine.Record, error) {
	return s.From(tx.Get, tenant, name)
}

// From is Get through get: the engine's GetRecord, or a transaction's
// Get, for code that runs either way.
func (s Store[T]) From(get func(engine.Key) (engine.Record, error), tenant, name string) (T, engine.Record, error) {
	var zero T
	rec, err := get(s.Key(tenant, name))
	if errors.Is(err, engine.ErrNotFound) {
		return zero, rec, s.missing(name)
	}
	if err != nil {
		return zero, rec, err
	}
	v, err := s.Decode(rec)
	return v, rec, err
}

// Put writes v as name's record, in a transaction.
func (s Store[T]) Put(tx *engine.Tx, tenant, name string, v T) (engine.Record, error) {
	meta, err := json.Marshal(v)
	if err != nil {
		return engine.Record{}, err
	}
	return tx.Put(s.Key(tenant, name), engine.Record{ContentType: "application/json", Meta: meta}, nil)
}

// Add writes v as name's record, which must not exist (Exists).
func (s Store[T]) Add(ctx context.Context, tenant, name string, v T) error {
	return s.Engine.Update(ctx, func(tx *engine.Tx) error {
		if _, err := tx.Get(s.Key(tenant, name)); err == nil {
			return fmt.Errorf("%w: %s", s.Exists, name)
		} else if !errors.Is(err, engine.ErrNotFound) {
			return err
		}
		_, err := s.Put(tx, tenant, name, v)
		return err
	})
}

// Update applies fn to name's value and writes it back, in one
// transaction; it returns the value written. A missing record is Missing.
func (s Store[T]) Update(ctx context.Context, tenant, name string, fn func(*T) error) (T, error) {
	var v T
	err := s.Engine.Update(ctx, func(tx *engine.Tx) error {
		var err error
		if v, _, err = s.GetTx(tx, tenant, name); err != nil {
			return err
		}
		if err := fn(&v); err != nil {
			return err
		}
		_, err = s.Put(tx, tenant, name, v)
		return err
	})
	return v, err
}

// Delete removes name's record, or answers Missing.
func (s Store[T]) Delete(ctx context.Context, tenant, name string) error {
	err := s.Engine.DeleteRecord(ctx, s.Key(tenant, name))
	if errors.Is(err, engine.ErrNotFound) {
		return s.missing(name)
	}
	return err
}

// All yields tenant's values in name order.
func (s Store[T]) All(tenant string) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for rec, err := range s.Engine.Records(s.Namespace, tenant, "", "") {
			var v T
			if err == nil {
				v, err = s.Decode(rec)
			}
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

// List returns tenant's values in name order.
func (s Store[T]) List(tenant string) ([]T, error) {
	var out []T
	for v, err := range s.All(tenant) {
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
