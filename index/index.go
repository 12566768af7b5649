// Package index is cairn's Pebble key schema: what maps paths, IDs and
// tenants to blobs, blobs to chunks, chunks to segment locations, and what
// counts references. Key prefixes and value codecs live in keys.go; this
// file opens the database and reads and writes typed entries.
//
// The index knows nothing of segment files or policy: it stores what the
// engine tells it, in batches committed with pebble.Sync, so that a batch
// is on disk before Commit returns.
//
// A DB is safe for concurrent use; a Batch is not.
//
//	db, err := index.Open(fs, "data/index", index.Options{})
//	b := db.NewBatch()
//	b.SetRecord(key, rec)
//	err = b.Commit()
package index

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"log/slog"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/internal/blob"
)

// Options configure the index. The zero value means the defaults.
type Options struct {
	// Logger receives Pebble's messages; default slog.Default().
	Logger *slog.Logger
	// CacheSize is Pebble's block cache; default 64 MiB.
	CacheSize int64
}

// DB is the index.
type DB struct {
	View
	st store
	// pdb is the Pebble database, nil for an index in PostgreSQL.
	pdb *pebble.DB
}

// Open opens, or creates, the index in dir of fs.
func Open(fs vfs.FS, dir string, opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = 64 << 20
	}
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	po := &pebble.Options{
		FS:                 fs,
		Cache:              cache,
		Merger:             merger,
		Logger:             pebbleLogger{opts.Logger},
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       32 << 20,
	}
	pdb, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("index: open %s: %w", dir, err)
	}
	st := &pebbleStore{pebbleReader: pebbleReader{r: pdb}, db: pdb}
	d := &DB{View: View{r: st}, st: st, pdb: pdb}
	if err := d.checkFormat(); err != nil {
		pdb.Close()
		return nil, err
	}
	return d, nil
}

func (d *DB) checkFormat() error {
	v, ok, err := d.get(metaKey(metaFormat))
	if err != nil {
		return err
	}
	if !ok {
		b := d.NewBatch()
		b.set(metaKey(metaFormat), encodeBE64(FormatVersion))
		return b.Commit()
	}
	f, err := decodeBE64(v)
	if err != nil {
		return fmt.Errorf("index: format version: %w", err)
	}
	if f != FormatVersion {
		return fmt.Errorf("index: format version %d, this build reads %d", f, FormatVersion)
	}
	return nil
}

// Close closes the index.
func (d *DB) Close() error { return d.st.close() }

// Snapshot returns a consistent view of the index as of now; Close it.
func (d *DB) Snapshot() *Snapshot {
	r, release := d.st.snapshot()
	return &Snapshot{View: View{r: r}, release: release}
}

// Snapshot is a point-in-time View.
type Snapshot struct {
	View
	release func() error
}

// Close releases the snapshot.
func (s *Snapshot) Close() error { return s.release() }

// Metrics returns Pebble's metrics; nil for an index in PostgreSQL.
func (d *DB) Metrics() *pebble.Metrics {
	if d.pdb == nil {
		return nil
	}
	return d.pdb.Metrics()
}

// View reads the index: the live database or a snapshot.
type View struct {
	r reader
}

func (v View) get(key []byte) ([]byte, bool, error) { return v.r.get(key) }

// Chunk returns a chunk's entry.
func (v View) Chunk(id blob.ID) (Chunk, bool, error) {
	b, ok, err := v.get(ChunkKey(id))
	if !ok || err != nil {
		return Chunk{}, false, err
	}
	c, err := DecodeChunk(b)
	if err != nil {
		return Chunk{}, false, fmt.Errorf("index: chunk %s: %w", id, err)
	}
	return c, true, nil
}

// Inline returns a chunk's inline payload; Payload is a copy.
func (v View) Inline(id blob.ID) (Inline, bool, error) {
	b, ok, err := v.get(InlineKey(id))
	if !ok || err != nil {
		return Inline{}, false, err
	}
	in, err := DecodeInline(b)
	if err != nil {
		return Inline{}, false, fmt.Errorf("index: inline chunk %s: %w", id, err)
	}
	return in, true, nil
}

// Outboard returns a chunk's outboard (blob.Outboard), if it has one.
func (v View) Outboard(id blob.ID) ([]byte, bool, error) { return v.get(OutboardKey(id)) }

// Outboards yields the chunk IDs that have an outboard.
func (v View) Outboards() iter.Seq2[blob.ID, error] {
	return func(yield func(blob.ID, error) bool) {
		for e, err := range v.scan([]byte{prefixOutboard}, nil) {
			var id blob.ID
			if err == nil {
				id, err = parseIDKey(prefixOutboard, e.key)
			}
			if !yield(id, err) || err != nil {
				return
			}
		}
	}
}

