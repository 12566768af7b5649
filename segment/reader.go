package segment

import (
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/internal/blob"
)

// Reader reads records of one segment by offset. It is safe for concurrent
// use.
type Reader struct {
	r    io.ReaderAt
	path string
	c    *Compressor
}

// NewReader returns a Reader over r; path names the file in errors.
func NewReader(r io.ReaderAt, path string, c *Compressor) *Reader {
	return &Reader{r: r, path: path, c: c}
}

func (r *Reader) corrupt(off int64, format string, args ...any) error {
	return &CorruptionError{Path: r.path, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// ReadChunk reads the chunk record at off, whose stored length the caller
// knows from the index, in one read; checks its header and payload; decodes
// it; and returns its content only if that hashes to want. Any failed check
// is a *CorruptionError (errors.Is(err, ErrCorrupt)), never wrong bytes.
//
// scratch is reused (and grown) for the record and its decoded content; the
// returned content aliases *scratch.
func (r *Reader) ReadChunk(off int64, stored int, want blob.ID, scratch *[]byte) ([]byte, error) {
	if stored < 0 || stored > MaxPayload {
		return nil, r.corrupt(off, "stored length %d from the index is out of range", stored)
	}
	n := RecordHeaderSize + stored
	buf := grow(scratch, n)
	if _, err := r.r.ReadAt(buf[:n], off); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, r.corrupt(off, "record of %d bytes runs past the end of the file", n)
		}
		return nil, fmt.Errorf("segment: read %s at %d: %w", r.path, off, err)
	}
	h, reason := decodeHeader(buf)
	if reason != "" {
		return nil, r.corrupt(off, "%s", reason)
	}
	if h.Kind != KindChunk {
		return nil, r.corrupt(off, "record of kind %d where a chunk should be", h.Kind)
	}
	if int(h.Stored) != stored {
		return nil, r.corrupt(off, "stored length %d, index says %d", h.Stored, stored)
	}
	if h.ID != want {
		return nil, r.corrupt(off, "record holds chunk %s, want %s", h.ID, want)
	}
	payload := buf[RecordHeaderSize:n]
	if got := checksum(payload); got != h.PayloadCRC {
		return nil, r.corrupt(off, "payload checksum %08x, want %08x", got, h.PayloadCRC)
	}
	content := payload
	if h.Compression == Zstd {
		// The payload moves to a pooled buffer and decodes into scratch,
		// so that scratch needs no more than the larger of the record and
		// the content (a caller that sized it for the content does not
		// see it grown), and nothing the size of a chunk is allocated.
		p := payloads.Get().(*[]byte)
		defer payloads.Put(p)
		payload = append((*p)[:0], payload...)
		*p = payload
		if cap(*scratch) < int(h.Raw) {
			*scratch = make([]byte, 0, h.Raw)
		}
		out, err := r.c.Decompress((*scratch)[:0], payload, int(h.Raw))
		if err != nil {
			return nil, r.corrupt(off, "zstd payload: %v", err)
		}
		// out is (*scratch)[:h.Raw]: keep scratch's capacity.
		*scratch, content = (*scratch)[:len(out)], out
	}
	if got := blob.Sum(content); got != want {
		return nil, r.corrupt(off, "content hashes to %s, want %s", got, want)
	}
	return content, nil
}

// ReadPayloadAt reads len(p) bytes of the payload of the record at off,
// from byte from of the payload, without checking anything: the caller
// verifies them (a raw payload's part, against the chunk's outboard).
func (r *Reader) ReadPayloadAt(p []byte, off, from int64) error {
	if off < 0 || from < 0 || from+int64(len(p)) > MaxPayload {
		return r.corrupt(off, "payload range %d+%d from the index is out of range", from, len(p))
	}
	if _, err := r.r.ReadAt(p, off+RecordHeaderSize+from); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return r.corrupt(off, "payload range %d+%d runs past the end of the file", from, len(p))
		}
		return fmt.Errorf("segment: read %s at %d: %w", r.path, off, err)
	}
	return nil
}

// payloads are compressed payloads being decoded (*[]byte).
var payloads = sync.Pool{New: func() any { return new([]byte) }}

// grow returns *b resized to at least n bytes, keeping its contents.
func grow(b *[]byte, n int) []byte {
	if cap(*b) < n {
		nb := make([]byte, n)
		copy(nb, *b)
		*b = nb
	}
	*b = (*b)[:n]
	return *b
}

// ScannedRecord is a record found by a Scanner.
type ScannedRecord struct {
	Header
	Offset  int64
	Payload []byte // valid until the next call to Next
}

// Scanner walks the records of a segment from an offset, checking each,
// and stops at the end of the data: the end of the file, zero bytes, or the
// first torn or corrupt record.
type Scanner struct {
	r       io.ReaderAt
	path    string
	size    int64
	off     int64 // next record
	c       *Compressor
	verify  bool
	rec     ScannedRecord
	buf     []byte
	content []byte
	err     error
	done    bool
}

// NewScanner returns a Scanner over the first size bytes of r, starting at
// offset start (FileHeaderSize for a whole segment; the file header is not
// read). If c is not nil, each record's content is also decoded and hashed
// against its chunk ID, as reindex and scrub need; without it the checksums
// alone are checked, as recovery needs.
func NewScanner(r io.ReaderAt, size int64, path string, start int64, c *Compressor) *Scanner {
	return &Scanner{r: r, path: path, size: size, off: start, c: c, verify: c != nil}
}

