package engine

import (
	"sync/atomic"
	"time"

	"github.com/cairnstore/cairn/index"
)

// SyncBuckets are the upper bounds, in seconds, of the fsync latency
// histogram in Stats.
var SyncBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// counters are the engine's in-memory, since-open figures.
type counters struct {
	uploads      atomic.Uint64
	dedupChunks  atomic.Uint64
	dedupBytes   atomic.Uint64
	wholeDedup   atomic.Uint64 // uploads found stored by the content's hash, not chunked
	writtenBytes atomic.Uint64 // record bytes appended to segments
	corruptReads atomic.Uint64
	chunkReads   atomic.Uint64 // chunks read from segments and verified
	partReads    atomic.Uint64 // parts of chunks read and verified by outboard
	lastGC       atomic.Int64  // when the last GC pass ended, Unix nanoseconds
	lastScrub    atomic.Int64  // when the last scrub ended, Unix nanoseconds
	gcRuns       atomic.Uint64
	gcReclaimed  atomic.Uint64
	compacted    atomic.Uint64
	expired      atomic.Uint64
	scrubRuns    atomic.Uint64
	scrubChunks  atomic.Uint64
	scrubCorrupt atomic.Uint64 // found by the last scrub
	syncCount    atomic.Uint64
	syncNanos    atomic.Uint64
	syncBuckets  [15]atomic.Uint64 // len(SyncBuckets)+1, the last is +Inf
	// Object mode: segment objects put and ranged GETs, with their bytes;
	// local copies removed past the cache size.
	objectPuts, objectPutBytes atomic.Uint64
	objectGets, objectGetBytes atomic.Uint64
	cacheEvictions             atomic.Uint64
	objectStreamed             atomic.Uint64
	conflicts                  atomic.Uint64 // transactions another node committed over
}

func (c *counters) observeSync(d time.Duration) {
	c.syncCount.Add(1)
	c.syncNanos.Add(uint64(d))
	s := d.Seconds()
	i := 0
	for i < len(SyncBuckets) && s > SyncBuckets[i] {
		i++
	}
	c.syncBuckets[i].Add(1)
}

// Stats are the engine's figures: exact store-wide totals from the index,
// per-segment live and dead bytes, and counters since Open.
type Stats struct {
	// Totals: records and the bytes clients stored (logical), distinct
	// blobs and chunks, and the chunk bytes in segments.
	index.Totals
	// Segments is the number of segment files; SegmentBytes their data.
	Segments     int
	SegmentBytes int64
	// LiveBytes are segment bytes that chunk entries point to; DeadBytes
	// the rest (deleted data and orphans, reclaimed by compaction).
	LiveBytes, DeadBytes int64

	// Since Open:
	Uploads     uint64
	DedupChunks uint64 // chunks found stored instead of written
	DedupBytes  uint64 // their content bytes
	// DedupWhole counts the uploads (of at most a chunk's maximum size)
	// found stored by their content's hash alone, and not chunked.
	DedupWhole   uint64
	WrittenBytes uint64 // bytes appended to segments or kept inline in the index
	CorruptReads uint64
	ChunkReads   uint64 // chunks read from segments and verified, for clients and scrubs
	PartReads    uint64 // parts of chunks read for ranges, verified by the chunk's outboard
	GCRuns       uint64 // GC passes completed
	GCReclaimed  uint64 // segment bytes given back by compaction
	Compacted    uint64 // segments compacted and removed
	Expired      uint64 // records deleted by the expiry sweeper
	ScrubRuns    uint64 // scrubs completed
	ScrubChunks  uint64 // chunks verified by scrubs
	ScrubCorrupt uint64 // corrupt chunks the last scrub found

	// Segment fdatasync latency: count, total, and a cumulative histogram
	// over SyncBuckets (the last entry counts all).
	SyncCount   uint64
	SyncSeconds float64
	SyncBuckets []uint64

	// ReadCacheBytes are the verified chunks kept in memory for reads and
	// the ones being read, at most Options.ReadCache (give or take one
	// chunk being read); ReadCacheHits counts the chunk reads served from
	// them, without reading the disk.
	ReadCacheBytes int64
	ReadCacheHits  uint64

	// LastGC and LastScrub are when the last GC pass and the last scrub
	// ended (zero: none since Open).
	LastGC, LastScrub time.Time
	// FreeBytes and TotalBytes are the data folder's file system's space
	// available to cairn and its size (zero where unknown).
	FreeBytes, TotalBytes uint64

	// Object mode (Options.Objects): the segment objects put and the
	// ranged GETs made, with their bytes; the bytes of local copies of
	// segments and how many were removed past Options.CacheSize.
	ObjectPuts, ObjectPutBytes uint64
	ObjectGets, ObjectGetBytes uint64
	CacheBytes                 int64
	CacheEvictions             uint64
	// ObjectStreamed counts the segment objects put in parts while they
	// were written (a large upload's), not in one put once sealed.
	ObjectStreamed uint64
	// Conflicts counts the transactions redone because another node
	// committed over what they read (several nodes on one index).
	Conflicts uint64

	// ReadOnly is set after a write failure, with the reason.
	ReadOnly       bool
	ReadOnlyReason string
}