// InlineEntry is one inline payload.
type InlineEntry struct {
	ID blob.ID
	Inline
}

// Inlines yields every inline payload; Payload is valid only until the
// next.
func (v View) Inlines() iter.Seq2[InlineEntry, error] {
	return func(yield func(InlineEntry, error) bool) {
		for e, err := range v.scan([]byte{prefixInline}, nil) {
			var ie InlineEntry
			if err == nil {
				ie.ID, err = parseIDKey(prefixInline, e.key)
			}
			if err == nil {
				ie.Inline, err = DecodeInline(e.value)
			}
			if !yield(ie, err) || err != nil {
				return
			}
		}
	}
}

// Blob returns a blob's entry.
func (v View) Blob(id blob.ID) (Blob, bool, error) {
	b, ok, err := v.get(BlobKey(id))
	if !ok || err != nil {
		return Blob{}, false, err
	}
	bl, err := DecodeBlob(b)
	if err != nil {
		return Blob{}, false, fmt.Errorf("index: blob %s: %w", id, err)
	}
	return bl, true, nil
}

// Record returns a record's entry.
func (v View) Record(k RecordKey) (Record, bool, error) {
	b, ok, err := v.get(EncodeRecordKey(k))
	if !ok || err != nil {
		return Record{}, false, err
	}
	r, err := DecodeRecord(b)
	if err != nil {
		return Record{}, false, fmt.Errorf("index: record %s: %w", k, err)
	}
	return r, true, nil
}

// Zero reports whether id has a zero-reference entry, and since when.
func (v View) Zero(kind ZeroKind, id blob.ID) (int64, bool, error) {
	b, ok, err := v.get(zeroKey(kind, id))
	if !ok || err != nil {
		return 0, false, err
	}
	t, err := decodeBE64(b)
	return int64(t), true, err
}

// Meta returns a free-form meta value.
func (v View) Meta(name string) ([]byte, bool, error) { return v.get(metaKey("x." + name)) }

// appliedKey marks logged transaction seq as committed (object mode).
func appliedKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(metaKey("applied/"), seq)
}

// Applied reports whether the logged transaction seq was committed.
func (v View) Applied(seq uint64) (bool, error) {
	_, ok, err := v.get(appliedKey(seq))
	return ok, err
}

// SetApplied marks logged transaction seq as committed with the batch.
func (b *Batch) SetApplied(seq uint64) { b.set(appliedKey(seq), nil) }

