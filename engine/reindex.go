package engine

import (
	"context"
	"fmt"
	"slices"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/segment"
)

// ReindexReport says what Reindex found and did.
type ReindexReport struct {
	Segments int // segment files scanned
	Records  int // chunk records found in them
	Chunks   int // chunk entries written
	// Orphans are chunk records no blob refers to: dead bytes.
	Orphans int
	// Duplicates are chunk records of a chunk found in an earlier place too.
	Duplicates int
	// Missing lists chunks that blobs refer to but no segment holds; the
	// records whose content they are in are listed in Damaged.
	Missing []blob.ID
	Damaged []Key
	// Torn lists the segments whose scan ended at a bad record, and why.
	Torn []string
}

// Reindex rebuilds what the index derives from the segments, from the
// segments alone: it scans every segment file, verifying each record's
// content against its chunk ID, and rewrites every chunk's location and
// reference count, every blob's reference count, each segment's live
// bytes, synced end and sealed size, and the store totals. Records, blob
// chunk lists and the payloads of chunks kept inline are what the index
// alone knows; they are kept (an inline payload that does not verify is
// dropped, its chunk missing; one no blob refers to, deleted).
//
// Reindex needs the store to itself: it waits for writes in flight and
// blocks new ones until it is done. `cairn reindex` runs it offline.
func (e *Engine) Reindex(ctx context.Context) (ReindexReport, error) {
	var rep ReindexReport
	if err := e.begin(); err != nil {
		return rep, err
	}
	defer e.end()
	if err := e.writable(); err != nil {
		return rep, err
	}
	// Take every stripe: no transaction can commit meanwhile. Uploads in
	// flight append orphans at worst.
	all := newLockSet(e.locks)
	everything := make([]int, numStripes)
	for i := range everything {
		everything[i] = i
	}
	all.lockAll(everything)
	defer all.unlockAll()

	ids, objSizes, err := e.segmentIDs(ctx)
	if err != nil {
		return rep, fmt.Errorf("engine: reindex: %w", err)
	}
	active := e.w.End()

	// 1. Where is each chunk? The first verified copy, in segment order.
	locs := map[blob.ID]index.Location{}
	ends := map[uint64]int64{}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		path := e.fs.PathJoin(e.segDir, segment.FileName(id))
		var f segSource
		var size int64
		if objSizes != nil {
			f, path, size = objectFile{e, id, objectName(id)}, objectName(id), objSizes[id]
		} else {
			lf, err := e.fs.Open(path)
			if err != nil {
				return rep, fmt.Errorf("engine: reindex: %w", err)
			}
			info, err := lf.Stat()
			if err != nil {
				lf.Close()
				return rep, fmt.Errorf("engine: reindex: %w", err)
			}
			f, size = lf, info.Size()
		}
		if id == active.Segment {
			size = min(size, active.Offset)
		}
		hb := make([]byte, segment.FileHeaderSize)
		if _, err := f.ReadAt(hb, 0); err != nil {
			f.Close()
			rep.Torn = append(rep.Torn, fmt.Sprintf("%s: unreadable header: %v", path, err))
			continue
		}
		if _, err := segment.ParseFileHeader(hb, path); err != nil {
			f.Close()
			rep.Torn = append(rep.Torn, err.Error())
			continue
		}
		rep.Segments++
		sc := segment.NewScanner(f, size, path, segment.FileHeaderSize, e.comp)
		for sc.Next() {
			r := sc.Record()
			if r.Kind != segment.KindChunk {
				continue // a log record (object mode), or a withdrawn one
			}
			rep.Records++
			if _, dup := locs[r.ID]; dup {
				rep.Duplicates++
				continue
			}
			locs[r.ID] = index.Location{Segment: id, Offset: r.Offset, Stored: r.Stored, Raw: r.Raw, Compression: uint8(r.Compression)}
		}
		ends[id] = sc.End()
		if err := sc.Err(); err != nil {
			rep.Torn = append(rep.Torn, err.Error())
		}
		f.Close()
	}

	// 2. Who refers to what, from the records and blob chunk lists.
	snap := e.idx.Snapshot()
	defer snap.Close()
	blobRefs := map[blob.ID]uint64{}
	blobRecords := map[blob.ID][]Key{}
	var tot index.Totals
	for r, err := range snap.AllRecords() {
		if err != nil {
			return rep, err
		}
		tot.Records++
		tot.RecordBytes += r.Size
		if !r.Blob.IsZero() {
			blobRefs[r.Blob]++
			if len(blobRecords[r.Blob]) < 100 {
				blobRecords[r.Blob] = append(blobRecords[r.Blob], r.Key)
			}
		}
	}
	chunkRefs := map[blob.ID]uint64{}
	chunkBlobs := map[blob.ID][]blob.ID{}
	var blobs []index.BlobEntry
	for b, err := range snap.Blobs() {
		if err != nil {
			return rep, err
		}
		blobs = append(blobs, b)
		for _, c := range b.Chunks {
			chunkRefs[c.ID]++
			if len(chunkBlobs[c.ID]) < 100 {
				chunkBlobs[c.ID] = append(chunkBlobs[c.ID], b.ID)
			}
		}
	}

	// Chunks kept inline are where they are, if they verify.
	inline := map[blob.ID]index.Location{}
	w := &batchWriter{e: e}
	scratch := e.getScratch()
	defer e.scratch.Put(scratch)
	for in, err := range snap.Inlines() {
		if err != nil {
			return rep, err
		}
		_, verr := e.verifyInline(in.ID, in.Inline, scratch)
		if verr != nil || chunkRefs[in.ID] == 0 {
			w.b().DeleteInline(in.ID)
			if err := w.maybeCommit(); err != nil {
				return rep, err
			}
			continue
		}
		inline[in.ID] = index.Location{Stored: uint32(len(in.Payload)), Raw: in.Raw, Compression: in.Compression}
	}

	// 3. Rewrite the derived entries, in bounded batches.
	for ch, err := range snap.Chunks() {
		if err != nil {
			return rep, err
		}
		w.b().DeleteChunk(ch.ID)
		if err := w.maybeCommit(); err != nil {
			return rep, err
		}
	}
	for _, kind := range []index.ZeroKind{index.ZeroBlob, index.ZeroChunk} {
		for z, err := range snap.Zeros(kind) {
			if err != nil {
				return rep, err
			}
			w.b().DeleteZero(kind, z.ID)
		}
	}
	segs, err := snap.Segments()
	if err != nil {
		return rep, err
	}
	for _, s := range segs {
		w.b().DeleteSegment(s.ID)
	}
	if err := w.commit(); err != nil {
		return rep, err
	}
	now := e.opts.Now().UnixNano()
	live := map[uint64][2]int64{}
	damaged := map[Key]bool{}
	fromSegments := 0
	for id, refs := range chunkRefs {
		loc, ok := inline[id]
		if !ok {
			loc, ok = locs[id]
			if ok {
				fromSegments++
			}
		}
		if !ok {
			rep.Missing = append(rep.Missing, id)
			for _, b := range chunkBlobs[id] {
				for _, k := range blobRecords[b] {
					damaged[k] = true
				}
			}
			continue
		}
		w.b().SetChunk(id, index.Chunk{Location: loc, Refs: refs})
		if !loc.Inline() {
			l := live[loc.Segment]
			live[loc.Segment] = [2]int64{l[0] + recordSize(loc), l[1] + 1}
		}
		tot.Chunks++
		tot.ChunkBytes += int64(loc.Raw)
		tot.ChunkDisk += recordSize(loc)
		rep.Chunks++
		if err := w.maybeCommit(); err != nil {
			return rep, err
		}
	}
	rep.Orphans = len(locs) - fromSegments
	for _, b := range blobs {
		refs := blobRefs[b.ID]
		delete(blobRefs, b.ID)
		b.Blob.Refs = refs
		w.b().SetBlob(b.ID, b.Blob)
		if refs == 0 {
			w.b().SetZero(index.ZeroBlob, b.ID, now)
		}
		tot.Blobs++
		tot.BlobBytes += b.Size
		if err := w.maybeCommit(); err != nil {
			return rep, err
		}
	}
	for id := range blobRefs { // records whose blob entry is gone
		for _, k := range blobRecords[id] {
			damaged[k] = true
		}
	}
	for _, id := range ids {
		end, ok := ends[id]
		if !ok {
			continue
		}
		w.b().RaiseEnd(id, end)
		if id != active.Segment {
			w.b().SetSealed(id, end)
		}
		if l := live[id]; l != [2]int64{} {
			w.b().AddLive(id, l[0], l[1])
		}
	}
	w.b().SetTotals(tot)
	if err := w.commit(); err != nil {
		return rep, err
	}
	for k := range damaged {
		rep.Damaged = append(rep.Damaged, k)
	}
	slices.SortFunc(rep.Damaged, Key.Compare)
	slices.SortFunc(rep.Missing, func(a, b blob.ID) int { return slices.Compare(a[:], b[:]) })
	return rep, nil
}

// batchWriter commits a long series of updates in batches of bounded size.
type batchWriter struct {
	e     *Engine
	batch *index.Batch
	n     int
}

func (w *batchWriter) b() *index.Batch {
	if w.batch == nil {
		w.batch = w.e.idx.NewBatch()
	}
	w.n++
	return w.batch
}

func (w *batchWriter) maybeCommit() error {
	if w.n < 10000 {
		return nil
	}
	return w.commit()
}

func (w *batchWriter) commit() error {
	if w.batch == nil {
		return nil
	}
	err := w.batch.Commit()
	w.batch, w.n = nil, 0
	if err != nil {
		return w.e.fail(err)
	}
	return nil
}
