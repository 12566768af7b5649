// Package engine is cairn's content-addressed store: blobs cut into
// content-defined chunks, each stored once in append-only segment files,
// located and reference-counted by a Pebble index, and records (what the
// APIs name: paths, asset IDs, media) that refer to blobs.
//
// Writes stream: Upload chunks, hashes (BLAKE3 of each chunk and of the
// blob in one pass), deduplicates and appends, then syncs the segment;
// Update commits the records that refer to the upload in one index batch
// with pebble.Sync. Nothing is visible before both are durable, and a
// crash at any instant loses nothing acknowledged (see DESIGN.md).
//
// Reads verify: every chunk's bytes are hashed against its ID before they
// are returned, and a mismatch is ErrCorrupt, never wrong bytes.
//
// An Engine is safe for concurrent use. Readers returned by Open are not
// (each is one stream); their ReadAt is.
//
//	e, err := engine.Open("cairn-data", engine.Options{})
//	defer e.Close()
//	rec, err := e.PutRecord(ctx, engine.Key{Namespace: "ns", Tenant: "t", Name: "a.jpg"}, body, engine.Write{ContentType: "image/jpeg"})
//	r, err := e.Open(rec.Blob)
//	defer r.Close()
//	http.ServeContent(w, req, "a.jpg", rec.Modified, r)
package engine

import (
	"cmp"
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/internal/chunker"
	"github.com/cairnstore/cairn/segment"
)