// ClearApplied deletes every mark SetApplied made.
func (d *DB) ClearApplied() error {
	start := metaKey("applied/")
	end := append(bytes.Clone(start), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	b := d.st.newBatch()
	defer b.close()
	b.deleteRange(start, end)
	if err := b.commit(true); err != nil {
		return fmt.Errorf("index: clear applied: %w", err)
	}
	return nil
}

// scan yields the entries whose keys have prefix, from start (if not nil).
func (v View) scan(prefix, start []byte) iter.Seq2[kv, error] {
	return v.r.scan(prefix, prefixEnd(prefix), start)
}

type kv struct{ key, value []byte }

// RecordEntry is a record and its key.
type RecordEntry struct {
	Key RecordKey
	Record
}

// Records yields, in name order, the records of (namespace, tenant) whose
// names begin with prefix and are ≥ start (from the first if start is "").
func (v View) Records(namespace, tenant, prefix, start string) iter.Seq2[RecordEntry, error] {
	p := recordPrefix(namespace, tenant, prefix)
	var s []byte
	if start > prefix {
		s = recordPrefix(namespace, tenant, start)
	}
	return v.records(p, s)
}

// AllRecords yields every record of every namespace and tenant.
func (v View) AllRecords() iter.Seq2[RecordEntry, error] { return v.records([]byte{prefixRecord}, nil) }

// NamespaceRecords yields every record of namespace, of every tenant.
func (v View) NamespaceRecords(namespace string) iter.Seq2[RecordEntry, error] {
	return v.records(appendEscaped([]byte{prefixRecord}, namespace), nil)
}

func (v View) records(prefix, start []byte) iter.Seq2[RecordEntry, error] {
	return func(yield func(RecordEntry, error) bool) {
		for e, err := range v.scan(prefix, start) {
			if err != nil {
				yield(RecordEntry{}, err)
				return
			}
			k, err := DecodeRecordKey(e.key)
			if err != nil {
				yield(RecordEntry{}, err)
				return
			}
			r, err := DecodeRecord(e.value)
			if err != nil {
				yield(RecordEntry{}, fmt.Errorf("index: record %s: %w", k, err))
				return
			}
			if !yield(RecordEntry{Key: k, Record: r}, nil) {
				return
			}
		}
	}
}

// BlobEntry is a blob and its ID.
type BlobEntry struct {
	ID blob.ID
	Blob
}

// Blobs yields every blob.
func (v View) Blobs() iter.Seq2[BlobEntry, error] {
	return func(yield func(BlobEntry, error) bool) {
		for e, err := range v.scan([]byte{prefixBlob}, nil) {
			var be BlobEntry
			if err == nil {
				be.ID, err = parseIDKey(prefixBlob, e.key)
			}
			if err == nil {
				be.Blob, err = DecodeBlob(e.value)
			}
			if !yield(be, err) || err != nil {
				return
			}
		}
	}
}

// ChunkEntry is a chunk and its ID.
type ChunkEntry struct {
	ID blob.ID
	Chunk
}

// Chunks yields every chunk.
func (v View) Chunks() iter.Seq2[ChunkEntry, error] {
	return func(yield func(ChunkEntry, error) bool) {
		for e, err := range v.scan([]byte{prefixChunk}, nil) {
			var ce ChunkEntry
			if err == nil {
				ce.ID, err = parseIDKey(prefixChunk, e.key)
			}
			if err == nil {
				ce.Chunk, err = DecodeChunk(e.value)
			}
			if !yield(ce, err) || err != nil {
				return
			}
		}
	}
}

// ExpiryEntry is an entry of the expiry index.
type ExpiryEntry struct {
	At  int64
	Key RecordKey
}

// Expiring yields expiry entries in time order, up to (excluding) before.
func (v View) Expiring(before int64) iter.Seq2[ExpiryEntry, error] {
	end := ExpiryKey(before, RecordKey{})[:9]
	return func(yield func(ExpiryEntry, error) bool) {
		for e, err := range v.scan([]byte{prefixExpiry}, nil) {
			if err == nil && string(e.key[:min(9, len(e.key))]) >= string(end) {
				return
			}
			var ee ExpiryEntry
			if err == nil {
				ee.At, ee.Key, err = DecodeExpiryKey(e.key)
			}
			if !yield(ee, err) || err != nil {
				return
			}
		}
	}
}

// ZeroEntry is a zero-reference entry.
type ZeroEntry struct {
	Kind  ZeroKind
	ID    blob.ID
	Since int64
}

// Zeros yields the zero-reference entries of kind.
func (v View) Zeros(kind ZeroKind) iter.Seq2[ZeroEntry, error] {
	return func(yield func(ZeroEntry, error) bool) {
		for e, err := range v.scan([]byte{prefixZero, byte(kind)}, nil) {
			ze := ZeroEntry{Kind: kind}
			if err == nil {
				if len(e.key) != 2+blob.Size {
					err = corruptf("zero key %q", e.key)
				} else {
					ze.ID = blob.ID(e.key[2:])
					var t uint64
					t, err = decodeBE64(e.value)
					ze.Since = int64(t)
				}
			}
			if !yield(ze, err) || err != nil {
				return
			}
		}
	}
}

// Segment is what the index knows of a segment file.
type Segment struct {
	ID uint64
	// End is the largest synced end committed along with chunk locations
	// in this segment: no chunk entry points past it, and recovery trusts
	// the records before it.
	End int64
	// Sealed is the segment's final size, or 0 while it is active.
	Sealed int64
	// SealedAt is when it was sealed (Unix nanoseconds), in an index
	// several nodes share; else 0.
	SealedAt int64
	// LiveBytes and LiveChunks count the records that chunk entries point
	// to (header and payload).
	LiveBytes, LiveChunks int64
}

// Segments returns every segment the index knows, by ID.
func (v View) Segments() ([]Segment, error) {
	var out []Segment
	for e, err := range v.scan([]byte{prefixSegment}, nil) {
		if err != nil {
			return nil, err
		}
		id, field, err := parseSegmentKey(e.key)
		if err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].ID != id {
			out = append(out, Segment{ID: id})
		}
		s := &out[len(out)-1]
		switch field {
		case segFieldEnd:
			end, err := decodeMax(e.value)
			if err != nil {
				return nil, fmt.Errorf("index: segment %d end: %w", id, err)
			}
			s.End = int64(end)
		case segFieldLive:
			live, err := decodeSum(e.value, 2)
			if err != nil {
				return nil, fmt.Errorf("index: segment %d live: %w", id, err)
			}
			s.LiveBytes, s.LiveChunks = live[0], live[1]
		case segFieldSealed:
			size, err := decodeBE64(e.value)
			if err != nil {
				return nil, fmt.Errorf("index: segment %d sealed: %w", id, err)
			}
			s.Sealed = int64(size)
		case segFieldSealedAt:
			at, err := decodeBE64(e.value)
			if err != nil {
				return nil, fmt.Errorf("index: segment %d sealed at: %w", id, err)
			}
			s.SealedAt = int64(at)
		default:
			return nil, corruptf("segment %d field %q", id, field)
		}
	}
	return out, nil
}

