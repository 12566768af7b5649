package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/segment"
)

// BlobInfo describes a stored blob.
type BlobInfo struct {
	ID      blob.ID
	Size    int64
	Refs    uint64 // records referring to it
	Chunks  int
	Created time.Time
}

// Stat returns what the index knows of a blob, or ErrNotFound.
func (e *Engine) Stat(id blob.ID) (BlobInfo, error) {
	b, ok, err := e.idx.Blob(id)
	if err != nil {
		return BlobInfo{}, corrupt(err)
	}
	if !ok {
		return BlobInfo{}, fmt.Errorf("%w: blob %s", ErrNotFound, id)
	}
	return BlobInfo{ID: id, Size: b.Size, Refs: b.Refs, Chunks: len(b.Chunks), Created: time.Unix(0, b.Created).UTC()}, nil
}

// Reader reads one blob. Read and Seek make it an io.ReadSeeker for
// http.ServeContent; ReadAt may be called concurrently. Only the chunks a
// read touches are read, and each is verified before its bytes are
// returned, or found in the engine's cache of verified chunks (readCache).
// While a Reader is open its blob is not released, even if the last
// record referring to it is deleted. Close it.
type Reader struct {
	e      *Engine
	id     blob.ID
	scope  string
	size   int64
	chunks []index.ChunkRef
	// starts[i] is the offset of chunk i in the blob; starts[len] = size.
	starts []int64
	pos    int64
	closed bool
	// winFrom, winTo: the reads to come are of these bytes (Window).
	winFrom, winTo int64
	// partOf is the chunk this window reads in part, or -1.
	partOf atomic.Int64
}

// Open returns a Reader of blob id, or ErrNotFound. Its reads share the
// read cache with every other Reader opened by Open; the APIs use
// OpenRecord, whose cache is the tenant's own.
func (e *Engine) Open(id blob.ID) (*Reader, error) {
	return e.open(id, "")
}

// OpenRecord returns a Reader of rec's content, or ErrNotFound. The
// chunks it reads are cached for the record's namespace and tenant only,
// so how fast a read is tells nothing of what other tenants read.
func (e *Engine) OpenRecord(rec Record) (*Reader, error) {
	return e.open(rec.Blob, rec.Key.Namespace+"\x00"+rec.Key.Tenant)
}

// OpenRecords reads the contents of recs one after the other, each
// opened (OpenRecord) when the one before it ends.
func (e *Engine) OpenRecords(recs []Record) io.ReadCloser {
	return &multiReader{e: e, recs: recs}
}

type multiReader struct {
	e    *Engine
	recs []Record
	cur  *Reader
}

