package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/internal/chunker"
	"github.com/cairnstore/cairn/segment"
)

// Upload is content streamed into the segments and synced, but not yet
// referenced by the index: pass it to Tx.Put (or use PutRecord) to make it
// visible. Close it when done, committed or not; content never committed
// becomes dead bytes that compaction reclaims.
type Upload struct {
	e    *Engine
	id   blob.ID
	size int64
	// chunks is the blob's chunk list, in order.
	chunks []index.ChunkRef
	// fresh are the chunks this upload appended, not found stored when it
	// looked; a concurrent upload may have committed the same chunk since,
	// in which case this copy is an orphan.
	fresh map[blob.ID]index.Location
	// pinned are the chunks found stored; pins keep them from being
	// released until Close.
	pinned []blob.ID
	// ends is, per segment this upload appended to, the end of its last
	// record there.
	ends map[uint64]int64
	// inline is the payload of a content small enough to be kept in the
	// index (Options.InlineMax): its one chunk, in fresh with Segment 0,
	// written by the commit that references it.
	inline *index.Inline
	// again is the payload of a content of one small chunk found stored
	// inline, made as if it were new, for the commit to write over the
	// stored one (the same bytes): an upload of stored small bytes then
	// costs what one of new bytes does, so its timing tells nothing, and
	// is not padded (hideDedup).
	again  *index.Inline
	closed bool
	// dedup are the content bytes found stored (but the caller's own:
	// parts); written the bytes appended, in writing nanoseconds
	// (compressing and appending).
	dedup, written, writing int64
	// parts is what an upload of records' contents knows of them
	// (UploadParts), nil for another; taken counts the chunks of theirs
	// it took as they are.
	parts *partsOf
	taken int
}

// partsOf is what UploadParts knows of the records whose contents it
// uploads: their chunks but each one's last, where they lie in the whole
// content (known) and their IDs (ids); and all their chunks (own).
type partsOf struct {
	known []chunker.Known
	ids   []blob.ID
	own   map[blob.ID]bool
}

// ID is the blob's ID: the BLAKE3-256 of its content.
func (u *Upload) ID() blob.ID { return u.id }

// Size is the content length.
func (u *Upload) Size() int64 { return u.size }

// Close releases the upload's pins. It is safe to call more than once.
func (u *Upload) Close() {
	if u.closed {
		return
	}
	u.closed = true
	for _, id := range u.pinned {
		u.e.unpinChunk(id)
	}
	u.pinned = nil
	u.e.uploadsMu.Lock()
	delete(u.e.uploads, u)
	u.e.uploadsMu.Unlock()
	if u.e.shared {
		u.e.inflight.done(u)
	}
}

// Upload streams r into the store: content-defined chunks, each hashed
// with BLAKE3 while the whole content is hashed in the same pass; chunks
// already stored are not written again; the others are compressed where
// that pays and appended to the active segment, which is synced (shared
// with concurrent uploads) before Upload returns.
//
// The content is not visible until an Update references it. At most
// Options.MaxUploads uploads stream at once; Upload waits for a slot
// until ctx ends, or fails with ErrBusy after Options.UploadWait.
//
// Unless Options.RevealDedup, an upload whose chunks were found stored
// returns no sooner than writing them would have: see hideDedup.
func (e *Engine) Upload(ctx context.Context, r io.Reader) (*Upload, error) {
	return e.uploadWith(ctx, r, nil)
}

// UploadParts is an Upload of the contents of recs, one after the other
// (a resumable upload's parts), as Upload of those bytes makes it: the
// same ID, chunk list and chunks. What the records have already is not
// done again. Where the chunking of the whole comes to one of their
// chunks at a cut, not a record's last chunk (which its end cut), that
// chunk is taken as it is, not scanned for its cut or hashed again: its
// bytes, read verified, are those its ID names (chunker.Known says why
// the cut is the same). And the records' chunks, found stored, are not
// waited for as Upload waits for stored chunks: they are the caller's
// own, and tell it nothing of what anyone else stored; other chunks
// found stored are.
func (e *Engine) UploadParts(ctx context.Context, recs []Record) (*Upload, error) {
	p := &partsOf{own: map[blob.ID]bool{}}
	var off int64
	for _, rec := range recs {
		var (
			b   index.Blob
			ok  bool
			err error
		)
		if !rec.Blob.IsZero() {
			b, ok, err = e.idx.Blob(rec.Blob)
		}
		if err != nil {
			return nil, corrupt(err)
		}
		if ok {
			at := off
			for i, c := range b.Chunks {
				p.own[c.ID] = true
				if i < len(b.Chunks)-1 {
					p.known = append(p.known, chunker.Known{Offset: at, Size: int(c.Size)})
					p.ids = append(p.ids, c.ID)
				}
				at += int64(c.Size)
			}
		}
		off += rec.Size
	}
	r := e.OpenRecords(recs)
	defer r.Close()
	return e.uploadWith(ctx, r, p)
}

