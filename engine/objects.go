package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/objstore"
	"github.com/cairnstore/cairn/segment"
)

// Objects is an object store that keeps a store's segments
// (Options.Objects): *objstore.Bucket, an S3-compatible bucket. Names are
// relative to the store's place in it; String names that place.
type Objects interface {
	Put(ctx context.Context, name string, r io.Reader, size int64) error
	ReadAt(ctx context.Context, name string, p []byte, off int64) error
	Delete(ctx context.Context, name string) error
	List(ctx context.Context, prefix string) ([]objstore.Object, error)
	Ping(ctx context.Context) error
	AbortIncomplete(ctx context.Context, prefix string, cutoff time.Time) (int, error)
	StartMultipart(ctx context.Context, name string) (objstore.Multipart, error)
	String() string
}

// In object mode (Options.Objects) each segment is an object of the same
// format, segments/<name>, and the segments folder holds local copies of
// some of them. The writer runs in segment.Writer's Persist mode: a sync
// seals the active segment and returns once the object store has it, and
// the uploads that synced meanwhile share the next one, so the service
// sees one object per group of concurrent uploads and never one per
// small file. The index is committed only after, as with fdatasync, so it
// never points at bytes the object store does not hold.
//
// Reads of a segment with no local copy are ranged GETs of just the
// records they need, verified as always (and kept verified in the read
// cache). Local copies of segments the object store holds are removed,
// least recently used first, past Options.CacheSize.
//
// Failures of the object store are not the store's: uploads fail with
// ErrUnavailable (503) and nothing of them is visible, reads of what has
// no local copy fail the same way, and everything works again once the
// service answers.

// ErrUnavailable: the object store holding the segments did not answer
// or failed; nothing was stored. Retry later.
// It is index.ErrUnavailable, which an index in PostgreSQL returns when
// its database does not answer, so that both are one thing to callers.
var ErrUnavailable = index.ErrUnavailable

// objectsFile, in the data folder, names the object store of a store in
// object mode, so that the folder is never opened without it.
const objectsFile = "objects"

// objectTimeout bounds one object request of a read or a small write.
const objectTimeout = 30 * time.Second

func objectName(id uint64) string { return "segments/" + segment.FileName(id) }