func (m *multiReader) Read(p []byte) (int, error) {
	for {
		if m.cur == nil {
			if len(m.recs) == 0 {
				return 0, io.EOF
			}
			r, err := m.e.OpenRecord(m.recs[0])
			if err != nil {
				return 0, err
			}
			m.cur, m.recs = r, m.recs[1:]
		}
		n, err := m.cur.Read(p)
		if errors.Is(err, io.EOF) {
			m.cur.Close()
			m.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (m *multiReader) Close() error {
	if m.cur == nil {
		return nil
	}
	err := m.cur.Close()
	m.cur = nil
	return err
}

func (e *Engine) open(id blob.ID, scope string) (*Reader, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	var (
		b   index.Blob
		ok  bool
		err error
	)
	k := pinKey{index.ZeroBlob, id}
	began := e.opts.Now().UnixNano()
	e.locks.withStripe(e.locks.ofID(k.kind, id), func(st *stripe) {
		b, ok, err = e.idx.Blob(id)
		if ok && err == nil {
			st.pin(k)
		}
	})
	if err != nil {
		return nil, corrupt(err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: blob %s", ErrNotFound, id)
	}
	r := &Reader{e: e, id: id, scope: scope, size: b.Size, chunks: b.Chunks}
	if e.shared {
		e.inflight.add(r, began)
	}
	r.partOf.Store(-1)
	r.starts = make([]int64, len(b.Chunks)+1)
	for i, c := range b.Chunks {
		r.starts[i+1] = r.starts[i] + int64(c.Size)
	}
	if r.starts[len(b.Chunks)] != b.Size {
		r.Close()
		return nil, corruptf("blob %s: chunks add up to %d bytes, not %d", id, r.starts[len(b.Chunks)], b.Size)
	}
	return r, nil
}

// ID returns the blob's ID.
func (r *Reader) ID() blob.ID { return r.id }

// Size returns the blob's length.
func (r *Reader) Size() int64 { return r.size }

// Close releases the reader's pin on its blob.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	if r.e.shared {
		r.e.inflight.done(r)
	}
	k := pinKey{index.ZeroBlob, r.id}
	r.e.locks.withStripe(r.e.locks.ofID(k.kind, r.id), func(st *stripe) { st.unpin(k) })
	return nil
}

// chunkAt returns the index of the chunk holding offset off < size.
func (r *Reader) chunkAt(off int64) int {
	return sort.Search(len(r.chunks), func(i int) bool { return r.starts[i+1] > off })
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	if r.pos >= r.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := r.copyAt(p, r.pos)
	r.pos += int64(n)
	return n, err
}

// Window says that the reads to come, from the current position, are of
// its next n bytes (an HTTP range): a chunk of which they need only a part
// is read in part, the groups of it they need verified by the chunk's
// outboard, rather than read and hashed whole; unless it is cached, or
// read in part recently (readCache.partAgain): then it is read whole and
// cached.
func (r *Reader) Window(n int64) {
	r.winFrom, r.winTo = r.pos, r.pos+max(n, 0)
	r.partOf.Store(-1)
}

// copyAt copies into p the bytes at off < size from the one chunk that
// holds off.
func (r *Reader) copyAt(p []byte, off int64) (int, error) {
	i := r.chunkAt(off)
	if n, ok := r.copyPart(p, off, i); ok {
		return n, nil
	}
	v, err := r.chunk(i)
	if err != nil {
		return 0, err
	}
	n := copy(p, v.data[off-r.starts[i]:])
	r.e.reads.done(v)
	return n, nil
}

// copyPart copies into p the bytes at off from part of chunk i, if the
// window needs only part of that chunk and Window's rule says so, and it
// can be read in part (raw, with an outboard); it reports whether it did.
// Anything amiss (a chunk moved since, an outboard that does not verify
// the part) leaves the read to copyAt's whole-chunk path, which verifies
// the whole chunk and reports what is corrupt.
func (r *Reader) copyPart(p []byte, off int64, i int) (int, bool) {
	ref := r.chunks[i]
	start, end := r.starts[i], r.starts[i+1]
	from, to := max(r.winFrom, start), min(r.winTo, end)
	if off < from || off >= to || to-from == end-start || int64(ref.Size) < MinOutboard {
		return 0, false
	}
	if r.partOf.Load() != int64(i) {
		k := cacheKey{r.scope, ref.ID}
		if r.e.reads.has(k) || r.e.reads.partAgain(k) {
			return 0, false
		}
		r.partOf.Store(int64(i))
	}
	// The groups holding [off, off+len(p)) within the window, relative to
	// the chunk.
	lo := (off - start) &^ (blob.OutboardGroup - 1)
	hi := min(off-start+int64(len(p)), to-start)
	hi = min((hi+blob.OutboardGroup-1)&^(blob.OutboardGroup-1), end-start)
	r.e.reads.reserve(hi - lo)
	defer r.e.reads.unreserve(hi - lo)
	scratch := r.e.getScratch()
	defer r.e.scratch.Put(scratch)
	part, err := r.e.readPart(ref, lo, hi, scratch)
	if err != nil {
		if !errors.Is(err, errNoPart) {
			r.e.log.Warn("part of a chunk not verified by its outboard; reading it whole", "chunk", ref.ID, "err", err)
		}
		return 0, false
	}
	return copy(p, part[off-start-lo:]), true
}

// errNoPart: a chunk cannot be read in part (compressed, inline, no
// outboard).
var errNoPart = errors.New("engine: chunk not readable in part")

// readPart returns bytes [from, to) of chunk ref, read from its segment
// and verified by its outboard; from is a multiple of blob.OutboardGroup
// and to is too, or the chunk's end.
func (e *Engine) readPart(ref index.ChunkRef, from, to int64, scratch *[]byte) ([]byte, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	c, ok, err := e.idx.Chunk(ref.ID)
	if err != nil || !ok || c.Raw != ref.Size || !hasOutboard(c.Location) {
		return nil, errNoPart
	}
	ob, ok, err := e.idx.Outboard(ref.ID)
	if err != nil || !ok {
		return nil, errNoPart
	}
	sf, err := e.files.acquire(c.Segment)
	if err != nil {
		return nil, err
	}
	defer e.files.release(sf)
	buf := grow(scratch, int(to-from))
	if err := sf.ReadPayloadAt(buf, c.Offset, from); err != nil {
		return nil, err
	}
	if !blob.VerifyPart(buf, ob, from, ref.ID) {
		return nil, corruptf("chunk %s: bytes %d-%d at %s offset %d do not verify by its outboard", ref.ID, from, to, segment.FileName(c.Segment), c.Offset)
	}
	e.stats.partReads.Add(1)
	return buf, nil
}

// grow returns *b resized to n bytes.
func grow(b *[]byte, n int) []byte {
	if cap(*b) < n {
		*b = make([]byte, n)
	}
	*b = (*b)[:n]
	return *b
}

// chunk returns chunk i, verified, in use until reads.done is called on
// it: from the read cache, or read from disk into it.
func (r *Reader) chunk(i int) (*cached, error) {
	k := cacheKey{r.scope, r.chunks[i].ID}
	if v := r.e.reads.get(k); v != nil {
		return v, nil
	}
	// The chunk's bytes count against the cache's budget from before they
	// are read (see readCache).
	reserved := int64(segment.RecordHeaderSize) + int64(r.chunks[i].Size)
	r.e.reads.reserve(reserved)
	buf := getBuffer(int(reserved))
	data, err := r.e.readChunk(r.id, r.chunks[i], buf)
	if err != nil {
		putBuffer(buf)
		r.e.reads.unreserve(reserved)
		return nil, err
	}
	return r.e.reads.add(k, buf, data, reserved), nil
}

// Seek implements io.Seeker.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.pos + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, fmt.Errorf("engine: seek: invalid whence %d", whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("engine: seek: negative position %d", abs)
	}
	r.pos = abs
	return abs, nil
}