// Options configure an engine. The zero value means the defaults.
type Options struct {
	// FS holds the data folder; default the real disk, where the folder
	// is made private to the user the process runs as (folders 0700,
	// files 0600, whatever the umask; a folder others can read is fixed,
	// with a warning, or refused if it cannot be). Tests pass
	// vfs.NewCrashableMem() or an errorfs wrapper. Segments and Pebble
	// share it.
	FS vfs.FS
	// Logger; default slog.Default().
	Logger *slog.Logger
	// SegmentSize seals a segment at this size; default 1 GiB.
	SegmentSize int64
	// MinChunk, AvgChunk and MaxChunk bound content-defined chunks; default
	// 256 KiB, 1 MiB, 4 MiB. AvgChunk must be a power of two.
	MinChunk, AvgChunk, MaxChunk int
	// IndexCacheSize is Pebble's block cache; default 64 MiB.
	IndexCacheSize int64
	// MinFreeBytes: uploads fail with ErrNoSpace while the file system has
	// less free space than this, leaving room for deletes and the index.
	// Default 64 MiB; negative disables the check.
	MinFreeBytes int64
	// Now is the clock; default time.Now. Tests inject their own.
	Now func() time.Time
	// CompactRatio: GC rewrites a sealed segment whose live bytes are
	// under this fraction of its data; default 0.5.
	CompactRatio float64
	// GCGrace: content stored without a reference (a bare Put, or one
	// left when a pinned blob lost its last reference) is kept at least
	// this long before GC releases it; default one hour. Negative: none.
	GCGrace time.Duration
	// MaxUploads bounds the uploads that stream at once; the rest wait
	// for a slot (or for their context to end). Each streaming upload
	// holds a chunking buffer of twice MaxChunk (8 MiB by default), so
	// this bounds the memory uploads take however many clients trickle
	// bytes at once. Default 64.
	MaxUploads int
	// KeyFile is the store's key, which seals the secrets kept in the
	// index (Seal); made, 0600, on first open. Default secret.key in the
	// data folder: outside the index, so that a copy of the index alone
	// grants nothing; keep it apart from the folder to have a copy of the
	// folder grant nothing either.
	KeyFile string
	// ReadCache bounds the memory of verified chunks kept for reads (a
	// hot chunk is not read and hashed again) and of the chunks being
	// read; past it, the least recently used are dropped, and reads wait
	// for memory rather than grow it. Default 256 MiB.
	ReadCache int64
	// RevealDedup lets an upload of bytes already stored (by anyone)
	// return as soon as it is done, faster than one of new bytes. By
	// default it waits about as long as writing them would have taken,
	// so that timing uploads tells no client what others stored
	// (engine/dedup.go). A store whose clients all trust each other can
	// set it for faster duplicate uploads.
	RevealDedup bool
	// InlineMax: an upload whose whole content is one chunk of at most
	// this many bytes is kept in the index instead of a segment, so that
	// acknowledging it takes one sync of the index's log (shared with
	// concurrent commits), not a segment sync and then that. Default
	// 16 KiB; negative: every chunk goes to a segment. At most 64 KiB.
	InlineMax int
	// MustExist: Open fails with ErrNoStore, creating nothing, unless dir
	// holds a store already (the admin commands; only serving makes one).
	MustExist bool
	// Objects, if set, keeps the segments in an object store (an
	// S3-compatible bucket: objstore.Bucket) instead of on local disk: see
	// objects.go. A store is made in one mode and stays in it.
	Objects Objects
	// CacheSize bounds the local copies of segments in object mode: past
	// it the least recently used are removed (reads then fetch what they
	// need from the object store). Default 1 GiB.
	CacheSize int64
	// Index, if set, keeps the index in PostgreSQL (a connection string:
	// postgres://user:password@host:port/db) instead of Pebble in the
	// data folder (pgindex.go). A store is made with its index in one
	// place and stays there.
	Index string
	// Node names this process to the other nodes of a store whose index
	// is in PostgreSQL and segments in a bucket (nodes.go); by default
	// host/pid/random.
	Node string
	// UploadWait bounds how long an upload waits for one of those slots
	// before it fails with ErrBusy, so that a waiting client never holds
	// its connection indefinitely. Default 30 seconds.
	UploadWait time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SegmentSize <= 0 {
		o.SegmentSize = segment.DefaultSegmentSize
	}
	if o.MaxUploads <= 0 {
		o.MaxUploads = 64
	}
	if o.UploadWait <= 0 {
		o.UploadWait = 30 * time.Second
	}
	switch {
	case o.InlineMax == 0:
		o.InlineMax = 16 << 10
	case o.InlineMax < 0:
		o.InlineMax = 0
	case o.InlineMax > 64<<10:
		return o, fmt.Errorf("%w: InlineMax %d above 64 KiB", ErrInvalid, o.InlineMax)
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 1 << 30
	}
	if o.ReadCache <= 0 {
		o.ReadCache = 256 << 20
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = 64 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CompactRatio <= 0 {
		o.CompactRatio = 0.5
	}
	if o.CompactRatio > 1 {
		return o, fmt.Errorf("%w: CompactRatio %v above 1", ErrInvalid, o.CompactRatio)
	}
	switch {
	case o.GCGrace == 0:
		o.GCGrace = time.Hour
	case o.GCGrace < 0:
		o.GCGrace = 0
	}
	p := o.chunking()
	if err := p.Validate(); err != nil {
		return o, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if p.MaxSize > segment.MaxPayload {
		return o, fmt.Errorf("%w: MaxChunk %d above the segment format's %d", ErrInvalid, p.MaxSize, segment.MaxPayload)
	}
	return o, nil
}

func (o Options) chunking() chunker.Params {
	return chunker.Params{MinSize: o.MinChunk, NormalSize: o.AvgChunk, MaxSize: o.MaxChunk}.WithDefaults()
}

// Folder layout under the data directory.
const (
	indexDir    = "index"
	segmentsDir = "segments"
)

// Engine is an open store. See the package doc.
type Engine struct {
	opts    Options
	fs      vfs.FS
	dir     string
	segDir  string
	log     *slog.Logger
	idx     *index.DB
	w       *segment.Writer
	comp    *segment.Compressor
	locks   *stripes
	files   fileTable
	scratch sync.Pool // *[]byte, chunk-sized read buffers
	// reads bounds the chunks open Readers keep (Options.ReadCache).
	reads readCache
	// writeCost estimates what writing takes, to hide deduplication.
	writeCost writeCost
	// key seals secrets (seal.go), read from keyFile.
	key     cipher.AEAD
	keyFile string

	// failed holds the first write or sync failure; once set the engine
	// refuses writes until reopened.
	failed atomic.Pointer[error]
	closed atomic.Bool
	// ops counts operations in flight, so Close waits for them.
	ops sync.WaitGroup

	// uploads tracks the active segment each in-flight upload started in:
	// segments from the oldest of these on may hold chunks an upload is
	// about to index, so compaction leaves them alone.
	uploadsMu sync.Mutex
	uploads   map[*Upload]uint64

	// uploadSlots holds a token per streaming upload (Options.MaxUploads).
	uploadSlots chan struct{}

	// gcMu serialises GC passes.
	gcMu sync.Mutex
	// outboardSuspects are the outboards the last GC pass found without
	// a chunk (sweepOutboards). Guarded by gcMu.
	outboardSuspects map[blob.ID]bool
	// hooks are the OnExpire callbacks by namespace. Guarded by hooksMu.
	hooksMu sync.RWMutex
	hooks   map[string]func(Record)
	// putHooks are the OnPut callbacks by namespace. Guarded by hooksMu.
	putHooks map[string]func(Record)

	stats counters

	// cache and objHealth: object mode (objects.go).
	cache      localCache
	objHealth  objHealth
	objDeletes objDeletes
	streams    streams
	// logSeq numbers the logged transactions (log.go).
	logSeq atomic.Uint64
	// lock holds the data folder when the index is in PostgreSQL
	// (Pebble's lock does otherwise).
	lock io.Closer

	// shared: the index is in PostgreSQL and the segments in a bucket, so
	// other nodes may have the store open at once (nodes.go). node names
	// this one (its leases' holder).
	shared   bool
	node     string
	ids      idBlock
	inflight inflight
	beat     beat
}

// Open opens the store in dir, creating it if needed, and recovers from a
// crash: a torn tail of the active segment is cut off and appending
// continues after the last good record. Sealed segments are not scanned.
func Open(dir string, opts Options) (*Engine, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	fs := opts.FS
	if fs == vfs.Default {
		fs = privateFS{fs}
	}
	if opts.MustExist {
		_, err := fs.Stat(fs.PathJoin(dir, indexDir))
		if _, perr := fs.Stat(fs.PathJoin(dir, postgresFile)); errors.Is(err, os.ErrNotExist) && errors.Is(perr, os.ErrNotExist) {
			return nil, fmt.Errorf("%w in %s", ErrNoStore, dir)
		}
	}
	e := &Engine{
		opts:    opts,
		fs:      fs,
		dir:     dir,
		segDir:  fs.PathJoin(dir, segmentsDir),
		log:     opts.Logger,
		comp:    segment.NewCompressor(),
		locks:   newStripes(),
		uploads: map[*Upload]uint64{},

		uploadSlots: make(chan struct{}, opts.MaxUploads),
	}
	e.reads.init(opts.ReadCache)
	e.streams.e = e
	e.files.fs, e.files.dir, e.files.comp = fs, e.segDir, e.comp
	if opts.Objects != nil {
		e.files.remote = func(id uint64) segSource { return objectFile{e, id, objectName(id)} }
		e.files.used = func(id uint64) { e.cache.use(wholeSegment(id)) }
	}
	if err := mkdirSynced(fs, e.segDir); err != nil {
		return nil, err
	}
	if _, disk := fs.(privateFS); disk {
		fixed, err := makePrivate(dir)
		if err != nil {
			return nil, err
		}
		if fixed > 0 {
			e.log.Warn("the data folder was open to other users; made it private to this one (folders 0700, files 0600)", "dir", dir, "changed", fixed)
		}
	}
	e.keyFile = opts.KeyFile
	if e.keyFile == "" {
		e.keyFile = fs.PathJoin(dir, KeyFileName)
	}
	if e.key, err = openKey(fs, e.keyFile); err != nil {
		return nil, err
	}
	_, statErr := fs.Stat(fs.PathJoin(dir, indexDir))
	_, pgErr := fs.Stat(fs.PathJoin(dir, postgresFile))
	fresh := errors.Is(statErr, os.ErrNotExist) && errors.Is(pgErr, os.ErrNotExist)
	switch {
	case opts.Index != "":
		if !errors.Is(statErr, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s keeps its index in the folder, not in PostgreSQL", ErrInvalid, dir)
		}
		e.shared, e.node = opts.Objects != nil, cmp.Or(opts.Node, nodeName())
		if e.lock, err = e.openPostgresIndex(fresh); err != nil {
			return nil, err
		}
	case pgErr == nil:
		return nil, fmt.Errorf("%w: %s keeps its index in PostgreSQL: give it that database (--index)", ErrInvalid, dir)
	default:
		if err := checkOpenSpace(fs, fs.PathJoin(dir, indexDir)); err != nil {
			return nil, err
		}
		e.idx, err = index.Open(fs, fs.PathJoin(dir, indexDir), index.Options{Logger: opts.Logger, CacheSize: opts.IndexCacheSize})
		if errors.Is(err, syscall.EWOULDBLOCK) {
			// The index's lock is held: say by whom.
			return nil, fmt.Errorf("%w: %s is open in another process%s", ErrInUse, dir, ownerOf(fs, dir))
		}
		if err != nil {
			return nil, err
		}
	}
	writeOwner(fs, dir)
	if err := e.checkObjectsFile(fresh); err != nil {
		e.closeIndex()
		e.comp.Close()
		return nil, err
	}
	if err := e.recover(); err != nil {
		e.closeIndex()
		e.comp.Close()
		return nil, err
	}
	if e.shared {
		if err := e.startHeartbeat(); err != nil {
			e.w.Close()
			e.closeIndex()
			e.comp.Close()
			return nil, err
		}
	}
	return e, nil
}

// checkOpenSpace refuses to open an index whose log cannot be flushed:
// Pebble writes what its log holds to a table as it opens, and on a disk
// without room for that it retries for ever, so the command would hang.
// It fails with ErrNoSpace instead, saying how much room is needed.
func checkOpenSpace(fs vfs.FS, dir string) error {
	names, err := fs.List(dir)
	if err != nil {
		return nil // no index yet, or an error Open reports better
	}
	var logBytes int64
	for _, n := range names {
		if strings.HasSuffix(n, ".log") {
			if st, err := fs.Stat(fs.PathJoin(dir, n)); err == nil {
				logBytes += st.Size()
			}
		}
	}
	u, err := fs.GetDiskUsage(dir)
	if err != nil || u.TotalBytes == 0 { // unknown (in-memory file systems)
		return nil
	}
	if need := logBytes + 256<<10; int64(u.AvailBytes) < need {
		return fmt.Errorf("%w: opening the index in %s needs about %d bytes free to flush its log, and the disk has %d: free some space first", ErrNoSpace, dir, need, u.AvailBytes)
	}
	return nil
}

// ownerFile names the process that has the store open, for the message
// another one gets (ErrInUse). It is written once the index's lock is
// held, so while the lock is held it is the holder's.
const ownerFile = "owner"

// writeOwner records this process as the store's, best effort: it only
// ever makes an error message more helpful.
func writeOwner(fs vfs.FS, dir string) {
	f, err := fs.Create(fs.PathJoin(dir, ownerFile), vfs.WriteCategoryUnspecified)
	if err != nil {
		return
	}
	exe, _ := os.Executable()
	fmt.Fprintf(f, "%d %s\n", os.Getpid(), filepath.Base(exe))
	f.Close()
}

// ownerOf says which process has the store open, as " (pid N, cmd)", or
// "" if it does not know.
func ownerOf(fs vfs.FS, dir string) string {
	f, err := fs.Open(fs.PathJoin(dir, ownerFile))
	if err != nil {
		return ""
	}
	defer f.Close()
	var pid int
	var name string
	if n, _ := fmt.Fscan(f, &pid, &name); n < 1 || pid <= 0 {
		return ""
	}
	if name == "" {
		return fmt.Sprintf(" (pid %d)", pid)
	}
	return fmt.Sprintf(" (pid %d, %s)", pid, name)
}

// mkdirSynced creates dir and its missing parents, syncing each parent so
// that the new entries survive a crash.
func mkdirSynced(fs vfs.FS, dir string) error {
	var missing []string
	for d := dir; ; d = fs.PathDir(d) {
		if _, err := fs.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if parent := fs.PathDir(d); parent == d || parent == "." || parent == "" || parent == "/" {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fs.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("engine: create %s: %w", dir, err)
	}
	for _, d := range missing {
		parent := fs.PathDir(d)
		if parent == d {
			continue
		}
		if err := segment.SyncDir(fs, parent); err != nil {
			return fmt.Errorf("engine: %w", err)
		}
	}
	return nil
}

// recover finds the active segment, makes sure every earlier one is known
// to be sealed, cuts the active one's torn tail and opens the writer.
func (e *Engine) recover() error {
	if e.opts.Objects != nil {
		return e.recoverObjects()
	}
	names, err := e.fs.List(e.segDir)
	if err != nil {
		return fmt.Errorf("engine: list %s: %w", e.segDir, err)
	}
	var ids []uint64
	for _, n := range names {
		if id, ok := segment.ParseFileName(n); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	segs, err := e.idx.Segments()
	if err != nil {
		return err
	}
	known := map[uint64]index.Segment{}
	var maxKnown uint64
	for _, s := range segs {
		known[s.ID] = s
		maxKnown = max(maxKnown, s.ID)
		if !slices.Contains(ids, s.ID) && s.LiveChunks > 0 {
			return corruptf("segment %s holds %d chunks in the index but its file is missing", segment.FileName(s.ID), s.LiveChunks)
		}
	}
	wopts := e.writerOptions()
	if len(ids) == 0 {
		e.w, err = segment.OpenWriter(e.fs, e.segDir, maxKnown+1, 0, wopts)
		return err
	}
	active := ids[len(ids)-1]
	// A segment before the active one whose seal never reached the index
	// (a crash right after rolling over): find its end once, and record it.
	for _, id := range ids[:len(ids)-1] {
		if known[id].Sealed > 0 {
			continue
		}
		res, err := segment.Recover(e.fs, e.segDir, id, known[id].End)
		if err != nil {
			return fmt.Errorf("engine: recover sealed segment: %w", err)
		}
		if err := e.onSeal(id, res.End); err != nil {
			return err
		}
		e.logRecovery(id, res)
	}
	if known[active].Sealed > 0 {
		// Sealed, and the crash came before its successor existed.
		e.w, err = segment.OpenWriter(e.fs, e.segDir, max(active, maxKnown)+1, 0, wopts)
		return err
	}
	res, err := segment.Recover(e.fs, e.segDir, active, known[active].End)
	if err != nil {
		if known[active].End > segment.FileHeaderSize || !errors.Is(err, segment.ErrCorrupt) {
			return fmt.Errorf("engine: recover active segment: %w", err)
		}
		// The file was created but its header never became durable, and
		// nothing in it was ever indexed: start it again.
		e.log.Warn("recreating a segment whose header was torn", "segment", segment.FileName(active), "err", err)
		if err := e.fs.Remove(e.fs.PathJoin(e.segDir, segment.FileName(active))); err != nil {
			return fmt.Errorf("engine: remove torn segment: %w", err)
		}
		if err := segment.SyncDir(e.fs, e.segDir); err != nil {
			return err
		}
		e.w, err = segment.OpenWriter(e.fs, e.segDir, active, 0, wopts)
		return err
	}
	e.logRecovery(active, res)
	e.w, err = segment.OpenWriter(e.fs, e.segDir, active, res.End, wopts)
	return err
}

func (e *Engine) writerOptions() segment.WriterOptions {
	o := segment.WriterOptions{
		SegmentSize: e.opts.SegmentSize,
		OnSeal:      e.onSeal,
		OnSync:      e.stats.observeSync,
		NextID:      e.nextSegmentID,
	}
	if e.opts.Objects != nil {
		o.Persist = e.persist
		o.OnAppend = e.streams.appended
	}
	return o
}

func (e *Engine) logRecovery(id uint64, res segment.RecoverResult) {
	if res.Torn != nil || res.Zeroed > 0 {
		e.log.Warn("cut a torn segment tail", "segment", segment.FileName(id), "end", res.End, "zeroed", res.Zeroed, "reason", res.Torn)
	}
}

// onSeal records a sealed segment's size in the index, durably, before
// the writer moves on.
func (e *Engine) onSeal(id uint64, size int64) error {
	b := e.idx.NewBatch()
	b.SetSealed(id, size)
	b.RaiseEnd(id, size)
	if e.shared {
		b.SetSealedAt(id, e.opts.Now().UnixNano())
	}
	return b.Commit()
}

// begin registers an operation, failing if the engine is closed.
func (e *Engine) begin() error {
	if e.closed.Load() {
		return ErrClosed
	}
	e.ops.Add(1)
	if e.closed.Load() {
		e.ops.Done()
		return ErrClosed
	}
	return nil
}

func (e *Engine) end() { e.ops.Done() }

// writable reports why writes are refused, if they are.
func (e *Engine) writable() error {
	if p := e.failed.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrReadOnly, *p)
	}
	return nil
}

// fail makes the engine read-only after a write or sync failure. A full
// disk is not a failure: nothing was written that matters.
func (e *Engine) fail(err error) error {
	if errors.Is(err, segment.ErrNoSpace) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	if errors.Is(err, index.ErrConflict) {
		// Another node changed what the transaction read: Update reads
		// again and redoes it.
		return err
	}
	if errors.Is(err, ErrUnavailable) {
		// The object store's failure, or the index's database's (which
		// did not take the commit, or did and did not say): not ours,
		// nothing here is inconsistent, and writes go on once it answers.
		return err
	}
	if e.failed.CompareAndSwap(nil, &err) {
		e.log.Error("write failed; refusing writes until restart", "err", err)
	}
	return fmt.Errorf("%w: %w", ErrReadOnly, err)
}

// Writable returns nil if the engine accepts writes, or why it does not.
func (e *Engine) Writable() error {
	if e.closed.Load() {
		return ErrClosed
	}
	if err := e.writable(); err != nil {
		return err
	}
	if err := e.checkObjects(); err != nil {
		return err
	}
	if err := e.idx.Ping(); err != nil {
		return err
	}
	return e.checkSpace()
}

// checkSpace fails when the disk is below the free-space reserve.
func (e *Engine) checkSpace() error {
	if e.opts.MinFreeBytes < 0 {
		return nil
	}
	u, err := e.fs.GetDiskUsage(e.segDir)
	if err != nil || u.TotalBytes == 0 { // unknown (in-memory file systems)
		return nil
	}
	if int64(u.AvailBytes) < e.opts.MinFreeBytes {
		return fmt.Errorf("%w: %d bytes free, reserve is %d", ErrNoSpace, u.AvailBytes, e.opts.MinFreeBytes)
	}
	return nil
}

// Close waits for operations in flight, then syncs and closes the store.
func (e *Engine) Close() error {
	if !e.closed.CompareAndSwap(false, true) {
		return ErrClosed
	}
	e.ops.Wait()
	e.stopHeartbeat()
	var errs []error
	if err := e.w.Close(); err != nil && e.failed.Load() == nil {
		errs = append(errs, err)
	}
	if e.opts.Objects != nil {
		e.streams.abortAll()
		e.flushObjectDeletes()
	}
	errs = append(errs, e.files.closeAll())
	errs = append(errs, e.closeIndex())
	e.comp.Close()
	return errors.Join(errs...)
}

// closeIndex closes the index, and releases the folder's lock if the
// index is in PostgreSQL.
func (e *Engine) closeIndex() error {
	err := e.idx.Close()
	if e.lock != nil {
		err = errors.Join(err, e.lock.Close())
	}
	return err
}

// fileTable keeps segment files open for reading. Compaction drops a
// file from it once the index no longer points into it: the file is
// closed when the last read holding it releases it.
type fileTable struct {
	fs   vfs.FS
	dir  string
	comp *segment.Compressor
	// remote, in object mode, reads a segment with no local copy from
	// the object store; nil otherwise.
	remote func(id uint64) segSource
	// used, in object mode, marks a local copy as read.
	used func(id uint64)
	mu   sync.Mutex
	m    map[uint64]*segFile
}

// segSource is what a segment is read from: its file, or its object.
type segSource interface {
	io.ReaderAt
	Close() error
}

// segFile is an open segment file shared by concurrent reads.
type segFile struct {
	*segment.Reader
	f segSource
	// refs counts the reads using it, plus one while it is in the table.
	// Guarded by fileTable.mu.
	refs int
}

// acquire returns segment id's reader, opening the file on first use; the
// caller must release it.
func (t *fileTable) acquire(id uint64) (*segFile, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.used != nil {
		t.used(id)
	}
	if sf, ok := t.m[id]; ok {
		sf.refs++
		return sf, nil
	}
	path := t.fs.PathJoin(t.dir, segment.FileName(id))
	var f segSource
	f, err := t.fs.Open(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && t.remote != nil:
		f, path = t.remote(id), objectName(id)
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%w: segment file %s is missing", ErrCorrupt, path)
	case err != nil:
		return nil, fmt.Errorf("engine: open %s: %w", path, err)
	}
	if t.m == nil {
		t.m = map[uint64]*segFile{}
	}
	sf := &segFile{Reader: segment.NewReader(f, path, t.comp), f: f, refs: 2}
	t.m[id] = sf
	return sf, nil
}

// release ends a read of sf.
func (t *fileTable) release(sf *segFile) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.unref(sf)
}

func (t *fileTable) unref(sf *segFile) {
	if sf.refs--; sf.refs == 0 {
		sf.f.Close()
	}
}

// drop forgets segment id: reads still holding it finish, and the file is
// closed after the last.
func (t *fileTable) drop(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if sf, ok := t.m[id]; ok {
		delete(t.m, id)
		t.unref(sf)
	}
}

func (t *fileTable) closeAll() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for _, sf := range t.m {
		errs = append(errs, sf.f.Close())
	}
	t.m = nil
	return errors.Join(errs...)
}

// Now is the engine's clock (Options.Now): the time records are stamped
// and expired by. APIs that keep times next to records use it too, so
// that one injected clock drives them all.
func (e *Engine) Now() time.Time { return e.opts.Now() }
