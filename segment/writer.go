package segment

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/internal/blob"
)

// Defaults for WriterOptions.
const (
	DefaultSegmentSize = 1 << 30
	DefaultPreallocate = 64 << 20
)

// WriterOptions configure a Writer. The zero value means the defaults.
type WriterOptions struct {
	// SegmentSize is the size at which the active segment is sealed: a
	// record that would take it past this size goes to a new segment
	// instead. A segment always holds at least one record. Default 1 GiB.
	SegmentSize int64
	// Preallocate is how much space is reserved ahead of the write offset,
	// so that appends rarely allocate blocks. Default 64 MiB, capped at
	// SegmentSize.
	Preallocate int64
	// OnSeal, if set, is called after a segment is synced for the last time,
	// before the next one is created, with the writer locked. size is the
	// end of its data. An error fails the writer.
	OnSeal func(id uint64, size int64) error
	// OnSync, if set, is called after each fdatasync with its duration.
	OnSync func(time.Duration)
	// Persist, if set, makes segments durable elsewhere (in an object
	// store) instead of by fdatasync; the files in dir are then only a
	// local copy. Sync(pos) seals the segment holding pos, starts the
	// next so that appends go on meanwhile, and calls Persist(id, size)
	// without the lock, then OnSeal: concurrent Syncs share one Persist
	// per segment, in segment order. A failed Persist is not sticky: the
	// segment stays sealed and pending, and the next Sync tries it again
	// (Persist must be idempotent). Nothing is fsynced.
	Persist func(id uint64, size int64) error
	// OnAppend, if set, is called after each append, with the writer
	// locked (so it must not block), with the segment and its new end:
	// everything before end is written to the file. Persist mode uses it
	// to start putting a growing segment before it is sealed.
	OnAppend func(id uint64, end int64)
	// NextID, if set, gives the ID of the segment to create after the
	// sealed one, after (which it must exceed); by default after+1.
	// Several writers sharing one store's IDs take them from elsewhere.
	NextID func(after uint64) (uint64, error)
}

func (o WriterOptions) withDefaults() WriterOptions {
	if o.SegmentSize <= 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.Preallocate <= 0 {
		o.Preallocate = DefaultPreallocate
	}
	o.Preallocate = min(o.Preallocate, o.SegmentSize)
	return o
}

// Pos is a position in the sequence of segments: everything before it.
type Pos struct {
	Segment uint64
	Offset  int64
}

// Less orders positions by segment, then offset.
func (p Pos) Less(q Pos) bool {
	return p.Segment < q.Segment || p.Segment == q.Segment && p.Offset < q.Offset
}

// Location is where a record was appended.
type Location struct {
	Segment uint64
	Offset  int64 // of the record header
	Size    int64 // header and payload
}

// End is the position just after the record.
func (l Location) End() Pos { return Pos{l.Segment, l.Offset + l.Size} }

// Record is a chunk to append: its ID, content length, and payload as the
// Compressor produced it.
type Record struct {
	ID          blob.ID
	Compression Compression
	Raw         uint32
	Payload     []byte
}

// Writer appends records to the active segment of a directory, sealing it
// and starting the next at the size limit. See the package doc.
type Writer struct {
	fs   vfs.FS
	dir  string
	opts WriterOptions

	mu   sync.Mutex
	cond sync.Cond // signalled when a sync ends; uses mu
	// f is the active segment, opened for writing. It is nil after Close,
	// and between sealing a segment and creating the next when the disk
	// was full (the next Append retries the creation).
	f vfs.File
	// closed is set by Close.
	closed bool
	// id is the active segment's id.
	id uint64
	// off is where the next record goes; everything before it is written.
	off int64
	// alloc is how far space is preallocated in f.
	alloc int64
	// kicked: the kernel was asked to start writing back everything
	// before it (kickWriteback).
	kicked int64
	// synced: everything before it is durable. synced ≤ (id, off).
	synced Pos
	// syncing is true while a goroutine runs fdatasync without mu held.
	syncing bool
	// err is sticky: once a write or sync fails, every call returns it.
	err error
	// buf assembles a record; guarded by mu.
	buf []byte
	// pending are the segments sealed but not yet persisted, oldest
	// first, with their ends (Persist mode only).
	pending []Pos
}