// uploadWith is Upload, of records' contents if p is not nil.
func (e *Engine) uploadWith(ctx context.Context, r io.Reader, p *partsOf) (*Upload, error) {
	wait := time.NewTimer(e.opts.UploadWait)
	select {
	case e.uploadSlots <- struct{}{}:
		wait.Stop()
	case <-wait.C:
		return nil, fmt.Errorf("%w: no slot free for %v", ErrBusy, e.opts.UploadWait)
	case <-ctx.Done():
		wait.Stop()
		return nil, fmt.Errorf("engine: waiting to upload: %w", ctx.Err())
	}
	u, err := e.upload(ctx, r, p)
	<-e.uploadSlots
	if err != nil {
		return nil, err
	}
	if !e.opts.RevealDedup {
		e.hideDedup(ctx, u)
	}
	return u, nil
}

// upload is uploadWith holding an upload slot.
func (e *Engine) upload(ctx context.Context, r io.Reader, p *partsOf) (*Upload, error) {
	if err := e.begin(); err != nil {
		return nil, err
	}
	defer e.end()
	if err := e.writable(); err != nil {
		return nil, err
	}
	if err := e.checkSpace(); err != nil {
		return nil, err
	}
	u := e.newUpload()
	u.parts = p
	if err := e.stream(ctx, u, r); err != nil {
		u.Close()
		return nil, err
	}
	e.stats.uploads.Add(1)
	return u, nil
}

// newUpload is an upload begun: in e.uploads (and, on several nodes, in
// this node's horizon) until Close.
func (e *Engine) newUpload() *Upload {
	u := &Upload{e: e, fresh: map[blob.ID]index.Location{}, ends: map[uint64]int64{}}
	if e.shared {
		e.inflight.add(u, e.opts.Now().UnixNano())
	}
	e.uploadsMu.Lock()
	e.uploads[u] = e.w.End().Segment
	e.uploadsMu.Unlock()
	return u
}

// UploadOf is an Upload of rec's content, as one of its bytes would be,
// made without reading them: the content's chunks are pinned, as an
// upload finding them stored pins them, until Close. Passed to Tx.Put it
// references the content again, in the same transaction that deletes rec
// if need be (a resumable upload finished from its one part). ok is false,
// and the caller is to upload the bytes, for a content kept in the index
// (Options.InlineMax or smaller) and for one no longer stored whole (rec
// deleted since it was read, and its content released).
//
// It reveals nothing of what else is stored (the content is rec's, which
// its caller can read) and so is not padded as Upload is.
func (e *Engine) UploadOf(rec Record) (*Upload, bool, error) {
	if rec.Blob.IsZero() || rec.Size <= int64(e.opts.InlineMax) {
		return nil, false, nil
	}
	if err := e.begin(); err != nil {
		return nil, false, err
	}
	defer e.end()
	if err := e.writable(); err != nil {
		return nil, false, err
	}
	u := e.newUpload()
	ok, err := e.pinBlob(u, rec.Blob, rec.Size)
	if err != nil || !ok {
		u.Close()
		return nil, false, err
	}
	return u, true, nil
}