// ReadAt implements io.ReaderAt; it is safe to call concurrently with
// other ReadAt calls.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if r.closed {
		return 0, os.ErrClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("engine: read at negative offset %d", off)
	}
	if off >= r.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && off < r.size {
		c, err := r.copyAt(p[n:], off)
		n += c
		off += int64(c)
		if err != nil {
			return n, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (e *Engine) getScratch() *[]byte {
	if p, ok := e.scratch.Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

// readChunk returns the verified content of one chunk of blob id.
func (e *Engine) readChunk(id blob.ID, ref index.ChunkRef, scratch *[]byte) ([]byte, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	// A chunk can move (compaction copies it and removes its old segment)
	// between the index lookup and the read: look again if the file went.
	for attempt := 0; ; attempt++ {
		c, ok, err := e.idx.Chunk(ref.ID)
		if err != nil {
			return nil, corrupt(err)
		}
		if !ok {
			return nil, e.corruptRead(corruptf("blob %s: chunk %s is missing from the index", id, ref.ID))
		}
		if c.Raw != ref.Size {
			return nil, e.corruptRead(corruptf("blob %s: chunk %s has %d bytes, the blob says %d", id, ref.ID, c.Raw, ref.Size))
		}
		if c.Inline() {
			data, err := e.readInline(e.idx, ref.ID, c.Location, scratch)
			if err != nil {
				return nil, e.corruptRead(err)
			}
			e.stats.chunkReads.Add(1)
			return data, nil
		}
		sf, err := e.files.acquire(c.Segment)
		if err != nil {
			if errors.Is(err, ErrCorrupt) && attempt < 3 {
				continue
			}
			return nil, e.corruptRead(err)
		}
		data, err := sf.ReadChunk(c.Offset, int(c.Stored), ref.ID, scratch)
		e.files.release(sf)
		if err != nil {
			if isCorrupt(err) {
				return nil, e.corruptRead(err)
			}
			return nil, err
		}
		e.stats.chunkReads.Add(1)
		return data, nil
	}
}

// inlineReader is the index, or a snapshot of it.
type inlineReader interface {
	Inline(id blob.ID) (index.Inline, bool, error)
}

// readInline returns the verified content of a chunk kept in the index v,
// at loc, or a corruption error.
func (e *Engine) readInline(v inlineReader, id blob.ID, loc index.Location, scratch *[]byte) ([]byte, error) {
	in, ok, err := v.Inline(id)
	if err != nil {
		return nil, corrupt(err)
	}
	if !ok {
		return nil, corruptf("chunk %s: its inline payload is missing from the index", id)
	}
	if in.Compression != loc.Compression || in.Raw != loc.Raw || len(in.Payload) != int(loc.Stored) {
		return nil, corruptf("chunk %s: inline payload of %d bytes (%d raw, compression %d), the index says %d (%d, %d)",
			id, len(in.Payload), in.Raw, in.Compression, loc.Stored, loc.Raw, loc.Compression)
	}
	return e.verifyInline(id, in, scratch)
}

// verifyInline returns the content of an inline payload, decoded into
// scratch, if it is chunk id's: a segment read's checks, for the index.
func (e *Engine) verifyInline(id blob.ID, in index.Inline, scratch *[]byte) ([]byte, error) {
	// The content goes into scratch, as a segment read's does: the read
	// cache counts the buffer it keeps.
	var (
		content []byte
		err     error
	)
	switch segment.Compression(in.Compression) {
	case segment.Raw:
		content = append((*scratch)[:0], in.Payload...)
	case segment.Zstd:
		content, err = e.comp.Decompress((*scratch)[:0], in.Payload, int(in.Raw))
		if err != nil {
			return nil, corruptf("chunk %s: inline zstd payload: %v", id, err)
		}
	default:
		return nil, corruptf("chunk %s: inline payload of unknown compression %d", id, in.Compression)
	}
	*scratch = content
	if len(content) != int(in.Raw) {
		return nil, corruptf("chunk %s: inline content of %d bytes, want %d", id, len(content), in.Raw)
	}
	if got := blob.Sum(content); got != id {
		return nil, corruptf("chunk %s: inline content hashes to %s", id, got)
	}
	return content, nil
}

func (e *Engine) corruptRead(err error) error {
	e.stats.corruptReads.Add(1)
	e.log.Error("corrupt data", "err", err)
	return corrupt(err)
}