// Stats returns the engine's figures. It reads a few index keys; it does
// not scan.
func (e *Engine) Stats() (Stats, error) {
	var s Stats
	t, err := e.idx.Totals()
	if err != nil {
		return s, err
	}
	s.Totals = t
	segs, err := e.idx.Segments()
	if err != nil {
		return s, err
	}
	active := e.w.End()
	for _, seg := range segs {
		size := seg.Sealed
		if seg.ID == active.Segment {
			size = active.Offset
		}
		if size == 0 {
			size = seg.End
		}
		s.SegmentBytes += size
		s.LiveBytes += seg.LiveBytes
	}
	s.Segments = len(segs)
	if !containsSegment(segs, active.Segment) {
		s.Segments++
		s.SegmentBytes += active.Offset
	}
	s.DeadBytes = max(0, s.SegmentBytes-s.LiveBytes)
	s.Uploads = e.stats.uploads.Load()
	s.DedupChunks = e.stats.dedupChunks.Load()
	s.DedupBytes = e.stats.dedupBytes.Load()
	s.DedupWhole = e.stats.wholeDedup.Load()
	s.WrittenBytes = e.stats.writtenBytes.Load()
	s.CorruptReads = e.stats.corruptReads.Load()
	s.ChunkReads = e.stats.chunkReads.Load()
	s.GCRuns = e.stats.gcRuns.Load()
	if t := e.stats.lastGC.Load(); t != 0 {
		s.LastGC = time.Unix(0, t).UTC()
	}
	if t := e.stats.lastScrub.Load(); t != 0 {
		s.LastScrub = time.Unix(0, t).UTC()
	}
	if u, err := e.fs.GetDiskUsage(e.segDir); err == nil {
		s.FreeBytes, s.TotalBytes = u.AvailBytes, u.TotalBytes
	}
	s.GCReclaimed = e.stats.gcReclaimed.Load()
	s.Compacted = e.stats.compacted.Load()
	s.Expired = e.stats.expired.Load()
	s.ScrubRuns = e.stats.scrubRuns.Load()
	s.ScrubChunks = e.stats.scrubChunks.Load()
	s.ScrubCorrupt = e.stats.scrubCorrupt.Load()
	s.SyncCount = e.stats.syncCount.Load()
	s.SyncSeconds = time.Duration(e.stats.syncNanos.Load()).Seconds()
	s.SyncBuckets = make([]uint64, len(e.stats.syncBuckets))
	var cum uint64
	for i := range e.stats.syncBuckets {
		cum += e.stats.syncBuckets[i].Load()
		s.SyncBuckets[i] = cum
	}
	s.PartReads = e.stats.partReads.Load()
	used, hits := e.reads.stats()
	s.ReadCacheBytes, s.ReadCacheHits = used, uint64(hits)
	s.ObjectPuts, s.ObjectPutBytes = e.stats.objectPuts.Load(), e.stats.objectPutBytes.Load()
	s.ObjectGets, s.ObjectGetBytes = e.stats.objectGets.Load(), e.stats.objectGetBytes.Load()
	s.CacheEvictions = e.stats.cacheEvictions.Load()
	s.ObjectStreamed = e.stats.objectStreamed.Load()
	s.Conflicts = e.stats.conflicts.Load()
	e.cache.mu.Lock()
	s.CacheBytes = e.cache.total
	e.cache.mu.Unlock()
	if p := e.failed.Load(); p != nil {
		s.ReadOnly, s.ReadOnlyReason = true, (*p).Error()
	}
	return s, nil
}

func containsSegment(segs []index.Segment, id uint64) bool {
	for _, s := range segs {
		if s.ID == id {
			return true
		}
	}
	return false
}