func (e *Engine) stream(ctx context.Context, u *Upload, r io.Reader) error {
	ch := chunker.New(r, e.opts.chunking())
	defer ch.Close()
	if u.parts != nil {
		ch.Expect(u.parts.known)
	}
	whole := blob.New()
	// hashing is the whole content's hash of the last chunk, running
	// beside the rest of that chunk's work; done before the chunker is
	// asked for the next chunk or closed (it reuses the chunk's buffer).
	var hashing sync.WaitGroup
	defer hashing.Wait()
	seen := map[blob.ID]bool{}
	var (
		compressed []byte
		last       segment.Location
		sinceCheck int64
		// held is a first chunk small enough to be inlined, if it turns
		// out to be the only one; appended when a second comes.
		held   []byte
		heldID blob.ID
		// outboards of raw chunks written, not yet in the index.
		outboards = map[blob.ID][]byte{}
		// wholeIsChunk: the content is its one chunk, not written to whole.
		wholeIsChunk bool
		// dupHeld is a first chunk found stored inline, if it turns out to
		// be the only one: see Upload.again.
		dupHeld []byte
	)
	// With RevealDedup, a content the chunker holds whole (at most
	// MaxChunk bytes) is hashed first: if it is stored already, it is not
	// chunked at all (storedWhole). Otherwise its hash is the content's ID,
	// and its outboard the first chunk's if that is all of it. Hiding
	// deduplication, a stored content is chunked as a new one is, so that
	// it costs the same work but for the writing hideDedup pads.
	var pre *prehashed
	if e.opts.RevealDedup {
		if content, ok := ch.Whole(); ok && len(content) > e.opts.InlineMax && len(content) >= MinOutboard {
			id, ob := blob.Outboard(content)
			done, err := e.storedWhole(u, id, int64(len(content)))
			if done || err != nil {
				return err
			}
			pre = &prehashed{id, ob}
		}
	}
	write := func(id blob.ID, data []byte) error {
		// A long upload rechecks the reserve as it goes.
		if sinceCheck += int64(len(data)); sinceCheck >= 64<<20 {
			sinceCheck = 0
			if err := e.checkSpace(); err != nil {
				return err
			}
		}
		start := time.Now()
		comp, payload := e.comp.Compress(compressed, data)
		if comp != segment.Raw {
			compressed = payload
		}
		loc, err := e.w.Append(segment.Record{ID: id, Compression: comp, Raw: uint32(len(data)), Payload: payload})
		if err != nil {
			return e.fail(err)
		}
		e.stats.writtenBytes.Add(uint64(loc.Size))
		u.written += int64(len(data))
		u.writing += int64(time.Since(start))
		u.fresh[id] = index.Location{
			Segment: loc.Segment, Offset: loc.Offset,
			Stored: uint32(len(payload)), Raw: uint32(len(data)), Compression: uint8(comp),
		}
		u.ends[loc.Segment] = loc.Offset + loc.Size
		last = loc
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hashing.Wait()
		data, err := ch.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("engine: read upload: %w", err)
		}
		// Each byte is hashed once for its chunk and once for the whole
		// content, the two on two cores for a large chunk; the first
		// chunk's hash is the whole content's so far, so it is hashed
		// once.
		// A chunk of MinOutboard bytes or more gets an outboard (its hash
		// tree, for verified reads of a part) from the pass that makes its
		// ID.
		var (
			id blob.ID
			ob []byte
		)
		// A content of one chunk has the chunk's ID: its bytes need no
		// second hash.
		only := len(u.chunks) == 0 && ch.Last()
		known, isKnown := ch.KnownIndex()
		switch {
		case isKnown && !only:
			// A chunk of a part, as it is: only the whole content's hash
			// reads it.
			id = u.parts.ids[known]
			u.taken++
			if pre == nil {
				hashing.Go(func() { whole.Write(data) })
			}
		case len(data) >= MinOutboard:
			switch {
			case only && pre != nil:
				id, ob = pre.id, pre.ob
			case only:
				wholeIsChunk = true
				id, ob = blob.Outboard(data)
			default:
				if pre == nil {
					hashing.Go(func() { whole.Write(data) })
				}
				id, ob = blob.Outboard(data)
			}
		case pre != nil:
			id = blob.Sum(data)
		case len(u.chunks) == 0:
			whole.Write(data)
			id = whole.ID()
		default:
			whole.Write(data)
			id = blob.Sum(data)
		}
		u.chunks = append(u.chunks, index.ChunkRef{ID: id, Size: uint32(len(data))})
		u.size += int64(len(data))
		if held != nil {
			if err := write(heldID, held); err != nil {
				return err
			}
			held = nil
		}
		dupHeld = nil
		if seen[id] {
			continue
		}
		seen[id] = true
		loc, stored, err := e.pinIfStored(id)
		if err != nil {
			return err
		}
		if stored {
			u.pinned = append(u.pinned, id)
			if u.parts == nil || !u.parts.own[id] {
				u.dedup += int64(len(data))
				e.stats.dedupChunks.Add(1)
				e.stats.dedupBytes.Add(uint64(len(data)))
			}
			if len(u.chunks) == 1 && len(data) <= e.opts.InlineMax && loc.Inline() {
				dupHeld = bytes.Clone(data)
			}
			continue
		}
		if len(u.chunks) == 1 && len(data) <= e.opts.InlineMax {
			held, heldID = bytes.Clone(data), id
			continue
		}
		if ob == nil && len(data) >= MinOutboard {
			_, ob = blob.Outboard(data) // a part's chunk released since: written again
		}
		if err := write(id, data); err != nil {
			return err
		}
		if ob != nil && u.fresh[id].Compression == uint8(segment.Raw) {
			outboards[id] = ob
			if len(outboards) >= 16 {
				if err := e.putOutboards(outboards); err != nil {
					return err
				}
			}
		}
	}
	if err := e.putOutboards(outboards); err != nil {
		return err
	}
	hashing.Wait()
	u.id = whole.ID()
	switch {
	case pre != nil:
		u.id = pre.id
	case wholeIsChunk:
		u.id = u.chunks[0].ID
	}
	if dupHeld != nil {
		comp, payload := e.comp.Compress(nil, dupHeld)
		u.again = &index.Inline{Compression: uint8(comp), Raw: uint32(len(dupHeld)), Payload: payload}
	}
	if held != nil {
		start := time.Now()
		comp, payload := e.comp.Compress(nil, held)
		u.inline = &index.Inline{Compression: uint8(comp), Raw: uint32(len(held)), Payload: payload}
		u.fresh[heldID] = index.Location{Stored: uint32(len(payload)), Raw: uint32(len(held)), Compression: uint8(comp)}
		u.written += int64(len(held))
		u.writing += int64(time.Since(start))
		e.stats.writtenBytes.Add(uint64(len(payload)))
	}
	// In object mode with the index in the folder, the chunks become
	// durable with the log record of the transaction that commits them,
	// in the same put (log.go); otherwise they are synced (or put) here.
	if len(u.ends) > 0 && !e.logged() {
		start := time.Now()
		if err := e.w.Sync(last.End()); err != nil {
			return e.fail(err)
		}
		e.writeCost.observe(u.written, u.writing, time.Since(start))
	}
	return nil
}