// OpenWriter returns a writer that appends to segment id of dir at offset.
// With offset 0 the segment must not exist: it is created, with its header,
// and the directory is synced. Otherwise the segment must exist and hold
// nothing that matters from offset on (see Recover).
func OpenWriter(fs vfs.FS, dir string, id uint64, offset int64, opts WriterOptions) (*Writer, error) {
	w := &Writer{fs: fs, dir: dir, opts: opts.withDefaults()}
	w.cond.L = &w.mu
	if offset == 0 {
		if err := w.create(id); err != nil {
			return nil, err
		}
		return w, nil
	}
	if offset < FileHeaderSize {
		return nil, fmt.Errorf("segment: open writer at offset %d inside the file header", offset)
	}
	f, err := fs.OpenReadWrite(fs.PathJoin(dir, FileName(id)), vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("segment: open %s: %w", FileName(id), err)
	}
	w.f, w.id, w.off, w.alloc, w.kicked = f, id, offset, offset, offset
	w.synced = Pos{id, offset}
	return w, nil
}

// create makes segment id the active one: a new file with its header,
// synced, and the directory synced so the file survives a crash.
func (w *Writer) create(id uint64) error {
	path := w.fs.PathJoin(w.dir, FileName(id))
	if _, err := w.fs.Stat(path); err == nil {
		return fmt.Errorf("segment: create %s: file exists", path)
	}
	f, err := w.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("segment: create %s: %w", path, err)
	}
	fail := func(err error) error {
		f.Close()
		w.fs.Remove(path)
		return err
	}
	alloc, err := w.reserve(f, 0, min(w.opts.Preallocate, w.opts.SegmentSize), FileHeaderSize)
	if err != nil {
		return fail(err)
	}
	if _, err := f.WriteAt(AppendFileHeader(nil, id), 0); err != nil {
		return fail(writeError(fmt.Errorf("segment: write header of %s: %w", path, err)))
	}
	if w.opts.Persist == nil {
		if err := w.syncFile(f); err != nil {
			return fail(fmt.Errorf("segment: sync %s: %w", path, err))
		}
		if err := syncDir(w.fs, w.dir); err != nil {
			return fail(err)
		}
	}
	w.f, w.id, w.off, w.kicked = f, id, FileHeaderSize, FileHeaderSize
	w.alloc = alloc
	if len(w.pending) == 0 {
		// Everything before the new segment is durable: synced before it
		// was sealed, or (Persist mode) persisted. A pending segment is
		// not, and synced stays at the end of the last persisted one.
		w.synced = Pos{id, FileHeaderSize}
	}
	return nil
}

// reserve preallocates want bytes at off or, when the disk has no room
// for that much, just the need bytes the next write takes: a nearly full
// disk still takes the records that fit (GC copying live chunks out of a
// sparse segment, say). It returns how much it reserved.
func (w *Writer) reserve(f vfs.File, off, want, need int64) (int64, error) {
	err := w.preallocate(f, off, want)
	if errors.Is(err, ErrNoSpace) && need < want {
		want, err = need, w.preallocate(f, off, need)
	}
	if err != nil {
		return 0, err
	}
	return want, nil
}

func (w *Writer) preallocate(f vfs.File, off, n int64) error {
	if err := f.Preallocate(off, n); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("%w: preallocate: %w", ErrNoSpace, err)
		}
		if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
			return nil // a file system without fallocate: appends allocate as they go
		}
		return fmt.Errorf("segment: preallocate: %w", err)
	}
	return nil
}

