package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/segment"
)

// How space comes back (see DESIGN.md, invariant 4):
//
//  1. Deleting a record drops its blob reference in the record's batch; the
//     last reference releases the blob's chunks, and a chunk left without
//     references is deleted from the index at once, its bytes counted dead
//     in its segment. Nothing is scanned to know live and dead bytes.
//  2. What could not be released at once (a blob or chunk pinned by an
//     open reader or by an upload deduplicating onto it; content stored by
//     a bare Put) gets a zero-reference entry. GC releases those older
//     than GCGrace that are no longer pinned or referenced.
//  3. Compaction rewrites sealed segments whose live ratio is under
//     CompactRatio: live records are copied, verified, to the active
//     segment and synced; their locations are repointed in synced batches
//     (only if still where they were, so a concurrent delete or re-upload
//     wins); once no chunk entry points into the old segment its index
//     entries go in one synced batch, then the file, then a directory sync.
//     Bytes appended but never indexed (an upload that failed or crashed)
//     are dead bytes like any other and go with their segment.
//
// GC never races uploads: an upload pins each stored chunk it finds, under
// the chunk's stripe lock, before relying on it, and GC releases a chunk
// only under that lock and only if it is neither referenced nor pinned.
// Compaction leaves alone every segment from the oldest one an in-flight
// upload started in, since those may hold chunks about to be indexed.

// GCReport says what a GC pass found and did.
type GCReport struct {
	// Released zero-reference blobs and chunks.
	ReleasedBlobs, ReleasedChunks int
	// Compacted segments (rewritten and removed), the live chunks and
	// bytes copied out of them, and the segment bytes given back.
	Compacted    int
	CopiedChunks int
	CopiedBytes  int64
	Reclaimed    int64
	// Reclaimable is what a pass would give back: the dead bytes of the
	// segments under the threshold (for a dry run, before any release).
	Reclaimable int64
	// Skipped lists segments that could not be compacted, and why.
	Skipped []string
	// AbortedUploads: in object mode, multipart uploads of segments over
	// a day old that never completed (a process died putting one).
	AbortedUploads int
	// Variants deleted because their original record was gone, expired
	// or held other content (variants.go).
	Variants int
	// Elsewhere: another node of the store holds the GC lease, so this
	// one did nothing (nodes.go).
	Elsewhere bool
}

// GC runs one pass: releases zero-reference entries past the grace
// period, then compacts segments under the live-ratio threshold. With
// dryRun it changes nothing and reports what it would reclaim. Passes are
// serialised; reads and writes go on during one.
func (e *Engine) GC(ctx context.Context, dryRun bool) (GCReport, error) {
	if err := e.begin(); err != nil {
		return GCReport{}, err
	}
	defer e.end()
	e.gcMu.Lock()
	defer e.gcMu.Unlock()
	if e.shared && !dryRun {
		// One node at a time (nodes.go).
		var rep GCReport
		held, err := e.WithLease(ctx, LeaseGC, func(ctx context.Context) error {
			var err error
			rep, err = e.gc(ctx, false)
			return err
		})
		if err == nil && !held {
			rep.Elsewhere = true
		}
		return rep, err
	}
	return e.gc(ctx, dryRun)
}