// Totals are store-wide counters, kept exact by every batch.
type Totals struct {
	Records, RecordBytes          int64 // what clients stored: logical bytes
	Blobs, BlobBytes              int64 // distinct contents
	Chunks, ChunkBytes, ChunkDisk int64 // distinct chunks: content bytes, bytes in segments
}

func (t Totals) vector() []int64 {
	return []int64{t.Records, t.RecordBytes, t.Blobs, t.BlobBytes, t.Chunks, t.ChunkBytes, t.ChunkDisk}
}

// Totals returns the store-wide counters.
func (v View) Totals() (Totals, error) {
	b, ok, err := v.get(metaKey(metaTotals))
	if !ok || err != nil {
		return Totals{}, err
	}
	s, err := decodeSum(b, 7)
	if err != nil {
		return Totals{}, fmt.Errorf("index: totals: %w", err)
	}
	return Totals{s[0], s[1], s[2], s[3], s[4], s[5], s[6]}, nil
}

// Batch collects updates that Commit makes durable and visible at once.
type Batch struct {
	b      batch
	totals Totals
}

// PutOutboards writes chunks' outboards, unsynced: an outboard is
// derived from its chunk and verified against the chunk's ID on every
// use, so one lost in a crash, or never committed with its chunk, costs
// only the speed of range reads (and GC deletes those with no chunk).
func (d *DB) PutOutboards(obs map[blob.ID][]byte) error {
	b := d.st.newBatch()
	defer b.close()
	for id, ob := range obs {
		b.set(OutboardKey(id), ob)
	}
	return b.commit(false)
}

// NewBatch returns an empty batch.
func (d *DB) NewBatch() *Batch { return &Batch{b: d.st.newBatch()} }

func (b *Batch) set(k, v []byte)   { b.b.set(k, v) }
func (b *Batch) del(k []byte)      { b.b.del(k) }
func (b *Batch) merge(k, v []byte) { b.b.merge(k, v) }

// SetChunk writes a chunk entry.
func (b *Batch) SetChunk(id blob.ID, c Chunk) { b.set(ChunkKey(id), EncodeChunk(c)) }

// DeleteChunk removes a chunk entry.
func (b *Batch) DeleteChunk(id blob.ID) { b.del(ChunkKey(id)) }

// SetInline writes a chunk's inline payload.
func (b *Batch) SetInline(id blob.ID, v Inline) { b.set(InlineKey(id), EncodeInline(v)) }

// DeleteOutboard removes a chunk's outboard.
func (b *Batch) DeleteOutboard(id blob.ID) { b.del(OutboardKey(id)) }

// DeleteInline removes a chunk's inline payload.
func (b *Batch) DeleteInline(id blob.ID) { b.del(InlineKey(id)) }

// SetBlob writes a blob entry.
func (b *Batch) SetBlob(id blob.ID, v Blob) { b.set(BlobKey(id), EncodeBlob(v)) }

// DeleteBlob removes a blob entry.
func (b *Batch) DeleteBlob(id blob.ID) { b.del(BlobKey(id)) }

// SetRecord writes a record entry.
func (b *Batch) SetRecord(k RecordKey, r Record) { b.set(EncodeRecordKey(k), EncodeRecord(r)) }

// DeleteRecord removes a record entry.
func (b *Batch) DeleteRecord(k RecordKey) { b.del(EncodeRecordKey(k)) }

// SetExpiry adds k to the expiry index at time at.
func (b *Batch) SetExpiry(at int64, k RecordKey) { b.set(ExpiryKey(at, k), nil) }

// DeleteExpiry removes k's expiry entry at time at.
func (b *Batch) DeleteExpiry(at int64, k RecordKey) { b.del(ExpiryKey(at, k)) }

// SetZero records that id has had no references since the given time.
func (b *Batch) SetZero(kind ZeroKind, id blob.ID, since int64) {
	b.set(zeroKey(kind, id), encodeBE64(uint64(since)))
}

