package engine

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/segment"
)

// ScrubReport is what a scrub read and found.
type ScrubReport struct {
	// Chunks and Bytes read and verified.
	Chunks int
	Bytes  int64
	// Corrupt lists the chunks whose bytes failed verification (or whose
	// segment file is missing), and Damaged the records whose content
	// includes one of them.
	Corrupt []blob.ID
	Damaged []Key
	// In object mode a full scrub also reads every segment whole, so
	// that the log a restore replays is verified too: LogRecords counts
	// the log records verified, and BadSegments lists the segments that
	// do not scan to their end, and why.
	LogRecords  int
	BadSegments []string
}

// Scrub re-reads and verifies the stored chunks (a fraction sample of
// them, chosen by ID, from 0 to 1; 1 reads all) in segment order, and
// reports the corrupt ones and the records they damage. It reads while
// the store serves; its reads go through the same verified path.
func (e *Engine) Scrub(ctx context.Context, sample float64) (ScrubReport, error) {
	if err := e.begin(); err != nil {
		return ScrubReport{}, err
	}
	defer e.end()
	if sample <= 0 || sample > 1 || math.IsNaN(sample) {
		return ScrubReport{}, fmt.Errorf("%w: scrub sample %v is not in (0, 1]", ErrInvalid, sample)
	}
	limit := uint64(math.MaxUint64)
	if sample < 1 {
		limit = uint64(sample * math.MaxUint64)
	}
	var chunks []index.ChunkEntry
	for c, err := range e.idx.Chunks() {
		if err != nil {
			return ScrubReport{}, corrupt(err)
		}
		if binary.BigEndian.Uint64(c.ID[:8]) <= limit {
			chunks = append(chunks, c)
		}
	}
	slices.SortFunc(chunks, func(a, b index.ChunkEntry) int {
		return cmp.Or(cmp.Compare(a.Segment, b.Segment), cmp.Compare(a.Offset, b.Offset))
	})
	var rep ScrubReport
	scratch := e.getScratch()
	defer e.scratch.Put(scratch)
	bad := map[blob.ID]bool{}
	for _, c := range chunks {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		_, err := e.readChunk(c.ID, index.ChunkRef{ID: c.ID, Size: c.Raw}, scratch)
		switch {
		case err == nil:
			rep.Chunks++
			rep.Bytes += int64(c.Raw)
		case isCorrupt(err):
			// Released meanwhile is not corruption: look again.
			if _, ok, lerr := e.idx.Chunk(c.ID); lerr == nil && !ok {
				continue
			}
			rep.Corrupt = append(rep.Corrupt, c.ID)
			bad[c.ID] = true
		default:
			return rep, err
		}
	}
	if len(bad) > 0 {
		blobs := map[blob.ID]bool{}
		for b, err := range e.idx.Blobs() {
			if err != nil {
				return rep, corrupt(err)
			}
			if slices.ContainsFunc(b.Chunks, func(r index.ChunkRef) bool { return bad[r.ID] }) {
				blobs[b.ID] = true
			}
		}
		for r, err := range e.idx.AllRecords() {
			if err != nil {
				return rep, corrupt(err)
			}
			if blobs[r.Blob] {
				rep.Damaged = append(rep.Damaged, r.Key)
			}
		}
	}
	if e.opts.Objects != nil && sample == 1 {
		if err := e.scrubSegments(ctx, &rep); err != nil {
			return rep, err
		}
	}
	e.stats.scrubRuns.Add(1)
	e.stats.lastScrub.Store(e.opts.Now().UnixNano())
	e.stats.scrubChunks.Add(uint64(rep.Chunks))
	e.stats.scrubCorrupt.Store(uint64(len(rep.Corrupt)))
	return rep, nil
}

// scrubSegments scans every sealed segment whole, verifying each record
// (chunks and log records alike, by their CRCs and BLAKE3).
func (e *Engine) scrubSegments(ctx context.Context, rep *ScrubReport) error {
	segs, err := e.idx.Segments()
	if err != nil {
		return corrupt(err)
	}
	for _, s := range segs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.Sealed == 0 {
			continue
		}
		sf, err := e.files.acquire(s.ID)
		if err != nil {
			if isCorrupt(err) {
				rep.BadSegments = append(rep.BadSegments, fmt.Sprintf("%s: %v", segment.FileName(s.ID), err))
				continue
			}
			return err
		}
		sc := segment.NewScanner(sf.f, s.Sealed, segment.FileName(s.ID), segment.FileHeaderSize, e.comp)
		for sc.Next() {
			if sc.Record().Kind == segment.KindLog {
				rep.LogRecords++
			}
		}
		e.files.release(sf)
		if err := sc.Err(); err != nil || sc.End() != s.Sealed {
			if err != nil && !isCorrupt(err) {
				return err
			}
			rep.BadSegments = append(rep.BadSegments, fmt.Sprintf("%s: scanned to %d of %d bytes: %v", segment.FileName(s.ID), sc.End(), s.Sealed, err))
		}
	}
	return nil
}