// Next advances to the next record and reports whether there is one.
func (s *Scanner) Next() bool {
	if s.done {
		return false
	}
	if s.size-s.off < RecordHeaderSize {
		s.done = true
		if s.off < s.size {
			tail := make([]byte, s.size-s.off)
			if _, err := s.r.ReadAt(tail, s.off); err != nil && !errors.Is(err, io.EOF) {
				s.err = fmt.Errorf("segment: read %s at %d: %w", s.path, s.off, err)
			} else if !allZero(tail) {
				s.err = s.corrupt("%d bytes at the end of the file are a partial record header", len(tail))
			}
		}
		return false
	}
	var hb [RecordHeaderSize]byte
	if _, err := s.r.ReadAt(hb[:], s.off); err != nil {
		return s.stop(fmt.Errorf("segment: read %s at %d: %w", s.path, s.off, err))
	}
	if allZero(hb[:]) {
		s.done = true
		return false
	}
	h, reason := decodeHeader(hb[:])
	if reason != "" {
		return s.stop(s.corrupt("%s", reason))
	}
	if h.Size() > s.size-s.off {
		return s.stop(s.corrupt("record of %d bytes runs past the end of the file (%d bytes left)", h.Size(), s.size-s.off))
	}
	payload := grow(&s.buf, int(h.Stored))
	if len(payload) > 0 {
		if _, err := s.r.ReadAt(payload, s.off+RecordHeaderSize); err != nil {
			return s.stop(fmt.Errorf("segment: read %s at %d: %w", s.path, s.off, err))
		}
	}
	if got := checksum(payload); got != h.PayloadCRC {
		return s.stop(s.corrupt("payload checksum %08x, want %08x", got, h.PayloadCRC))
	}
	if s.verify {
		content := payload
		if h.Compression == Zstd {
			out, err := s.c.Decompress(s.content[:0], payload, int(h.Raw))
			if err != nil {
				return s.stop(s.corrupt("zstd payload: %v", err))
			}
			s.content, content = out, out
		}
		if got := blob.Sum(content); got != h.ID {
			return s.stop(s.corrupt("content hashes to %s, record says %s", got, h.ID))
		}
	}
	s.rec = ScannedRecord{Header: h, Offset: s.off, Payload: payload}
	s.off += h.Size()
	return true
}

func (s *Scanner) stop(err error) bool {
	s.err, s.done = err, true
	return false
}

func (s *Scanner) corrupt(format string, args ...any) error {
	return &CorruptionError{Path: s.path, Offset: s.off, Reason: fmt.Sprintf(format, args...)}
}

// Record returns the current record.
func (s *Scanner) Record() ScannedRecord { return s.rec }

// End returns the offset just after the last good record: where the data
// ends, and where appending would continue.
func (s *Scanner) End() int64 { return s.off }

// Err returns nil if the scan reached a clean end of data (end of file or
// zero bytes), a *CorruptionError at the torn or corrupt record it stopped
// at (its offset is End), or an I/O error.
func (s *Scanner) Err() error { return s.err }

// RecoverResult says what Recover found.
type RecoverResult struct {
	// End is where the data ends: appending continues there.
	End int64
	// Torn is the error that ended the scan, if it was not a clean end: the
	// bytes from End on were zeroed.
	Torn error
	// Zeroed is how many bytes were overwritten with zeros.
	Zeroed int64
}

// Recover prepares segment id of dir for appending after a crash. Records
// before from are trusted (the caller knows they were synced); from there
// it scans, and zeroes everything after the last good record, then syncs,
// so that nothing torn can ever be read back as a record. The file header
// must be valid.
func Recover(fs vfs.FS, dir string, id uint64, from int64) (RecoverResult, error) {
	path := fs.PathJoin(dir, FileName(id))
	f, err := fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return RecoverResult{}, fmt.Errorf("segment: recover %s: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return RecoverResult{}, fmt.Errorf("segment: recover %s: %w", path, err)
	}
	size := info.Size()
	hb := make([]byte, min(size, FileHeaderSize))
	if _, err := f.ReadAt(hb, 0); err != nil && !errors.Is(err, io.EOF) {
		return RecoverResult{}, fmt.Errorf("segment: recover %s: %w", path, err)
	}
	h, err := ParseFileHeader(hb, path)
	if err != nil {
		return RecoverResult{}, err
	}
	if h.Segment != id {
		return RecoverResult{}, &CorruptionError{Path: path, Reason: fmt.Sprintf("file header names segment %d", h.Segment)}
	}
	from = max(from, FileHeaderSize)
	if from > size {
		return RecoverResult{}, &CorruptionError{Path: path, Offset: size,
			Reason: fmt.Sprintf("file ends at %d, before the %d bytes known to be synced", size, from)}
	}
	sc := NewScanner(f, size, path, from, nil)
	for sc.Next() {
	}
	res := RecoverResult{End: sc.End()}
	if err := sc.Err(); err != nil {
		if !errors.Is(err, ErrCorrupt) {
			return RecoverResult{}, err
		}
		res.Torn = err
	}
	zeroed, err := zeroTail(f, res.End, size)
	res.Zeroed = zeroed
	if err != nil {
		return res, fmt.Errorf("segment: recover %s: %w", path, err)
	}
	if zeroed > 0 {
		if err := f.SyncData(); err != nil {
			return res, fmt.Errorf("segment: recover %s: sync: %w", path, err)
		}
	}
	return res, nil
}

// zeroTail overwrites the non-zero blocks of f in [from, size) with zeros.
func zeroTail(f vfs.File, from, size int64) (int64, error) {
	const block = 1 << 20
	buf := make([]byte, block)
	zeros := make([]byte, block)
	var zeroed int64
	for off := from; off < size; off += block {
		n := min(block, size-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return zeroed, err
		}
		if allZero(buf[:n]) {
			continue
		}
		if _, err := f.WriteAt(zeros[:n], off); err != nil {
			return zeroed, err
		}
		zeroed += n
	}
	return zeroed, nil
}
