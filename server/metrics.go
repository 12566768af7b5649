package server

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnstore/cairn/engine"
)

// httpMetrics are the per-request series every route records.
type httpMetrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	reqBytes  *prometheus.CounterVec
	respBytes *prometheus.CounterVec
	inflight  prometheus.Gauge
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_http_requests_total",
			Help: "HTTP requests answered, by API, route pattern, method and status code.",
		}, []string{"api", "route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cairn_http_request_duration_seconds",
			Help:    "Time from the request's headers to the end of its response.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"api", "route", "method"}),
		reqBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_http_request_body_bytes_total",
			Help: "Request body bytes read, by API and route pattern.",
		}, []string{"api", "route"}),
		respBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_http_response_body_bytes_total",
			Help: "Response body bytes written, by API and route pattern.",
		}, []string{"api", "route"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cairn_http_requests_in_flight",
			Help: "Requests being served.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.reqBytes, m.respBytes, m.inflight)
	return m
}

// engineCollector reads engine.Stats at each scrape.
type engineCollector struct {
	e *engine.Engine

	records, logical, blobs, blobBytes, chunks, chunkBytes, physical *prometheus.Desc
	segments, segmentBytes, live, dead                               *prometheus.Desc
	uploads, dedupChunks, dedupBytes, written, corrupt, chunkReads   *prometheus.Desc
	dedupWhole                                                       *prometheus.Desc
	fsync, readOnly, up, readCache, cacheHits, partReads             *prometheus.Desc
	gcRuns, gcReclaimed, compacted, expired                          *prometheus.Desc
	scrubRuns, scrubChunks, scrubCorrupt                             *prometheus.Desc
	lastGC, lastScrub, free, total                                   *prometheus.Desc
	objectPuts, objectPutBytes, objectGets, objectGetBytes           *prometheus.Desc
	localCache, localEvictions                                       *prometheus.Desc
	conflicts                                                        *prometheus.Desc
}

