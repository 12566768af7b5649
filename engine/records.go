package engine

import (
	"context"
	"fmt"
	"io"
	"iter"
	"time"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/internal/blob"
)

// Write says how PutRecord stores a record. A write that depends on what
// is stored reads and writes in one Update instead.
type Write struct {
	ContentType string
	Meta        []byte
	// Expires, if not zero, schedules the record's deletion.
	Expires time.Time
}

// PutRecord streams r into the store and, atomically with the references
// it takes, writes the record at k. It returns the record as stored.
func (e *Engine) PutRecord(ctx context.Context, k Key, r io.Reader, w Write) (Record, error) {
	if err := validKey(k); err != nil {
		return Record{}, err
	}
	up, err := e.Upload(ctx, r)
	if err != nil {
		return Record{}, err
	}
	defer up.Close()
	var out Record
	err = e.update(ctx, up.ahead(k), func(tx *Tx) error {
		var err error
		out, err = tx.Put(k, Record{ContentType: w.ContentType, Meta: w.Meta, Expires: w.Expires}, up)
		return err
	})
	return out, err
}

// DeleteRecord removes the record at k (ErrNotFound if there is none).
func (e *Engine) DeleteRecord(ctx context.Context, k Key) error {
	return e.Update(ctx, func(tx *Tx) error { return tx.Delete(k) })
}

// GetRecord returns the record at k, or ErrNotFound. A record past its
// expiry time is not found, even before the sweeper deletes it.
func (e *Engine) GetRecord(k Key) (Record, error) {
	if err := validKey(k); err != nil {
		return Record{}, err
	}
	r, ok, err := e.idx.Record(k)
	if err != nil {
		return Record{}, corrupt(err)
	}
	if !ok || e.expired(r) {
		return Record{}, fmt.Errorf("%w: record %s", ErrNotFound, k)
	}
	return fromIndex(k, r), nil
}

// Records yields the records of (namespace, tenant) whose names begin with
// prefix, in name order, starting at the first name ≥ start.
func (e *Engine) Records(namespace, tenant, prefix, start string) iter.Seq2[Record, error] {
	return e.live(e.idx.Records(namespace, tenant, prefix, start))
}

// Namespace yields every record of namespace, of every tenant, in key
// order: for a pass over all of an API's records (a migration), not for
// serving requests.
func (e *Engine) Namespace(namespace string) iter.Seq2[Record, error] {
	return e.live(e.idx.NamespaceRecords(namespace))
}

// live yields the index's records that have not expired; an index entry
// that does not read is corruption.
func (e *Engine) live(entries iter.Seq2[index.RecordEntry, error]) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		for r, err := range entries {
			if err != nil {
				yield(Record{}, corrupt(err))
				return
			}
			if e.expired(r.Record) {
				continue
			}
			if !yield(fromIndex(r.Key, r.Record), nil) {
				return
			}
		}
	}
}

// Batches yields the records Records yields, at most n at a time, each
// batch read by an iterator of its own that is closed before the batch is
// yielded: a caller may take its time over a batch (write it to a slow
// client, delete it in a transaction) without holding the index open
// meanwhile. A record written or deleted between two batches may or may
// not be yielded; none is yielded twice.
func (e *Engine) Batches(namespace, tenant, prefix, start string, n int) iter.Seq2[[]Record, error] {
	n = max(n, 1)
	return func(yield func([]Record, error) bool) {
		after, resumed := start, false
		for {
			recs := make([]Record, 0, min(n, 1024))
			for rec, err := range e.Records(namespace, tenant, prefix, after) {
				if err != nil {
					yield(nil, err)
					return
				}
				if resumed && rec.Key.Name == after {
					continue
				}
				if recs = append(recs, rec); len(recs) == n {
					break
				}
			}
			if len(recs) == 0 || !yield(recs, nil) || len(recs) < n {
				return
			}
			after, resumed = recs[len(recs)-1].Key.Name, true
		}
	}
}

// DeleteAll deletes every record of namespace and tenant, a batch of at
// most 256 per transaction; del deletes one in the transaction (the
// record, and what goes with it: its index records, its public link). It
// stops at the first error. APIs use it to purge an owner's files.
func (e *Engine) DeleteAll(ctx context.Context, namespace, tenant string, del func(*Tx, Record) error) error {
	for recs, err := range e.Batches(namespace, tenant, "", "", 256) {
		if err != nil {
			return err
		}
		err := e.Update(ctx, func(tx *Tx) error {
			for _, rec := range recs {
				if err := del(tx, rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Put streams r into the store and returns its ID and size. The content is
// durable and readable with Open, but no record refers to it: it is kept
// until garbage collection reclaims unreferenced content. APIs store
// content with PutRecord or Update instead.
func (e *Engine) Put(ctx context.Context, r io.Reader) (blob.ID, int64, error) {
	up, err := e.Upload(ctx, r)
	if err != nil {
		return blob.ID{}, 0, err
	}
	defer up.Close()
	err = e.Update(ctx, func(tx *Tx) error { return tx.addUnreferenced(up) })
	if err != nil {
		return blob.ID{}, 0, err
	}
	return up.id, up.size, nil
}