// writeError classifies a failed write: a full disk is not sticky (the
// bytes are rewritten by the next append at the same offset), anything
// else is.
func writeError(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// Append writes rec at the end of the active segment, sealing it first if
// rec would take it past the size limit. The record is not durable until a
// Sync covering its end returns.
func (w *Writer) Append(rec Record) (Location, error) {
	return w.append(KindChunk, rec)
}

// AppendLog appends payload as a log record (KindLog), raw, with the
// BLAKE3 of the payload as its ID. Like Append, it is durable once a
// Sync covering its end returns.
func (w *Writer) AppendLog(payload []byte) (Location, error) {
	return w.append(KindLog, Record{ID: blob.Sum(payload), Compression: Raw, Raw: uint32(len(payload)), Payload: payload})
}

// ErrDurable: Void was asked to withdraw a record already durable.
var ErrDurable = errors.New("segment: record already durable")

// Void withdraws a log record that is not yet durable (its Sync failed):
// its kind becomes KindVoid, so that readers skip it when its segment is
// made durable after all. A record already durable cannot be voided.
func (w *Writer) Void(loc Location) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.synced.Less(loc.End()) {
		return fmt.Errorf("segment: void %v: %w", loc, ErrDurable)
	}
	f := w.f
	if loc.Segment != w.id || f == nil {
		var err error
		if f, err = w.fs.OpenReadWrite(w.fs.PathJoin(w.dir, FileName(loc.Segment)), vfs.WriteCategoryUnspecified); err != nil {
			return fmt.Errorf("segment: void %v: %w", loc, err)
		}
		defer f.Close()
	}
	b := make([]byte, RecordHeaderSize)
	if _, err := f.ReadAt(b, loc.Offset); err != nil {
		return fmt.Errorf("segment: void %v: %w", loc, err)
	}
	h, reason := decodeHeader(b)
	if reason != "" || h.Kind != KindLog {
		return fmt.Errorf("segment: void %v: not a log record (%s)", loc, reason)
	}
	h.Kind = KindVoid
	h.encode(b)
	if _, err := f.WriteAt(b, loc.Offset); err != nil {
		return fmt.Errorf("segment: void %v: %w", loc, err)
	}
	return nil
}

func (w *Writer) append(kind uint8, rec Record) (Location, error) {
	if len(rec.Payload) > MaxPayload || rec.Raw > MaxPayload {
		return Location{}, fmt.Errorf("%w: %d bytes", ErrTooLarge, max(len(rec.Payload), int(rec.Raw)))
	}
	size := RecordHeaderSize + int64(len(rec.Payload))

	w.mu.Lock()
	defer w.mu.Unlock()
	// Checked again after each step: rollover waits for a running sync
	// without mu, and meanwhile another Append may have rolled over (so
	// the new segment has room) or failed.
	for {
		if err := w.usable(); err != nil {
			return Location{}, err
		}
		if w.f == nil {
			if err := w.createNext(); err != nil {
				return Location{}, err
			}
			continue
		}
		if w.off+size <= w.opts.SegmentSize || w.off == FileHeaderSize {
			break
		}
		if err := w.rollover(w.id); err != nil {
			return Location{}, err
		}
	}
	if end := w.off + size; end > w.alloc {
		// Reserve the next step, but not past the size limit unless this
		// record needs it.
		n := max(w.opts.Preallocate, end-w.alloc)
		if w.alloc < w.opts.SegmentSize {
			n = max(min(n, w.opts.SegmentSize-w.alloc), end-w.alloc)
		}
		got, err := w.reserve(w.f, w.alloc, n, end-w.alloc)
		if err != nil {
			return Location{}, err
		}
		w.alloc += got
	}

	h := Header{
		Kind: kind, Compression: rec.Compression,
		Stored: uint32(len(rec.Payload)), Raw: rec.Raw, ID: rec.ID,
		PayloadCRC: checksum(rec.Payload),
	}
	if cap(w.buf) < int(size) {
		w.buf = make([]byte, size)
	}
	b := w.buf[:size]
	h.encode(b)
	// Re-parse what was encoded: an encoding bug must not reach the disk.
	if got, reason := decodeHeader(b); reason != "" || got != h {
		panic(fmt.Sprintf("segment: header does not round-trip: %+v -> %+v (%s)", h, got, reason))
	}
	copy(b[RecordHeaderSize:], rec.Payload)
	if _, err := w.f.WriteAt(b, w.off); err != nil {
		err = writeError(fmt.Errorf("segment: append to %s at %d: %w", FileName(w.id), w.off, err))
		if !errors.Is(err, ErrNoSpace) {
			w.err = err
		}
		return Location{}, err
	}
	loc := Location{Segment: w.id, Offset: w.off, Size: size}
	w.off += size
	w.kickWriteback()
	if w.opts.OnAppend != nil {
		w.opts.OnAppend(w.id, w.off)
	}
	return loc, nil
}

// writebackStep is how much is written before the kernel is asked to
// start writing it back (kickWriteback).
const writebackStep = 4 << 20