// StoreObjects returns the object store a data folder was made with
// (s3://bucket/prefix), or "" for a store on local disk.
func StoreObjects(dir string) (string, error) {
	b, err := os.ReadFile(dir + "/" + objectsFile)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("engine: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// checkObjectsFile holds the folder to the object store it was made with.
func (e *Engine) checkObjectsFile(fresh bool) error {
	path := e.fs.PathJoin(e.dir, objectsFile)
	f, err := e.fs.Open(path)
	var had string
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("engine: %w", err)
	default:
		b, err := io.ReadAll(io.LimitReader(f, 4096))
		f.Close()
		if err != nil {
			return fmt.Errorf("engine: %s: %w", path, err)
		}
		had = strings.TrimSpace(string(b))
	}
	want := ""
	if e.opts.Objects != nil {
		want = e.opts.Objects.String()
	}
	switch {
	case had == want:
		return nil
	case had == "" && !fresh:
		return fmt.Errorf("%w: %s keeps its segments on local disk, not in %s", ErrInvalid, e.dir, want)
	case had != "" && want == "":
		return fmt.Errorf("%w: %s keeps its segments in %s: give it that object store (--store %s)", ErrInvalid, e.dir, had, had)
	case had != "":
		return fmt.Errorf("%w: %s keeps its segments in %s, not %s", ErrInvalid, e.dir, had, want)
	}
	nf, err := e.fs.Create(path, "")
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if _, err := nf.Write([]byte(want + "\n")); err != nil {
		nf.Close()
		return fmt.Errorf("engine: %w", err)
	}
	if err := nf.Sync(); err != nil {
		nf.Close()
		return fmt.Errorf("engine: %w", err)
	}
	if err := nf.Close(); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	return segment.SyncDir(e.fs, e.dir)
}

// recoverObjects is recover in object mode. Every segment the index
// knows as sealed is in the object store; an object it does not know was
// persisted by a process that died before the index recorded it, so
// nothing points into it, and it is deleted. Local files are copies: one
// of a segment not sealed in the index is the unpersisted tail of a dead
// process, and goes. The writer starts a new segment after every id seen.
func (e *Engine) recoverObjects() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*objectTimeout)
	defer cancel()
	segs, err := e.idx.Segments()
	if err != nil {
		return err
	}
	known := map[uint64]index.Segment{}
	var next uint64 = 1
	for _, s := range segs {
		known[s.ID] = s
		next = max(next, s.ID+1)
	}
	objs, err := e.opts.Objects.List(ctx, "segments/")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	stored := map[uint64]int64{}
	for _, o := range objs {
		id, ok := segment.ParseFileName(strings.TrimPrefix(o.Name, "segments/"))
		if !ok {
			continue
		}
		next = max(next, id+1)
		if s := known[id]; s.Sealed == 0 && e.shared {
			continue // maybe another node's, just put: GC's (deleteRetired)
		} else if s.Sealed == 0 {
			e.log.Warn("deleting a segment object the index never recorded (its writer died first)", "object", o.Name)
			if err := e.opts.Objects.Delete(ctx, o.Name); err != nil {
				return fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			continue
		}
		stored[id] = o.Size
	}
	for _, s := range segs {
		if s.Sealed > 0 && s.LiveChunks > 0 && stored[s.ID] != s.Sealed {
			return corruptf("segment %s holds %d chunks in the index but its object in %s is missing or of %d bytes, not %d",
				segment.FileName(s.ID), s.LiveChunks, e.opts.Objects, stored[s.ID], s.Sealed)
		}
	}
	names, err := e.fs.List(e.segDir)
	if err != nil {
		return fmt.Errorf("engine: list %s: %w", e.segDir, err)
	}
	for _, n := range names {
		id, ok := segment.ParseFileName(n)
		if !ok {
			continue
		}
		next = max(next, id+1)
		path := e.fs.PathJoin(e.segDir, n)
		st, err := e.fs.Stat(path)
		if err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		if s := known[id]; s.Sealed == 0 || st.Size() != s.Sealed {
			if err := e.fs.Remove(path); err != nil {
				return fmt.Errorf("engine: remove %s: %w", path, err)
			}
			continue
		}
		e.cache.touch(wholeSegment(id), st.Size())
	}
	if err := e.loadRanges(); err != nil {
		return err
	}
	if e.logged() {
		if err := e.reconcileLog(ctx, segs); err != nil {
			return err
		}
		if err := e.initLogSeq(); err != nil {
			return err
		}
	}
	if next, err = e.nextSegmentID(next - 1); err != nil {
		return err
	}
	e.w, err = segment.OpenWriter(e.fs, e.segDir, next, 0, e.writerOptions())
	return err
}