func newEngineCollector(e *engine.Engine) *engineCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("cairn_store_"+name, help, nil, nil)
	}
	return &engineCollector{
		e:            e,
		records:      d("records", "Records stored (paths, assets, media…)."),
		logical:      d("logical_bytes", "Bytes clients stored: the sum of every record's size."),
		blobs:        d("blobs", "Distinct contents stored."),
		blobBytes:    d("blob_bytes", "Bytes of the distinct contents."),
		chunks:       d("chunks", "Distinct content-defined chunks stored."),
		chunkBytes:   d("chunk_bytes", "Bytes of the distinct chunks, uncompressed."),
		physical:     d("physical_bytes", "Bytes the distinct chunks take in segment files (after compression, with record headers)."),
		segments:     d("segments", "Segment files."),
		segmentBytes: d("segment_bytes", "Bytes written into segment files."),
		live:         d("segment_live_bytes", "Segment bytes that stored chunks occupy."),
		dead:         d("segment_dead_bytes", "Segment bytes no chunk needs any more (deleted or orphaned), reclaimable by compaction."),
		uploads:      d("uploads_total", "Uploads streamed into the store since start."),
		dedupChunks:  d("dedup_chunks_total", "Chunks found already stored and not written again, since start."),
		dedupBytes:   d("dedup_bytes_total", "Content bytes of the chunks found already stored, since start."),
		dedupWhole:   d("dedup_whole_total", "Uploads whose whole content was found already stored by its hash, and not chunked, since start."),
		written:      d("written_bytes_total", "Bytes appended to segment files since start."),
		corrupt:      d("corrupt_reads_total", "Chunk reads that failed verification since start."),
		chunkReads:   d("chunk_reads_total", "Chunks read from segment files and verified (downloads and scrubs) since start."),
		fsync:        d("fsync_duration_seconds", "Latency of segment fdatasync calls (each shared by the uploads of a group commit)."),
		readOnly:     d("read_only", "1 when the store refuses writes after a write or sync failure, until restarted."),
		readCache:    d("read_cache_bytes", "Verified chunks kept in memory for downloads, and the ones being read (at most serve --read-cache)."),
		partReads:    d("chunk_part_reads_total", "Parts of chunks read for range requests and verified by the chunk's outboard, without reading the whole chunk, since start."),
		cacheHits:    d("read_cache_hits_total", "Chunk reads of downloads served from the read cache, without reading the disk, since start."),
		up:           d("stats_up", "1 when the store's figures could be read."),
		gcRuns:       d("gc_runs_total", "Garbage collection passes completed since start."),
		gcReclaimed:  d("gc_reclaimed_bytes_total", "Segment bytes given back to the file system by compaction since start."),
		compacted:    d("gc_compacted_segments_total", "Segments compacted and removed since start."),
		expired:      d("expired_records_total", "Records deleted by the expiry sweeper since start."),
		scrubRuns:    d("scrub_runs_total", "Scrubs completed since start."),
		scrubChunks:  d("scrub_verified_chunks_total", "Chunks re-read and verified by scrubs since start."),
		scrubCorrupt: d("scrub_corrupt_chunks", "Corrupt chunks the last scrub found."),
		lastGC:       d("gc_last_run_timestamp_seconds", "When the last garbage collection pass ended, in Unix seconds (absent: none since start)."),
		lastScrub:    d("scrub_last_run_timestamp_seconds", "When the last scrub ended, in Unix seconds (absent: none since start)."),
		free:         d("filesystem_free_bytes", "Space available to cairn on the data folder's file system (uploads are refused under serve --min-free-bytes)."),
		total:        d("filesystem_size_bytes", "Size of the data folder's file system."),

		objectPuts:     d("object_puts_total", "Segment objects put into the object store (--store s3://…), since start."),
		objectPutBytes: d("object_put_bytes_total", "Bytes of the segment objects put, since start."),
		objectGets:     d("object_gets_total", "Ranged GETs of segment objects with no local copy, since start."),
		objectGetBytes: d("object_get_bytes_total", "Bytes fetched by those GETs, since start."),
		localCache:     d("object_cache_bytes", "Bytes of local copies of segment objects (at most --cache-size)."),
		localEvictions: d("object_cache_evictions_total", "Local copies of segment objects removed past --cache-size, since start."),
		conflicts:      d("index_conflicts_total", "Transactions read again and redone because another node committed over what they read (several nodes on one store), since start."),
	}
}

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.records, c.logical, c.blobs, c.blobBytes, c.chunks, c.chunkBytes, c.physical,
		c.segments, c.segmentBytes, c.live, c.dead, c.uploads, c.dedupChunks, c.dedupBytes, c.dedupWhole, c.written, c.corrupt, c.chunkReads,
		c.fsync, c.readOnly, c.up, c.readCache, c.cacheHits, c.partReads, c.gcRuns, c.gcReclaimed, c.compacted, c.expired, c.scrubRuns, c.scrubChunks, c.scrubCorrupt, c.lastGC, c.lastScrub, c.free, c.total,
		c.objectPuts, c.objectPutBytes, c.objectGets, c.objectGetBytes, c.localCache, c.localEvictions, c.conflicts} {
		ch <- d
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.e.Stats()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	k := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	g(c.records, float64(s.Records))
	g(c.logical, float64(s.RecordBytes))
	g(c.blobs, float64(s.Blobs))
	g(c.blobBytes, float64(s.BlobBytes))
	g(c.chunks, float64(s.Chunks))
	g(c.chunkBytes, float64(s.ChunkBytes))
	g(c.physical, float64(s.ChunkDisk))
	g(c.segments, float64(s.Segments))
	g(c.segmentBytes, float64(s.SegmentBytes))
	g(c.live, float64(s.LiveBytes))
	g(c.dead, float64(s.DeadBytes))
	k(c.uploads, s.Uploads)
	k(c.dedupChunks, s.DedupChunks)
	k(c.dedupBytes, s.DedupBytes)
	k(c.dedupWhole, s.DedupWhole)
	k(c.written, s.WrittenBytes)
	k(c.corrupt, s.CorruptReads)
	k(c.chunkReads, s.ChunkReads)
	k(c.cacheHits, s.ReadCacheHits)
	k(c.partReads, s.PartReads)
	k(c.gcRuns, s.GCRuns)
	k(c.gcReclaimed, s.GCReclaimed)
	k(c.compacted, s.Compacted)
	k(c.expired, s.Expired)
	k(c.scrubRuns, s.ScrubRuns)
	k(c.scrubChunks, s.ScrubChunks)
	g(c.scrubCorrupt, float64(s.ScrubCorrupt))
	if !s.LastGC.IsZero() {
		g(c.lastGC, float64(s.LastGC.UnixNano())/1e9)
	}
	if !s.LastScrub.IsZero() {
		g(c.lastScrub, float64(s.LastScrub.UnixNano())/1e9)
	}
	if s.TotalBytes > 0 {
		g(c.free, float64(s.FreeBytes))
		g(c.total, float64(s.TotalBytes))
	}
	g(c.readCache, float64(s.ReadCacheBytes))
	k(c.objectPuts, s.ObjectPuts)
	k(c.objectPutBytes, s.ObjectPutBytes)
	k(c.objectGets, s.ObjectGets)
	k(c.objectGetBytes, s.ObjectGetBytes)
	g(c.localCache, float64(s.CacheBytes))
	k(c.localEvictions, s.CacheEvictions)
	k(c.conflicts, s.Conflicts)
	buckets := make(map[float64]uint64, len(engine.SyncBuckets))
	for i, ub := range engine.SyncBuckets {
		buckets[ub] = s.SyncBuckets[i]
	}
	ch <- prometheus.MustNewConstHistogram(c.fsync, s.SyncCount, s.SyncSeconds, buckets)
	ro := 0.0
	if s.ReadOnly {
		ro = 1
	}
	g(c.readOnly, ro)
}

// registerBuildInfo registers cairn_build_info.
func registerBuildInfo(reg prometheus.Registerer, version string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "cairn_build_info",
		Help:        "Always 1; its labels say which cairn is running.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	g.Set(1)
	reg.MustRegister(g)
}