// kickWriteback asks the kernel to start writing back what was appended
// since the last time, every writebackStep bytes
// (sync_file_range(SYNC_FILE_RANGE_WRITE): it starts the writes and
// does not wait for them), so that a large upload's data goes to the
// disk while the upload goes on, and the fdatasync that acknowledges it
// finds little left to write. It is only a hint: durability still comes
// from Sync alone.
func (w *Writer) kickWriteback() {
	if w.off-w.kicked < writebackStep {
		return
	}
	if fd := w.f.Fd(); fd != vfs.InvalidFd {
		_ = unix.SyncFileRange(int(fd), w.kicked, w.off-w.kicked, unix.SYNC_FILE_RANGE_WRITE)
	}
	w.kicked = w.off
}

func (w *Writer) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	return nil
}

// rollover seals segment id, the active one when called, and creates the
// next. Called with mu; it may wait for a running sync, and returns nil
// without sealing anything if meanwhile id stopped being the active
// segment (another Append rolled it over) or has none open.
func (w *Writer) rollover(id uint64) error {
	if w.opts.Persist != nil {
		// A running Persist is of an earlier, closed segment.
		if err := w.usable(); err != nil || w.f == nil || w.id != id {
			return err
		}
		return w.sealPending()
	}
	for w.syncing {
		w.cond.Wait()
	}
	if err := w.usable(); err != nil || w.f == nil || w.id != id {
		return err
	}
	if err := w.syncFile(w.f); err != nil {
		w.err = fmt.Errorf("segment: sync %s before sealing: %w", FileName(w.id), err)
		return w.err
	}
	w.synced = Pos{w.id, w.off}
	if w.opts.OnSeal != nil {
		if err := w.opts.OnSeal(w.id, w.off); err != nil {
			w.err = fmt.Errorf("segment: seal %s: %w", FileName(w.id), err)
			return w.err
		}
	}
	releaseTail(w.f, w.off)
	if err := w.f.Close(); err != nil {
		w.err = fmt.Errorf("segment: close sealed %s: %w", FileName(w.id), err)
		return w.err
	}
	w.f = nil
	return w.createNext()
}

// sealPending seals the active segment in Persist mode: it joins the
// pending ones, to be persisted by a Sync, and the next is created. Called
// with mu, no sync running on the active file.
func (w *Writer) sealPending() error {
	w.pending = append(w.pending, Pos{w.id, w.off})
	releaseTail(w.f, w.off)
	if err := w.f.Close(); err != nil {
		w.err = fmt.Errorf("segment: close sealed %s: %w", FileName(w.id), err)
		return w.err
	}
	w.f = nil
	return w.createNext()
}

// syncPersist is Sync in Persist mode. Called with mu.
func (w *Writer) syncPersist(pos Pos) error {
	for {
		if w.err != nil {
			return w.err
		}
		if !w.synced.Less(pos) {
			return nil
		}
		if w.syncing {
			w.cond.Wait()
			continue
		}
		if len(w.pending) == 0 {
			if w.f == nil || w.id != pos.Segment || w.off < pos.Offset {
				return fmt.Errorf("segment: sync to %v, past the end of what was written", pos)
			}
			// Seal the active segment: appends go on into the next while
			// this one is persisted. On a full disk the next is created
			// by a later Append.
			if err := w.sealPending(); err != nil && w.err != nil {
				// Not a full disk, or NextID failing, after which a
				// later Append creates the next.
				return err
			}
		}
		target := w.pending[0]
		w.syncing = true
		w.mu.Unlock()
		start := time.Now()
		err := w.opts.Persist(target.Segment, target.Offset)
		if w.opts.OnSync != nil {
			w.opts.OnSync(time.Since(start))
		}
		sealErr := error(nil)
		if err == nil && w.opts.OnSeal != nil {
			sealErr = w.opts.OnSeal(target.Segment, target.Offset)
		}
		w.mu.Lock()
		w.syncing = false
		w.cond.Broadcast()
		if err != nil {
			return fmt.Errorf("segment: persist %s: %w", FileName(target.Segment), err)
		}
		if sealErr != nil {
			w.err = fmt.Errorf("segment: seal %s: %w", FileName(target.Segment), sealErr)
			return w.err
		}
		w.pending = w.pending[1:]
		w.synced = target
	}
}