// segmentIDs lists the segments, in order: the files in the segments
// folder, or in object mode the objects (with their sizes) and the
// active segment, which has no object yet.
func (e *Engine) segmentIDs(ctx context.Context) ([]uint64, map[uint64]int64, error) {
	var ids []uint64
	if e.opts.Objects == nil {
		names, err := e.fs.List(e.segDir)
		if err != nil {
			return nil, nil, err
		}
		for _, n := range names {
			if id, ok := segment.ParseFileName(n); ok {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		return ids, nil, nil
	}
	objs, err := e.opts.Objects.List(ctx, "segments/")
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	sizes := map[uint64]int64{}
	for _, o := range objs {
		if id, ok := segment.ParseFileName(strings.TrimPrefix(o.Name, "segments/")); ok {
			ids = append(ids, id)
			sizes[id] = o.Size
		}
	}
	slices.Sort(ids)
	return ids, sizes, nil
}

// persist puts segment id, sealed at size, into the object store: the
// Persist of the segment writer. The put is retried by the next sync if
// it fails, under the same name, so a put the service executed but did
// not answer is harmless.
func (e *Engine) persist(id uint64, size int64) error {
	path := e.fs.PathJoin(e.segDir, segment.FileName(id))
	f, err := e.fs.Open(path)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	defer f.Close()
	// A deadline that grows with the object: 30 s, plus a second per 8 MiB.
	ctx, cancel := context.WithTimeout(context.Background(), objectTimeout+time.Duration(size>>23)*time.Second)
	defer cancel()
	start := time.Now()
	streamed, err := e.streams.finish(ctx, id, size)
	if err != nil {
		e.objectsDown(err)
		return err
	}
	if !streamed {
		if err := e.opts.Objects.Put(ctx, objectName(id), io.NewSectionReader(f, 0, size), size); err != nil {
			e.objectsDown(err)
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		e.stats.objectPutBytes.Add(uint64(size))
	}
	e.objectsUp()
	e.stats.objectPuts.Add(1)
	e.log.Debug("segment persisted", "segment", segment.FileName(id), "bytes", size, "took", time.Since(start))
	e.cache.touch(wholeSegment(id), size)
	e.trimCache()
	return nil
}

// objectFile reads a segment from the object store: each ReadAt is one
// ranged GET.
type objectFile struct {
	e    *Engine
	id   uint64
	name string
}

func (o objectFile) ReadAt(p []byte, off int64) (int, error) {
	k := localKey{seg: o.id, off: off, n: len(p)}
	// Reads of a record (header and payload) are kept; a scan's reads of
	// headers alone, or of more than a record, are not.
	cacheable := len(p) > segment.RecordHeaderSize && len(p) <= maxCachedRange
	if cacheable && o.e.cachedRange(k, p) {
		return len(p), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), objectTimeout)
	defer cancel()
	o.e.stats.objectGets.Add(1)
	o.e.stats.objectGetBytes.Add(uint64(len(p)))
	if err := o.e.opts.Objects.ReadAt(ctx, o.name, p, off); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("%w: segment object %s is missing: %w", ErrCorrupt, o.name, err)
		}
		o.e.objectsDown(err)
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	if cacheable {
		o.e.keepRange(k, p)
	}
	return len(p), nil
}

func (objectFile) Close() error { return nil }

// deleteObject removes a segment's object once reads that may still be
// using it are done: those that found its location before compaction
// moved its chunks. The grace outlasts any one read of a chunk.
// Close deletes those still waiting at once: no read is left.
func (e *Engine) deleteObject(id uint64) {
	e.objDeletes.Lock()
	defer e.objDeletes.Unlock()
	if e.objDeletes.timers == nil {
		e.objDeletes.timers = map[uint64]*time.Timer{}
	}
	e.objDeletes.timers[id] = time.AfterFunc(2*objectTimeout, func() {
		e.objDeletes.Lock()
		_, ok := e.objDeletes.timers[id]
		delete(e.objDeletes.timers, id)
		e.objDeletes.Unlock()
		if ok {
			e.removeObject(id)
		}
	})
}

func (e *Engine) removeObject(id uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), objectTimeout)
	defer cancel()
	if err := e.opts.Objects.Delete(ctx, objectName(id)); err != nil {
		// The object stays; the next open finds it unknown and deletes it.
		e.log.Warn("deleting a compacted segment object", "segment", segment.FileName(id), "err", err)
	}
}

// flushObjectDeletes deletes the objects still in their grace period, at
// Close.
func (e *Engine) flushObjectDeletes() {
	e.objDeletes.Lock()
	var ids []uint64
	for id, t := range e.objDeletes.timers {
		if t.Stop() {
			ids = append(ids, id)
		}
	}
	e.objDeletes.timers = nil
	e.objDeletes.Unlock()
	for _, id := range ids {
		e.removeObject(id)
	}
}

type objDeletes struct {
	sync.Mutex
	timers map[uint64]*time.Timer
}

// objectsDown and objectsUp keep what the last object request said, for
// readiness: a store whose object store fails is not ready.
func (e *Engine) objectsDown(err error) {
	e.objHealth.Lock()
	e.objHealth.err, e.objHealth.at = err, time.Now()
	e.objHealth.Unlock()
}

func (e *Engine) objectsUp() {
	e.objHealth.Lock()
	e.objHealth.err, e.objHealth.at = nil, time.Now()
	e.objHealth.Unlock()
}