// gc is a GC pass, with gcMu and (several nodes) the lease held.
func (e *Engine) gc(ctx context.Context, dryRun bool) (GCReport, error) {
	var rep GCReport
	cands, err := e.compactionCandidates()
	if err != nil {
		return rep, err
	}
	for _, c := range cands {
		rep.Reclaimable += c.dead
	}
	if dryRun {
		return rep, nil
	}
	if err := e.writable(); err != nil {
		return rep, err
	}
	// First, so that the space of variants whose original went comes
	// back in this pass.
	if err := e.sweepVariants(ctx, &rep); err != nil {
		return rep, err
	}
	if err := e.releaseZeros(ctx, &rep); err != nil {
		return rep, err
	}
	if e.opts.Objects != nil {
		// Multipart uploads of segments that died midway: the service
		// keeps (and bills) their parts until they are aborted.
		n, err := e.opts.Objects.AbortIncomplete(ctx, "segments/", e.opts.Now().Add(-24*time.Hour))
		if err != nil {
			return rep, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		rep.AbortedUploads = n
	}
	if err := e.sweepOutboards(ctx); err != nil {
		return rep, err
	}
	if e.shared {
		if err := e.deleteRetired(ctx); err != nil {
			return rep, err
		}
		// Shared rate limits: buckets a day idle are full again; marks
		// (addresses that signed in) last a month.
		now := e.opts.Now()
		if err := e.idx.SweepRates(now.Add(-24*time.Hour), now.Add(-31*24*time.Hour)); err != nil {
			return rep, err
		}
	}
	if e.logged() {
		// Compaction drops the log records a checkpoint covers.
		if err := e.checkpoint(ctx); err != nil {
			return rep, err
		}
	}
	// Releasing may have made more segments worth compacting.
	if cands, err = e.compactionCandidates(); err != nil {
		return rep, err
	}
	// In object mode the candidates are copied together, so that their
	// live chunks go into few new objects, not one each; a group that
	// fails on bad bytes is done again one segment at a time.
	groups := make([][]index.Segment, 0, len(cands))
	for _, c := range cands {
		groups = append(groups, []index.Segment{c.seg})
	}
	if e.opts.Objects != nil && len(cands) > 1 {
		all := make([]index.Segment, len(cands))
		for i, c := range cands {
			all[i] = c.seg
		}
		if err := e.compact(ctx, all, &rep); err == nil {
			groups = nil
		} else if !isCorrupt(err) {
			return rep, err
		}
	}
	for _, g := range groups {
		c := candidate{seg: g[0]}
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := e.compact(ctx, g, &rep); err != nil {
			if isCorrupt(err) {
				rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: %v", segment.FileName(c.seg.ID), err))
				e.log.Error("segment not compacted", "segment", segment.FileName(c.seg.ID), "err", err)
				continue
			}
			if errors.Is(err, ErrNoSpace) || errors.Is(err, segment.ErrNoSpace) {
				// No room to copy this segment's live chunks; emptier
				// ones came first, and later ones may still fit.
				rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: %v", segment.FileName(c.seg.ID), err))
				e.log.Warn("segment not compacted: disk full", "segment", segment.FileName(c.seg.ID), "err", err)
				continue
			}
			return rep, err
		}
	}
	e.stats.gcRuns.Add(1)
	e.stats.lastGC.Store(e.opts.Now().UnixNano())
	e.stats.gcReclaimed.Add(uint64(rep.Reclaimed))
	return rep, nil
}

// sweepOutboards deletes the outboards of chunks that are not stored,
// or not in a form that has one, found so by this pass and the one
// before: an upload writes its chunks' outboards before it commits them,
// so one seen once may be of an upload in flight. (Deleting one of those
// would only make reads of parts of its chunk read all of it.)
// Guarded by gcMu.
func (e *Engine) sweepOutboards(ctx context.Context) error {
	suspects := map[blob.ID]bool{}
	var gone []blob.ID
	for id, err := range e.idx.Outboards() {
		if err != nil {
			return corrupt(err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c, ok, err := e.idx.Chunk(id)
		if err != nil {
			return corrupt(err)
		}
		if ok && hasOutboard(c.Location) {
			continue
		}
		if e.outboardSuspects[id] {
			gone = append(gone, id)
		} else {
			suspects[id] = true
		}
	}
	e.outboardSuspects = suspects
	for batch := range slices.Chunk(gone, 1024) {
		b := e.idx.NewBatch()
		for _, id := range batch {
			// A chunk committed since keeps it.
			if c, ok, err := e.idx.Chunk(id); err == nil && ok && hasOutboard(c.Location) {
				continue
			}
			b.DeleteOutboard(id)
		}
		if err := b.Commit(); err != nil {
			return e.fail(err)
		}
	}
	return nil
}

// releaseZeros releases zero-reference blobs, then chunks, older than the
// grace period and not pinned.
func (e *Engine) releaseZeros(ctx context.Context, rep *GCReport) error {
	before, err := e.gcLimit()
	if err != nil {
		return err
	}
	for _, kind := range []index.ZeroKind{index.ZeroBlob, index.ZeroChunk} {
		var ids []blob.ID
		for z, err := range e.idx.Zeros(kind) {
			if err != nil {
				return corrupt(err)
			}
			if z.Since <= before {
				ids = append(ids, z.ID)
			}
		}
		for batch := range slices.Chunk(ids, 64) {
			n := 0
			err := e.Update(ctx, func(tx *Tx) error {
				n = 0
				for _, id := range batch {
					ok, err := tx.releaseZero(kind, id)
					if err != nil {
						return err
					}
					if ok {
						n++
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			if kind == index.ZeroBlob {
				rep.ReleasedBlobs += n
			} else {
				rep.ReleasedChunks += n
			}
		}
	}
	return nil
}

// releaseZero releases a blob or chunk that has no references and no
// pins; it reports whether it did.
func (tx *Tx) releaseZero(kind index.ZeroKind, id blob.ID) (bool, error) {
	if kind == index.ZeroBlob {
		bs, err := tx.blob(id)
		if err != nil {
			return false, err
		}
		if !bs.exists || bs.cur.Refs > 0 || tx.e.locks.s[bs.stripe].pinned(pinKey{index.ZeroBlob, id}) {
			return false, nil
		}
		for _, c := range bs.cur.Chunks {
			cs, err := tx.chunk(c.ID)
			if err != nil {
				return false, err
			}
			if !cs.exists || cs.cur.Refs == 0 {
				return false, corruptf("blob %s lists chunk %s, which has no references left", id, c.ID)
			}
			cs.cur.Refs--
		}
		bs.exists, bs.changed = false, true
		return true, nil
	}
	cs, err := tx.chunk(id)
	if err != nil {
		return false, err
	}
	if !cs.exists || cs.cur.Refs > 0 || tx.e.locks.s[cs.stripe].pinned(pinKey{index.ZeroChunk, id}) {
		return false, nil
	}
	cs.release = true
	return true, nil
}

type candidate struct {
	seg  index.Segment
	dead int64
}

// compactionCandidates are the sealed segments under the live-ratio
// threshold that no in-flight upload may be writing into, emptiest first.
func (e *Engine) compactionCandidates() ([]candidate, error) {
	segs, err := e.idx.Segments()
	if err != nil {
		return nil, corrupt(err)
	}
	active := e.w.End().Segment
	oldest := e.oldestUploadSegment()
	// Several nodes: a segment sealed less than a grace period ago may
	// hold chunks its node's uploads have yet to commit (nodes.go); the
	// others' segments may have higher IDs than this one's active.
	cutoff, err := e.gcLimit()
	if err != nil {
		return nil, err
	}
	var out, small []candidate
	for _, s := range segs {
		if s.Sealed == 0 || (oldest != 0 && s.ID >= oldest) {
			continue
		}
		if e.shared && (s.ID == active || s.SealedAt > cutoff) || !e.shared && s.ID >= active {
			continue
		}
		data := s.Sealed - segment.FileHeaderSize
		switch {
		case data <= 0 || float64(s.LiveBytes) < e.opts.CompactRatio*float64(data):
			out = append(out, candidate{seg: s, dead: s.Sealed - s.LiveBytes})
		case e.opts.Objects != nil && s.Sealed < e.opts.SegmentSize/16:
			small = append(small, candidate{seg: s, dead: s.Sealed - s.LiveBytes})
		}
	}
	// In object mode, small objects (a group commit of small uploads
	// each) are merged into larger ones, as restic's repack-small: the
	// service then holds fewer objects, and GETs of many small files
	// spread over fewer.
	if len(small) >= 2 {
		out = append(out, small...)
	}
	slices.SortFunc(out, func(a, b candidate) int {
		return int(a.seg.LiveBytes - b.seg.LiveBytes)
	})
	return out, nil
}

// move is one chunk copied by compaction.
type move struct {
	id       blob.ID
	from, to index.Location
	end      int64
}

// compactBatch bounds the chunks repointed in one transaction, so that
// the stripe locks compaction takes are held only briefly.
const compactBatch = 32

// compact copies the live chunks of segs to the active segment, repoints
// them, and removes each of segs once nothing points into it. Locally a
// sync and a transaction repoint every compactBatch chunks; in object
// mode a sync (an object) takes up to a quarter of a segment's bytes,
// and its chunks are repointed compactBatch at a time.
func (e *Engine) compact(ctx context.Context, segs []index.Segment, rep *GCReport) error {
	var pending []move
	var copied int64
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		last := pending[len(pending)-1]
		if err := e.w.Sync(segment.Pos{Segment: last.to.Segment, Offset: last.end}); err != nil {
			return e.fail(err)
		}
		for len(pending) > 0 {
			n := min(len(pending), compactBatch)
			if err := e.repoint(ctx, pending[:n]); err != nil {
				return err
			}
			rep.CopiedChunks += n
			pending = pending[n:]
			runtime.Gosched()
		}
		rep.CopiedBytes += copied
		pending, copied = pending[:0], 0
		return nil
	}
	full := func() bool { return len(pending) >= compactBatch }
	if e.opts.Objects != nil {
		full = func() bool { return copied >= e.opts.SegmentSize/4 }
	}
	var logEnd segment.Pos // the end of the last log record copied
	for _, seg := range segs {
		if err := e.copyLive(ctx, seg, &pending, &copied, &logEnd, full, flush); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if logEnd != (segment.Pos{}) {
		// The log records copied are durable before their originals go.
		if err := e.w.Sync(logEnd); err != nil {
			return e.fail(err)
		}
	}
	for _, seg := range segs {
		if err := e.removeSegment(seg, rep); err != nil {
			return err
		}
	}
	return nil
}

// copyLive appends the live chunks of seg to the active segment, adding
// them to pending, and calls flush whenever full.
func (e *Engine) copyLive(ctx context.Context, seg index.Segment, pending *[]move, copied *int64, logEnd *segment.Pos, full func() bool, flush func() error) error {
	sf, err := e.files.acquire(seg.ID)
	if err != nil {
		return err
	}
	defer e.files.release(sf)
	covered, err := e.checkpointed()
	if err != nil {
		return err
	}
	sc := segment.NewScanner(sf.f, seg.Sealed, e.fs.PathJoin(e.segDir, segment.FileName(seg.ID)), segment.FileHeaderSize, e.comp)
	for sc.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		r := sc.Record()
		if r.Kind == segment.KindLog && len(r.Payload) >= 8 && binary.BigEndian.Uint64(r.Payload) <= covered {
			continue // in the checkpoint in the bucket
		}
		if r.Kind == segment.KindLog {
			// Object mode's log of index changes: kept, for restore.
			loc, err := e.w.AppendLog(r.Payload)
			if err != nil {
				return e.fail(err)
			}
			*logEnd = loc.End()
			continue
		}
		if r.Kind != segment.KindChunk {
			continue
		}
		c, ok, err := e.idx.Chunk(r.ID)
		if err != nil {
			return corrupt(err)
		}
		if !ok || c.Refs == 0 || c.Segment != seg.ID || c.Offset != r.Offset {
			continue // dead: deleted, orphaned, or a duplicate
		}
		loc, err := e.w.Append(segment.Record{ID: r.ID, Compression: r.Compression, Raw: r.Raw, Payload: r.Payload})
		if err != nil {
			return e.fail(err)
		}
		e.stats.writtenBytes.Add(uint64(loc.Size))
		*pending = append(*pending, move{id: r.ID, from: c.Location, to: index.Location{
			Segment: loc.Segment, Offset: loc.Offset, Stored: c.Stored, Raw: c.Raw, Compression: c.Compression,
		}, end: loc.Offset + loc.Size})
		*copied += loc.Size
		if full() {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return nil
}

// repoint moves the chunks of pending, copied and synced, to their new
// locations, in one transaction.
func (e *Engine) repoint(ctx context.Context, pending []move) error {
	return e.Update(ctx, func(tx *Tx) error {
		for _, m := range pending {
			cs, err := tx.chunk(m.id)
			if err != nil {
				return err
			}
			// Repoint only a chunk still referenced and still where it
			// was copied from: one deleted or re-uploaded meanwhile
			// wins, and the copy is dead bytes.
			if !cs.exists || cs.cur.Refs == 0 || cs.cur.Location != m.from {
				continue
			}
			cs.cur = index.Chunk{Location: m.to, Refs: cs.cur.Refs}
			cs.moved = true
			tx.ends[m.to.Segment] = max(tx.ends[m.to.Segment], m.end)
		}
		return nil
	})
}

// removeSegment deletes seg once no chunk entry points into it: its index
// entries first (synced), then its file, then the directory entry.
func (e *Engine) removeSegment(seg index.Segment, rep *GCReport) error {
	segs, err := e.idx.Segments()
	if err != nil {
		return corrupt(err)
	}
	for _, s := range segs {
		if s.ID == seg.ID && s.LiveChunks != 0 {
			// A chunk still lives here (pinned with no references, or
			// repointed back by nothing we know): leave it for a later pass.
			return nil
		}
	}
	if e.shared {
		for _, s := range segs {
			if s.ID == seg.ID {
				seg = s
			}
		}
		if ok, err := e.retireSegment(seg); err != nil || !ok {
			return err
		}
	} else {
		b := e.idx.NewBatch()
		b.DeleteSegment(seg.ID)
		if err := b.Commit(); err != nil {
			return e.fail(err)
		}
	}
	e.files.drop(seg.ID)
	rep.Reclaimed += seg.Sealed
	rep.Compacted++
	path := e.fs.PathJoin(e.segDir, segment.FileName(seg.ID))
	if err := e.fs.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("engine: remove %s: %w", path, err)
	}
	if err := segment.SyncDir(e.fs, e.segDir); err != nil {
		return e.fail(err)
	}
	if e.opts.Objects != nil {
		e.cache.forget(wholeSegment(seg.ID))
		if !e.shared {
			e.deleteObject(seg.ID) // else deleteRetired, later
		}
	}
	e.stats.compacted.Add(1)
	return nil
}

// Expire deletes the records whose expiry time has come, from the expiry
// index (no scan), and returns how many it deleted.
func (e *Engine) Expire(ctx context.Context) (int, error) {
	if err := e.begin(); err != nil {
		return 0, err
	}
	defer e.end()
	now := e.opts.Now().UnixNano()
	var due []index.ExpiryEntry
	for ee, err := range e.idx.Expiring(now + 1) {
		if err != nil {
			return 0, corrupt(err)
		}
		due = append(due, ee)
		if len(due) == 4096 {
			break // the rest next time
		}
	}
	n := 0
	for batch := range slices.Chunk(due, 64) {
		deleted := 0
		var gone []Record
		err := e.Update(ctx, func(tx *Tx) error {
			deleted, gone = 0, gone[:0]
			tx.sweeping = true
			for _, ee := range batch {
				rs, err := tx.record(ee.Key)
				if err != nil {
					return err
				}
				// Rewritten meanwhile with another expiry (or none): not due.
				if !rs.exists || rs.cur.Expires != ee.At {
					continue
				}
				gone = append(gone, fromIndex(ee.Key, rs.cur))
				if err := tx.Delete(ee.Key); err != nil {
					return err
				}
				deleted++
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n += deleted
		e.hooksMu.RLock()
		for _, r := range gone {
			if fn := e.hooks[r.Key.Namespace]; fn != nil {
				fn(r)
			}
		}
		e.hooksMu.RUnlock()
	}
	e.stats.expired.Add(uint64(n))
	return n, nil
}

// OnExpire registers fn to be called with each record of namespace that
// the sweeper deleted, after its deletion is durable (an API's autodelete
// notification, say). Calls are at most once: a crash between the commit
// and the call loses it. fn must not block for long.
func (e *Engine) OnExpire(namespace string, fn func(Record)) {
	e.hooksMu.Lock()
	defer e.hooksMu.Unlock()
	if e.hooks == nil {
		e.hooks = map[string]func(Record){}
	}
	e.hooks[namespace] = fn
}

// expired reports whether a record's expiry time has passed: such a record
// is no longer served, even before the sweeper deletes it.
func (e *Engine) expired(r index.Record) bool {
	return r.Expires != 0 && r.Expires <= e.opts.Now().UnixNano()
}

// NextExpiry returns the earliest expiry time in the index, if any, so a
// sweeper can sleep until then.
func (e *Engine) NextExpiry() (time.Time, bool, error) {
	for ee, err := range e.idx.Expiring(1<<63 - 1) {
		if err != nil {
			return time.Time{}, false, corrupt(err)
		}
		return time.Unix(0, ee.At), true, nil
	}
	return time.Time{}, false, nil
}