// releaseTail gives back the space preallocated past end in a sealed
// segment: truncating a file to its own size frees the blocks fallocate
// reserved beyond it (ext4, XFS). It is space only, so a failure (or a
// file system without file descriptors, as in tests) is ignored: the
// segment stays whole, and GC frees the rest with the file.
func releaseTail(f vfs.File, end int64) {
	if fd := f.Fd(); fd != vfs.InvalidFd {
		_ = syscall.Ftruncate(int(fd), end)
	}
}

// createNext creates the segment after the sealed one. On a full disk the
// writer stays usable with no active file, and the next Append retries.
func (w *Writer) createNext() error {
	next := w.id + 1
	if w.opts.NextID != nil {
		id, err := w.opts.NextID(w.id)
		if err != nil {
			// Not the writer's fault, and nothing written: the next
			// Append tries again, as after a full disk.
			return err
		}
		if id <= w.id {
			w.err = fmt.Errorf("segment: NextID(%d) gave %d", w.id, id)
			return w.err
		}
		next = id
	}
	if err := w.create(next); err != nil {
		if !errors.Is(err, ErrNoSpace) {
			w.err = err
		}
		return err
	}
	return nil
}

func (w *Writer) syncFile(f vfs.File) error {
	start := time.Now()
	err := f.SyncData()
	if w.opts.OnSync != nil {
		w.opts.OnSync(time.Since(start))
	}
	return err
}

// Sync returns once everything before pos is durable. Concurrent callers
// share one fdatasync: while one runs, the others wait for it and, if it did
// not cover them, one of them runs the next. A failed sync fails the writer
// for good: a sync is never retried and then trusted.
func (w *Writer) Sync(pos Pos) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.opts.Persist != nil {
		return w.syncPersist(pos)
	}
	for {
		if w.err != nil {
			return w.err
		}
		if !w.synced.Less(pos) {
			return nil
		}
		if w.f == nil {
			// Closed, or between segments: everything written is synced, so
			// pos was never written.
			return fmt.Errorf("segment: sync to %v, past the end of what was written", pos)
		}
		if w.syncing {
			w.cond.Wait()
			continue
		}
		w.syncing = true
		f, target := w.f, Pos{w.id, w.off}
		w.mu.Unlock()
		err := w.syncFile(f)
		w.mu.Lock()
		w.syncing = false
		if err != nil {
			w.err = fmt.Errorf("segment: sync %s: %w", FileName(target.Segment), err)
		} else if w.synced.Less(target) {
			w.synced = target
		}
		w.cond.Broadcast()
	}
}

// Synced returns the position before which everything is durable.
func (w *Writer) Synced() Pos {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.synced
}

// End returns the position where the next record would be appended.
func (w *Writer) End() Pos {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Pos{w.id, w.off}
}

// Err returns the sticky error, if the writer has failed.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close syncs what was appended and closes the active segment. After a
// failure it closes without syncing and returns the sticky error.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.syncing {
		w.cond.Wait()
	}
	if w.closed {
		return nil
	}
	w.closed = true
	f := w.f
	w.f = nil
	if f == nil {
		return w.err
	}
	if w.err != nil || w.opts.Persist != nil {
		// In Persist mode nothing unsynced was acknowledged, and the
		// file is only a local copy.
		f.Close()
		return w.err
	}
	if err := w.syncFile(f); err != nil {
		f.Close()
		w.err = fmt.Errorf("segment: sync %s: %w", FileName(w.id), err)
		return w.err
	}
	w.synced = Pos{w.id, w.off}
	if err := f.Close(); err != nil {
		return fmt.Errorf("segment: close %s: %w", FileName(w.id), err)
	}
	return nil
}

// syncDir fsyncs a directory, so that files created or removed in it
// survive a crash.
func syncDir(fs vfs.FS, dir string) error {
	d, err := fs.OpenDir(dir)
	if err != nil {
		return fmt.Errorf("segment: open dir %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("segment: sync dir %s: %w", dir, err)
	}
	return nil
}

// SyncDir fsyncs dir; exported for callers that remove segment files.
func SyncDir(fs vfs.FS, dir string) error { return syncDir(fs, dir) }