// checkObjects fails while the object store does not answer: it asks
// again when the last answer is over two seconds old.
func (e *Engine) checkObjects() error {
	if e.opts.Objects == nil {
		return nil
	}
	e.objHealth.Lock()
	err, at := e.objHealth.err, e.objHealth.at
	e.objHealth.Unlock()
	if time.Since(at) > 2*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = e.opts.Objects.Ping(ctx)
		cancel()
		e.objHealth.Lock()
		e.objHealth.err, e.objHealth.at = err, time.Now()
		e.objHealth.Unlock()
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

type objHealth struct {
	sync.Mutex
	err error
	at  time.Time
}

// localCache tracks the local copies of persisted segments in object
// mode, by last use, to remove the least recently used past
// Options.CacheSize.
type localCache struct {
	mu    sync.Mutex
	size  map[localKey]int64
	used  map[localKey]time.Time
	total int64
}

// localKey names a local copy: a whole segment (n == 0), or the n bytes
// of one at off that a ranged GET fetched.
type localKey struct {
	seg uint64
	off int64
	n   int
}

func wholeSegment(id uint64) localKey { return localKey{seg: id} }

// name is a range's file name in the cache folder.
func (k localKey) name() string { return fmt.Sprintf("%016x-%d-%d", k.seg, k.off, k.n) }

func parseCacheName(name string) (localKey, bool) {
	var k localKey
	if n, err := fmt.Sscanf(name, "%016x-%d-%d", &k.seg, &k.off, &k.n); err != nil || n != 3 || k.name() != name || k.n <= 0 {
		return localKey{}, false
	}
	return k, true
}

func (c *localCache) touch(k localKey, size int64) {
	c.touchAt(k, size, time.Now())
}

func (c *localCache) touchAt(k localKey, size int64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.size == nil {
		c.size, c.used = map[localKey]int64{}, map[localKey]time.Time{}
	}
	if _, ok := c.size[k]; !ok {
		c.size[k] = size
		c.total += size
	}
	c.used[k] = at
}

// use marks a local copy as read now; it reports whether there is one.
func (c *localCache) use(k localKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.size[k]; ok {
		c.used[k] = time.Now()
		return true
	}
	return false
}

func (c *localCache) forget(k localKey) {
	c.mu.Lock()
	if n, ok := c.size[k]; ok {
		c.total -= n
		delete(c.size, k)
		delete(c.used, k)
	}
	c.mu.Unlock()
}

// victims returns the least recently used copies to remove to get under
// limit.
func (c *localCache) victims(limit int64) []localKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total <= limit {
		return nil
	}
	ks := make([]localKey, 0, len(c.size))
	for k := range c.size {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b localKey) int { return c.used[a].Compare(c.used[b]) })
	var out []localKey
	for total := c.total; total > limit && len(ks) > 0; ks = ks[1:] {
		out = append(out, ks[0])
		total -= c.size[ks[0]]
	}
	return out
}

// cacheDir holds the ranges of segments that ranged GETs fetched, in
// object mode.
const cacheDir = "cache"

// maxCachedRange: a GET of up to this many bytes (a record: a chunk
// and its header) is kept on local disk; longer reads (scans) are not.
const maxCachedRange = segment.MaxPayload + segment.RecordHeaderSize

// trimCache removes local copies past CacheSize, least recently used
// first. A read holding a removed segment file finishes on it; the next
// read of it goes to the object store.
func (e *Engine) trimCache() {
	for _, k := range e.cache.victims(e.opts.CacheSize) {
		var path string
		if k.n == 0 {
			e.files.drop(k.seg)
			path = e.fs.PathJoin(e.segDir, segment.FileName(k.seg))
		} else {
			path = e.fs.PathJoin(e.dir, cacheDir, k.name())
		}
		if err := e.fs.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			e.log.Warn("removing a cached copy", "path", path, "err", err)
			continue
		}
		e.cache.forget(k)
		e.stats.cacheEvictions.Add(1)
	}
}

// cachedRange reads a range fetched before, if the cache has it.
func (e *Engine) cachedRange(k localKey, p []byte) bool {
	if !e.cache.use(k) {
		return false
	}
	f, err := e.fs.Open(e.fs.PathJoin(e.dir, cacheDir, k.name()))
	if err != nil {
		e.cache.forget(k)
		return false
	}
	defer f.Close()
	if _, err := f.ReadAt(p, 0); err != nil {
		return false
	}
	return true
}

// keepRange writes a range a GET fetched to the cache folder (a new file,
// then renamed: a crash leaves a whole file or none). It is a copy: a
// failure only means the next read fetches it again.
func (e *Engine) keepRange(k localKey, p []byte) {
	dir := e.fs.PathJoin(e.dir, cacheDir)
	tmp := e.fs.PathJoin(dir, k.name()+".tmp")
	f, err := e.fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return
	}
	_, err = f.Write(p)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = e.fs.Rename(tmp, e.fs.PathJoin(dir, k.name()))
	}
	if err != nil {
		e.fs.Remove(tmp)
		return
	}
	e.cache.touch(k, int64(len(p)))
	e.trimCache()
}

// loadRanges lists the ranges kept before, in order of last change, at
// open; unfinished or unknown files go.
func (e *Engine) loadRanges() error {
	dir := e.fs.PathJoin(e.dir, cacheDir)
	if err := e.fs.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	names, err := e.fs.List(dir)
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	for _, n := range names {
		path := e.fs.PathJoin(dir, n)
		k, ok := parseCacheName(n)
		st, err := e.fs.Stat(path)
		if !ok || err != nil || st.Size() != int64(k.n) {
			e.fs.Remove(path)
			continue
		}
		e.cache.touchAt(k, st.Size(), st.ModTime())
	}
	return nil
}
