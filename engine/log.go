package engine

import (
	"encoding/binary"
	"errors"
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
