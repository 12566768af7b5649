package index

import (
	"bytes"
	"errors"
	"fmt"
	"iter"

	"github.com/cockroachdb/pebble/v2"
)

// The index keeps its entries in an ordered key/value store: Pebble, the
// embedded default, or PostgreSQL (postgres.go), for a store that several
// nodes share. This is all the index asks of one.

// reader reads entries: the live store, or a snapshot of it.
type reader interface {
	// get returns a copy of key's value.
	get(key []byte) ([]byte, bool, error)
	// scan yields the entries with lower ≤ key < upper (upper nil: no
	// bound) from start (nil: lower) in key order, as of the call; the
	// slices yielded are valid until the next.
	scan(lower, upper, start []byte) iter.Seq2[kv, error]
}

// store is an ordered key/value store with atomic batches.
type store interface {
	reader
	newBatch() batch
	// snapshot returns a consistent reader as of now, and what releases it.
	snapshot() (reader, func() error)
	// apply commits, unsynced, the updates of a batch's repr.
	apply(repr []byte) error
	// flush makes everything committed unsynced durable.
	flush() error
	// checkpoint writes a consistent copy to dir (ErrUnsupported if the
	// store has its own tools for that).
	checkpoint(dir string) error
	close() error
}

// batch collects updates that commit applies at once.
type batch interface {
	set(k, v []byte)
	del(k []byte)
	// merge combines v with the key's value by the merge operands of
	// merge.go.
	merge(k, v []byte)
	// deleteRange deletes the keys start ≤ key < end.
	deleteRange(start, end []byte)
	// expect makes the commit conditional (shared.go); a store one
	// process has need not check.
	expect(x expectation)
	// repr encodes the updates for apply.
	repr() []byte
	empty() bool
	// commit applies the updates atomically, and durably if sync.
	commit(sync bool) error
	close()
}

// ErrUnsupported: an operation the index's store does not have (a
// checkpoint of a PostgreSQL index: use PostgreSQL's own tools).
var ErrUnsupported = errors.New("index: not supported by this store")

// pebbleStore is the index in Pebble.
type pebbleStore struct {
	pebbleReader
	db *pebble.DB
}

type pebbleReader struct{ r pebble.Reader }

func (p pebbleReader) get(key []byte) ([]byte, bool, error) {
	val, closer, err := p.r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("index: get %q: %w", key, err)
	}
	out := append([]byte(nil), val...)
	closer.Close()
	return out, true, nil
}

func (p pebbleReader) scan(lower, upper, start []byte) iter.Seq2[kv, error] {
	return func(yield func(kv, error) bool) {
		it, err := p.r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
		if err != nil {
			yield(kv{}, fmt.Errorf("index: iterate: %w", err))
			return
		}
		defer it.Close()
		var ok bool
		if start != nil {
			ok = it.SeekGE(start)
		} else {
			ok = it.First()
		}
		for ; ok; ok = it.Next() {
			val, err := it.ValueAndErr()
			if err != nil {
				yield(kv{}, fmt.Errorf("index: iterate: %w", err))
				return
			}
			if !yield(kv{key: it.Key(), value: val}, nil) {
				return
			}
		}
		if err := it.Error(); err != nil {
			yield(kv{}, fmt.Errorf("index: iterate: %w", err))
		}
	}
}

func (p *pebbleStore) newBatch() batch { return &pebbleBatch{b: p.db.NewBatch()} }

func (p *pebbleStore) snapshot() (reader, func() error) {
	s := p.db.NewSnapshot()
	return pebbleReader{r: s}, s.Close
}

func (p *pebbleStore) apply(repr []byte) error {
	b := p.db.NewBatch()
	defer b.Close()
	if err := b.SetRepr(bytes.Clone(repr)); err != nil {
		return fmt.Errorf("index: apply: %w", err)
	}
	return commit(b, pebble.NoSync)
}

func (p *pebbleStore) flush() error {
	if err := p.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("index: flush: %w", err)
	}
	return nil
}

func (p *pebbleStore) checkpoint(dir string) error {
	if err := p.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("index: checkpoint to %s: %w", dir, err)
	}
	return nil
}

func (p *pebbleStore) close() error { return p.db.Close() }

type pebbleBatch struct{ b *pebble.Batch }

// A batch Set, Delete or Merge fails only on a closed batch.
func (b *pebbleBatch) set(k, v []byte)   { _ = b.b.Set(k, v, nil) }
func (b *pebbleBatch) del(k []byte)      { _ = b.b.Delete(k, nil) }
func (b *pebbleBatch) merge(k, v []byte) { _ = b.b.Merge(k, v, nil) }
func (b *pebbleBatch) deleteRange(start, end []byte) {
	_ = b.b.DeleteRange(start, end, nil)
}
func (b *pebbleBatch) expect(expectation) {}
func (b *pebbleBatch) repr() []byte       { return bytes.Clone(b.b.Repr()) }
func (b *pebbleBatch) empty() bool        { return b.b.Empty() }

func (b *pebbleBatch) commit(sync bool) error {
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	defer b.close()
	return commit(b.b, opts)
}

// close discards an uncommitted batch; after commit it does nothing. It
// may be called more than once: Pebble recycles a closed batch through a
// pool, so closing its *pebble.Batch twice could release a batch another
// goroutine has since taken.
func (b *pebbleBatch) close() {
	if b.b != nil {
		b.b.Close()
		b.b = nil
	}
}