// prehashed is a content's ID and outboard, hashed before it was chunked.
type prehashed struct {
	id blob.ID
	ob []byte
}

// storedWhole makes u the upload of content id, of size bytes, if that
// is stored already: its chunk list is the stored blob's, each chunk
// pinned as if the upload had found it stored (pinIfStored), and nothing
// is chunked, hashed again or written. It reports false, with no pin
// held, if the blob or any of its chunks is not there to be pinned.
func (e *Engine) storedWhole(u *Upload, id blob.ID, size int64) (bool, error) {
	done, err := e.pinBlob(u, id, size)
	if done {
		e.stats.dedupChunks.Add(uint64(len(u.pinned)))
		e.stats.dedupBytes.Add(uint64(u.dedup))
		e.stats.wholeDedup.Add(1)
	}
	return done, err
}

// pinBlob makes u the upload of blob id, of size bytes, if it is stored:
// each of its chunks pinned, as pinIfStored pins them. If one cannot be,
// u is left as it was, its pins given back.
func (e *Engine) pinBlob(u *Upload, id blob.ID, size int64) (bool, error) {
	b, ok, err := e.idx.Blob(id)
	if err != nil {
		return false, corrupt(err)
	}
	if !ok || b.Size != size {
		return false, nil
	}
	seen := make(map[blob.ID]bool, len(b.Chunks))
	var pinned []blob.ID
	var dedup int64
	for _, c := range b.Chunks {
		if seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		_, stored, err := e.pinIfStored(c.ID)
		if err == nil && stored {
			pinned = append(pinned, c.ID)
			dedup += int64(c.Size)
			continue
		}
		for _, p := range pinned {
			e.unpinChunk(p)
		}
		return false, err
	}
	u.id, u.size, u.chunks = id, size, b.Chunks
	u.pinned = append(u.pinned, pinned...)
	u.dedup += dedup
	return true, nil
}

// MinOutboard is the least size of a chunk that gets an outboard: a read
// of part of a smaller one reads it whole.
const MinOutboard = 64 << 10

// putOutboards writes the outboards of chunks just appended to the index,
// unsynced (they are only ever a way to verify part of a chunk: see
// index.DB.PutOutboards), and empties obs.
func (e *Engine) putOutboards(obs map[blob.ID][]byte) error {
	if len(obs) == 0 {
		return nil
	}
	if err := e.idx.PutOutboards(obs); err != nil {
		return e.fail(err)
	}
	clear(obs)
	return nil
}

// pinIfStored pins chunk id if the index has it (and returns where), under its stripe lock, so
// that no delete can release it before the upload commits.
func (e *Engine) pinIfStored(id blob.ID) (index.Location, bool, error) {
	var (
		c      index.Chunk
		stored bool
		err    error
	)
	k := pinKey{index.ZeroChunk, id}
	e.locks.withStripe(e.locks.ofID(k.kind, id), func(st *stripe) {
		c, stored, err = e.idx.Chunk(id)
		if stored && c.Refs == 0 && e.shared {
			// Another node's GC may release it any moment: store the
			// bytes again (the commit keeps whichever copy is indexed).
			stored = false
		}
		if stored && err == nil {
			st.pin(k)
		}
	})
	return c.Location, stored, err
}

// unpinChunk gives back a pin pinIfStored took.
func (e *Engine) unpinChunk(id blob.ID) {
	k := pinKey{index.ZeroChunk, id}
	e.locks.withStripe(e.locks.ofID(k.kind, id), func(st *stripe) { st.unpin(k) })
}

// oldestUploadSegment returns the lowest active segment an in-flight upload
// started in, or 0 if there is none.
func (e *Engine) oldestUploadSegment() uint64 {
	e.uploadsMu.Lock()
	defer e.uploadsMu.Unlock()
	var oldest uint64
	for _, s := range e.uploads {
		if oldest == 0 || s < oldest {
			oldest = s
		}
	}
	return oldest
}