// DeleteZero removes a zero-reference entry.
func (b *Batch) DeleteZero(kind ZeroKind, id blob.ID) { b.del(zeroKey(kind, id)) }

// AddLive adds to a segment's live counters.
func (b *Batch) AddLive(segment uint64, bytes, chunks int64) {
	b.merge(segmentKey(segment, segFieldLive), sumOperand(bytes, chunks))
}

// RaiseEnd raises a segment's synced end to at least end.
func (b *Batch) RaiseEnd(segment uint64, end int64) {
	b.merge(segmentKey(segment, segFieldEnd), maxOperand(uint64(end)))
}

// SetSealed records a segment's final size.
func (b *Batch) SetSealed(segment uint64, size int64) {
	b.set(segmentKey(segment, segFieldSealed), encodeBE64(uint64(size)))
}

// DeleteSegment removes everything the index knows of a segment.
func (b *Batch) DeleteSegment(segment uint64) {
	for _, f := range []byte{segFieldEnd, segFieldLive, segFieldSealed, segFieldSealedAt} {
		b.del(segmentKey(segment, f))
	}
}

// AddTotals adds to the store-wide counters.
func (b *Batch) AddTotals(t Totals) {
	b.totals.Records += t.Records
	b.totals.RecordBytes += t.RecordBytes
	b.totals.Blobs += t.Blobs
	b.totals.BlobBytes += t.BlobBytes
	b.totals.Chunks += t.Chunks
	b.totals.ChunkBytes += t.ChunkBytes
	b.totals.ChunkDisk += t.ChunkDisk
}

// SetTotals replaces the store-wide counters (reindex).
func (b *Batch) SetTotals(t Totals) { b.set(metaKey(metaTotals), sumOperand(t.vector()...)) }

// SetMeta writes a free-form meta value.
func (b *Batch) SetMeta(name string, value []byte) { b.set(metaKey("x."+name), value) }

// Repr returns the batch's updates, its totals included, in the store's
// batch encoding (Pebble's, or postgres.go's): what Apply replays (a
// store in object mode logs it). The batch may still be committed after.
func (b *Batch) Repr() []byte {
	if b.totals != (Totals{}) {
		b.merge(metaKey(metaTotals), sumOperand(b.totals.vector()...))
		b.totals = Totals{}
	}
	return b.b.repr()
}

// Apply commits, unsynced, the updates of a batch that Repr returned
// (restore replays a log of them; it syncs once at the end with Flush).
func (d *DB) Apply(repr []byte) error { return d.st.apply(repr) }

// Flush makes everything applied durable.
func (d *DB) Flush() error { return d.st.flush() }

// Empty reports whether the batch has no updates.
func (b *Batch) Empty() bool { return b.b.empty() && b.totals == Totals{} }

// Commit applies the batch durably: it returns once the batch is in the
// synced write-ahead log. The batch cannot be reused.
func (b *Batch) Commit() error {
	if b.totals != (Totals{}) {
		b.merge(metaKey(metaTotals), sumOperand(b.totals.vector()...))
	}
	defer b.Close()
	return b.b.commit(true)
}

// commit commits b with opts (pebble.Sync but for outboards). A failed WAL write or sync is
// fatal to Pebble (its commit pipeline cannot go on, and after a failed
// fsync the page cache cannot be trusted): Pebble calls Fatalf, which
// panics with a fatalError, turned here into an error matching ErrFatal
// so the engine can stop writing instead of the process dying mid-request.
func commit(b *pebble.Batch, opts *pebble.WriteOptions) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = f
		}
	}()
	if err := b.Commit(opts); err != nil {
		return fmt.Errorf("index: commit: %w", err)
	}
	return nil
}

// ErrFatal reports that Pebble hit an error it cannot go on from (a failed
// WAL sync): no more writes may be made until the index is reopened.
var ErrFatal = errors.New("index: fatal error, reopen to recover")

type fatalError struct{ msg string }

func (f fatalError) Error() string { return "index: " + f.msg }
func (f fatalError) Unwrap() error { return ErrFatal }

// Close discards an uncommitted batch; after Commit it does nothing. It
// may be called more than once.
func (b *Batch) Close() { b.b.close() }

// pebbleLogger sends Pebble's messages to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by Pebble on an invariant violation, after which it
// cannot go on; it must not return.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble", "fatal", true)
	panic(fatalError{msg})
}

// Checkpoint writes a consistent copy of the index to dir, which must not
// exist: its tables hard-linked where the file system allows, everything
// committed before the call in it (unsynced writes too), synced.
func (d *DB) Checkpoint(dir string) error { return d.st.checkpoint(dir) }
