package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/internal/blob"
)

// CheckError lists what Check found wrong. It matches ErrCorrupt.
type CheckError struct {
	Problems []string
	// More counts problems beyond those listed.
	More int
}

func (e *CheckError) Error() string {
	s := fmt.Sprintf("engine: check found %d problems:\n  %s", len(e.Problems)+e.More, strings.Join(e.Problems, "\n  "))
	if e.More > 0 {
		s += fmt.Sprintf("\n  … and %d more", e.More)
	}
	return s
}

// Is makes a CheckError match ErrCorrupt.
func (e *CheckError) Is(target error) bool { return target == ErrCorrupt }

const maxProblems = 100

type checker struct {
	problems []string
	more     int
}

func (c *checker) addf(format string, args ...any) {
	if len(c.problems) < maxProblems {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
	} else {
		c.more++
	}
}

// Check cross-checks a consistent snapshot of the index against itself and
// the segments: every record's blob exists and counts it; every blob's
// chunks exist, add up to its size and count it; every chunk's record is
// where the index says, with the right ID, and its content hashes to it;
// segment live bytes, synced ends and store totals match; the expiry and
// zero-reference entries match what they index. It returns a *CheckError
// listing the problems, or nil.
//
// Check reads every chunk; it is meant for tests, `cairn check`, and stores
// without compaction running.
func (e *Engine) Check(ctx context.Context) error {
	if err := e.begin(); err != nil {
		return err
	}
	defer e.end()
	snap := e.idx.Snapshot()
	defer snap.Close()
	var c checker
	if err := e.check(ctx, snap, &c); err != nil {
		return err
	}
	if len(c.problems) > 0 {
		return &CheckError{Problems: c.problems, More: c.more}
	}
	return nil
}

