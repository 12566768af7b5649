package engine

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"time"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/segment"
)

// In object mode every transaction's index changes are also logged in
// the segments, so that the bucket alone is enough to rebuild the store
// (RestoreObjects) when the data folder is lost. A transaction's batch,
// in Pebble's encoding and numbered, is appended as a log record and
// synced (put into the object store, with the chunks appended before it)
// before the batch is committed to the local index: what is acknowledged
// is in the bucket. The number orders the batches for replay (compaction
// copies log records forward, so their place in the segments does not);
// transactions that touch the same keys hold the same stripe locks from
// numbering to commit, so they are numbered in the order they commit.
//
// A log record whose sync failed is voided in place before its segment
// can be put (segment.Writer.Void), so that a failed transaction is not
// replayed; if the segment was put meanwhile after all, the record is in
// the bucket and the transaction commits.

// logSeqMeta is the meta key of the last log number committed.
const logSeqMeta = "logseq"

// logged reports whether transactions are logged in the object store:
// in object mode with the index in the data folder, where the log is
// what survives the folder's loss. An index in PostgreSQL survives it by
// itself.
func (e *Engine) logged() bool { return e.opts.Objects != nil && e.opts.Index == "" }

// initLogSeq starts log numbers past any used before: past the last one
// committed and past the clock, in nanoseconds (numbers are given one
// per transaction, far slower than the clock, so a number used before a
// crash and never committed is below the clock at the next open).
func (e *Engine) initLogSeq() error {
	v, ok, err := e.idx.Meta(logSeqMeta)
	if err != nil {
		return err
	}
	seq := uint64(time.Now().UnixNano())
	if ok && len(v) == 8 {
		seq = max(seq, binary.BigEndian.Uint64(v))
	}
	e.logSeq.Store(seq)
	return nil
}

// logCommit logs b and makes it durable in the object store, before b is
// committed. Called with the transaction's locks held.
func (e *Engine) logCommit(b *index.Batch) error {
	seq := e.logSeq.Add(1)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], seq)
	b.SetMeta(logSeqMeta, n[:])
	b.SetApplied(seq)
	payload := append(n[:], b.Repr()...)
	loc, err := e.w.AppendLog(payload)
	if err != nil {
		return e.fail(err)
	}
	serr := e.w.Sync(loc.End())
	if serr == nil {
		return nil
	}
	if verr := e.w.Void(loc); verr != nil {
		if errors.Is(verr, segment.ErrDurable) {
			return nil // persisted after all, by another sync: it stands
		}
		e.log.Error("withdrawing the log record of a failed transaction", "err", verr)
	}
	return e.fail(serr)
}

// reconciledMeta is the meta key of how far the logged transactions are
// known committed in the local index: every one in a segment up to the
// first number, and every one numbered up to the second, is.
const reconciledMeta = "logreconciled"

// reconcileLog rolls forward, at open, the logged transactions whose
// local commit a crash cut off: their log records reached the object
// store (with the chunks before them) but the process died before
// committing them to the local index. The index would otherwise disagree
// with the bucket's log, and GC could compact away the chunks that those
// transactions, replayed by a restore, reference. No later transaction
// can have touched their keys: they held their stripe locks until the
// crash.
//
// Only segments sealed since the last reconciliation are read, and only
// log records numbered past it count (compaction copies older ones into
// new segments); a committed transaction is marked applied in its own
// batch, and the marks go once all is reconciled.
func (e *Engine) reconcileLog(ctx context.Context, sealed []index.Segment) error {
	var fromSeg, fromSeq uint64
	if v, ok, err := e.idx.Meta(reconciledMeta); err != nil {
		return err
	} else if ok && len(v) == 16 {
		fromSeg, fromSeq = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
	}
	type logged struct {
		seq  uint64
		repr []byte
	}
	var pending []logged
	lastSeg, lastSeq := fromSeg, fromSeq
	for _, s := range sealed {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.Sealed == 0 || s.ID <= fromSeg {
			continue
		}
		lastSeg = max(lastSeg, s.ID)
		sf, err := e.files.acquire(s.ID)
		if err != nil {
			return err
		}
		sc := segment.NewScanner(sf.f, s.Sealed, segment.FileName(s.ID), segment.FileHeaderSize, e.comp)
		for sc.Next() {
			r := sc.Record()
			if r.Kind != segment.KindLog || len(r.Payload) < 8 {
				continue
			}
			seq := binary.BigEndian.Uint64(r.Payload)
			if seq <= fromSeq {
				continue // a copy compaction made of one reconciled before
			}
			lastSeq = max(lastSeq, seq)
			done, err := e.idx.Applied(seq)
			if err != nil {
				e.files.release(sf)
				return err
			}
			if !done && !slices.ContainsFunc(pending, func(l logged) bool { return l.seq == seq }) {
				pending = append(pending, logged{seq, bytes.Clone(r.Payload[8:])})
			}
		}
		e.files.release(sf)
		if err := sc.Err(); err != nil {
			return corrupt(err)
		}
	}
	slices.SortFunc(pending, func(a, b logged) int { return cmp.Compare(a.seq, b.seq) })
	for _, l := range pending {
		if err := e.idx.Apply(l.repr); err != nil {
			return corrupt(err)
		}
	}
	if len(pending) > 0 {
		e.log.Warn("rolled forward transactions whose log reached the object store before a crash cut their commit off", "transactions", len(pending))
	}
	if lastSeg == fromSeg && lastSeq == fromSeq {
		return nil
	}
	b := e.idx.NewBatch()
	var v [16]byte
	binary.BigEndian.PutUint64(v[:], lastSeg)
	binary.BigEndian.PutUint64(v[8:], lastSeq)
	b.SetMeta(reconciledMeta, v[:])
	if err := b.Commit(); err != nil {
		return err
	}
	return e.idx.ClearApplied()
}