func (e *Engine) check(ctx context.Context, snap *index.Snapshot, c *checker) error {
	var want index.Totals
	blobRefs := map[blob.ID]uint64{}
	expiries := map[string]bool{}
	for r, err := range snap.AllRecords() {
		if err != nil {
			return err
		}
		want.Records++
		want.RecordBytes += r.Size
		if !r.Blob.IsZero() {
			blobRefs[r.Blob]++
		}
		if r.Expires != 0 {
			expiries[string(index.ExpiryKey(r.Expires, r.Key))] = true
		}
	}
	for x, err := range snap.Expiring(1<<63 - 1) {
		if err != nil {
			return err
		}
		k := string(index.ExpiryKey(x.At, x.Key))
		if !expiries[k] {
			c.addf("expiry entry at %d for %s matches no record with that expiry", x.At, x.Key)
		}
		delete(expiries, k)
	}
	for k := range expiries {
		_, rk, _ := index.DecodeExpiryKey([]byte(k))
		c.addf("record %s expires but has no expiry entry", rk)
	}

	chunkRefs := map[blob.ID]uint64{}
	chunkSizes := map[blob.ID]uint32{}
	zeroBlobs := map[blob.ID]bool{}
	for z, err := range snap.Zeros(index.ZeroBlob) {
		if err != nil {
			return err
		}
		zeroBlobs[z.ID] = true
	}
	for b, err := range snap.Blobs() {
		if err != nil {
			return err
		}
		want.Blobs++
		want.BlobBytes += b.Size
		if got := blobRefs[b.ID]; got != b.Refs {
			c.addf("blob %s counts %d references, records hold %d", b.ID, b.Refs, got)
		}
		delete(blobRefs, b.ID)
		if (b.Refs == 0) != zeroBlobs[b.ID] {
			c.addf("blob %s has %d references but zero-reference entry = %v", b.ID, b.Refs, zeroBlobs[b.ID])
		}
		delete(zeroBlobs, b.ID)
		var sum int64
		for _, ch := range b.Chunks {
			chunkRefs[ch.ID]++
			sum += int64(ch.Size)
			if s, ok := chunkSizes[ch.ID]; ok && s != ch.Size {
				c.addf("chunk %s listed with sizes %d and %d", ch.ID, s, ch.Size)
			}
			chunkSizes[ch.ID] = ch.Size
		}
		if sum != b.Size {
			c.addf("blob %s has size %d but its chunks add up to %d", b.ID, b.Size, sum)
		}
		if b.Size == 0 && b.ID != blob.Empty || len(b.Chunks) == 0 && b.Size != 0 {
			c.addf("blob %s: size %d with %d chunks", b.ID, b.Size, len(b.Chunks))
		}
	}
	for id, n := range blobRefs {
		c.addf("records refer %d times to blob %s, which is missing", n, id)
	}
	for id := range zeroBlobs {
		c.addf("zero-reference entry for blob %s, which is missing", id)
	}

	segs, err := snap.Segments()
	if err != nil {
		return err
	}
	segByID := map[uint64]index.Segment{}
	for _, s := range segs {
		segByID[s.ID] = s
	}
	live := map[uint64][2]int64{}
	maxEnd := map[uint64]int64{}
	zeroChunks := map[blob.ID]bool{}
	for z, err := range snap.Zeros(index.ZeroChunk) {
		if err != nil {
			return err
		}
		zeroChunks[z.ID] = true
	}
	inlines := map[blob.ID]bool{}
	for in, err := range snap.Inlines() {
		if err != nil {
			return err
		}
		inlines[in.ID] = true
	}
	scratch := e.getScratch()
	defer e.scratch.Put(scratch)
	for ch, err := range snap.Chunks() {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		want.Chunks++
		want.ChunkBytes += int64(ch.Raw)
		want.ChunkDisk += recordSize(ch.Location)
		if got := chunkRefs[ch.ID]; got != ch.Refs {
			c.addf("chunk %s counts %d references, blobs hold %d", ch.ID, ch.Refs, got)
		}
		delete(chunkRefs, ch.ID)
		if (ch.Refs == 0) != zeroChunks[ch.ID] {
			c.addf("chunk %s has %d references but zero-reference entry = %v", ch.ID, ch.Refs, zeroChunks[ch.ID])
		}
		delete(zeroChunks, ch.ID)
		if s, ok := chunkSizes[ch.ID]; ok && s != ch.Raw {
			c.addf("chunk %s has %d bytes, its blobs say %d", ch.ID, ch.Raw, s)
		}
		if ch.Inline() {
			if _, err := e.readInline(snap, ch.ID, ch.Location, scratch); err != nil {
				c.addf("chunk %s: %v", ch.ID, err)
			}
			delete(inlines, ch.ID)
			continue
		}
		l := live[ch.Segment]
		live[ch.Segment] = [2]int64{l[0] + recordSize(ch.Location), l[1] + 1}
		end := ch.Offset + recordSize(ch.Location)
		maxEnd[ch.Segment] = max(maxEnd[ch.Segment], end)
		if _, ok := segByID[ch.Segment]; !ok {
			c.addf("chunk %s is in segment %d, which the index does not know", ch.ID, ch.Segment)
			continue
		}
		sf, err := e.files.acquire(ch.Segment)
		if err != nil {
			c.addf("chunk %s: %v", ch.ID, err)
			continue
		}
		content, err := sf.ReadChunk(ch.Offset, int(ch.Stored), ch.ID, scratch)
		if err != nil {
			c.addf("chunk %s: %v", ch.ID, err)
		} else if ob, ok, err := snap.Outboard(ch.ID); err != nil {
			return err
		} else if ok && (!hasOutboard(ch.Location) || !blob.VerifyPart(content, ob, 0, ch.ID)) {
			c.addf("chunk %s: its outboard does not verify it", ch.ID)
		}
		e.files.release(sf)
	}
	for id, n := range chunkRefs {
		c.addf("blobs refer %d times to chunk %s, which is missing", n, id)
	}
	for id := range zeroChunks {
		c.addf("zero-reference entry for chunk %s, which is missing", id)
	}
	for id := range inlines {
		c.addf("inline payload of chunk %s, which is not stored inline", id)
	}

	active := e.w.End()
	for _, s := range segs {
		if l := live[s.ID]; l[0] != s.LiveBytes || l[1] != s.LiveChunks {
			c.addf("segment %d counts %d live bytes in %d chunks, chunk entries add up to %d in %d", s.ID, s.LiveBytes, s.LiveChunks, l[0], l[1])
		}
		if s.End < maxEnd[s.ID] {
			c.addf("segment %d: synced end %d is before the end %d of a chunk it holds", s.ID, s.End, maxEnd[s.ID])
		}
		if s.Sealed > 0 && s.Sealed < s.End {
			c.addf("segment %d: sealed at %d, before its synced end %d", s.ID, s.Sealed, s.End)
		}
		// Other nodes' segments may be active, and of any ID.
		if s.Sealed == 0 && s.ID < active.Segment && s.LiveChunks > 0 && !e.shared {
			c.addf("segment %d is before the active one but not sealed", s.ID)
		}
		if s.ID == active.Segment && s.End > active.Offset {
			c.addf("active segment %d: synced end %d past the write offset %d", s.ID, s.End, active.Offset)
		}
		if s.ID > active.Segment && !e.shared {
			c.addf("segment %d is after the active segment %d", s.ID, active.Segment)
		}
	}
	for id := range live {
		if _, ok := segByID[id]; !ok && id != active.Segment {
			c.addf("chunks in segment %d, which has no segment entry", id)
		}
	}
	got, err := snap.Totals()
	if err != nil {
		return err
	}
	if got != want {
		c.addf("totals %+v, entries add up to %+v", got, want)
	}
	return nil
}
