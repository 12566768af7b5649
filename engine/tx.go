package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/segment"
)

// Key names a record: the API's namespace, the tenant (bucket, owner,
// account) and the name within it. Lookups never cross namespaces or
// tenants.
type Key = index.RecordKey

// Limits on keys, so that index keys stay small.
const (
	MaxNamespace = 64
	MaxTenant    = 512
	MaxName      = 4096
)

func validKey(k Key) error {
	switch {
	case k.Namespace == "" || len(k.Namespace) > MaxNamespace:
		return fmt.Errorf("%w: namespace %q", ErrInvalid, k.Namespace)
	case len(k.Tenant) > MaxTenant:
		return fmt.Errorf("%w: tenant of %d bytes", ErrInvalid, len(k.Tenant))
	case k.Name == "" || len(k.Name) > MaxName:
		return fmt.Errorf("%w: name of %d bytes", ErrInvalid, len(k.Name))
	case !utf8.ValidString(k.Namespace):
		return fmt.Errorf("%w: namespace is not UTF-8", ErrInvalid)
	}
	return nil
}

// Record is what an API stored under a key.
type Record struct {
	Key Key
	// Blob is the content's ID, or zero for a record without content.
	Blob        blob.ID
	Size        int64
	ContentType string
	// Meta is the API's own metadata; the engine does not read it.
	Meta []byte
	// Created is when the key was first written; Modified, the last write.
	Created, Modified time.Time
	// Expires, if not zero, is when the record is deleted by the sweeper.
	Expires time.Time
	// Version is 1 after the first write and grows by one with each.
	Version uint64
}

func fromIndex(k Key, r index.Record) Record {
	rec := Record{
		Key: k, Blob: r.Blob, Size: r.Size, ContentType: r.ContentType, Meta: r.Meta,
		Created: time.Unix(0, r.Created).UTC(), Modified: time.Unix(0, r.Modified).UTC(),
		Version: r.Version,
	}
	if r.Expires != 0 {
		rec.Expires = time.Unix(0, r.Expires).UTC()
	}
	return rec
}

// Tx is one atomic update of records and the references they hold. It is
// only valid inside the function passed to Update.
type Tx struct {
	e     *Engine
	locks *lockSet
	// idx answers the transaction's reads: the index, or what was read
	// of it ahead, under the transaction's locks (ahead).
	idx index.View
	now time.Time
	// retry is set when a lock could not be taken in order; every later
	// call fails, and Update runs the function again holding more locks.
	retry   bool
	chunks  map[blob.ID]*chunkState
	blobs   map[blob.ID]*blobState
	records map[Key]*recordState
	ends    map[uint64]int64
	// sweeping: the expiry sweeper may delete records past their time.
	sweeping bool
	// uploads are the uploads whose content this transaction references.
	uploads []*Upload
}

type chunkState struct {
	existed, wasZero bool
	orig, cur        index.Chunk
	exists           bool
	stripe           int
	// release: GC drops this zero-reference chunk; moved: compaction
	// repointed it (cur.Location is the copy).
	release, moved bool
	// inline is the payload of a chunk this transaction creates inline.
	inline *index.Inline
	// again is a stored inline chunk's payload made again by an upload of
	// the same bytes, written over it if it is the same (Upload.again).
	again *index.Inline
}

type blobState struct {
	existed, wasZero bool
	orig, cur        index.Blob
	exists, changed  bool
	stripe           int
}

type recordState struct {
	existed         bool
	orig, cur       index.Record
	exists, changed bool
}

var errRetry = errors.New("engine: transaction must retry with more locks")

// maxAttempts bounds lock retries; each retry holds a strictly larger set
// of stripes, so this is never reached in practice.
const maxAttempts = 64

// Update runs fn as one atomic transaction and commits it durably (the
// index batch is synced before Update returns). fn may run more than once
// (when it needs a lock out of order); it must act only through tx and
// must not keep anything from a run that fails. If fn returns an error,
// nothing is written and Update returns that error.
func (e *Engine) Update(ctx context.Context, fn func(tx *Tx) error) error {
	return e.update(ctx, ahead{}, fn)
}

// ahead names entries a transaction will read. With the index in
// PostgreSQL, update takes their locks first and reads them in one round
// trip, not one each as the transaction comes to them.
type ahead struct {
	records       []Key
	blobs, chunks []blob.ID
}

// stripes are the locks of a's entries, sorted.
func (a ahead) stripes(l *stripes) []int {
	var out []int
	for _, k := range a.records {
		out = append(out, l.ofRecord(k))
	}
	for _, id := range a.blobs {
		out = append(out, l.ofID(index.ZeroBlob, id))
	}
	for _, id := range a.chunks {
		out = append(out, l.ofID(index.ZeroChunk, id))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// update is Update, reading a's entries ahead where that saves round
// trips.
func (e *Engine) update(ctx context.Context, a ahead, fn func(tx *Tx) error) error {
	if err := e.begin(); err != nil {
		return err
	}
	defer e.end()
	if err := e.writable(); err != nil {
		return err
	}
	var need []int
	readAhead := e.idx.Remote() && len(a.records)+len(a.blobs)+len(a.chunks) > 0
	if readAhead {
		need = a.stripes(e.locks) // every later attempt holds them too
	}
	conflicts := 0
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		tx := &Tx{
			e: e, locks: newLockSet(e.locks), idx: e.idx.View, now: e.opts.Now(),
			chunks: map[blob.ID]*chunkState{}, blobs: map[blob.ID]*blobState{},
			records: map[Key]*recordState{}, ends: map[uint64]int64{},
		}
		tx.locks.lockAll(need)
		var err error
		if readAhead {
			// Under their locks, as the transaction's own reads would be.
			if tx.idx, err = e.idx.Prefetch(a.records, a.blobs, a.chunks); err != nil {
				tx.locks.unlockAll()
				return corrupt(err)
			}
		}
		err = fn(tx)
		if tx.retry && attempt < maxAttempts {
			need = tx.locks.list()
			tx.locks.unlockAll()
			continue
		}
		if err == nil && tx.retry {
			err = fmt.Errorf("engine: transaction could not take its locks in %d attempts", maxAttempts)
		}
		if err == nil {
			err = tx.commit()
		}
		if errors.Is(err, index.ErrConflict) && conflicts < maxConflicts {
			// Another node committed over what fn read: read again.
			need = tx.locks.list()
			tx.locks.unlockAll()
			conflicts++
			e.stats.conflicts.Add(1)
			backoff(conflicts)
			attempt = 0
			continue
		}
		tx.locks.unlockAll()
		if err == nil {
			e.notifyPut(tx)
		}
		if errors.Is(err, index.ErrConflict) {
			err = fmt.Errorf("%w: other nodes kept changing what this transaction read: %w", ErrUnavailable, err)
		}
		return err
	}
}

// notifyPut calls the OnPut callbacks for the records tx wrote.
func (e *Engine) notifyPut(tx *Tx) {
	e.hooksMu.RLock()
	defer e.hooksMu.RUnlock()
	if len(e.putHooks) == 0 {
		return
	}
	for k, rs := range tx.records {
		if fn := e.putHooks[k.Namespace]; fn != nil && rs.changed && rs.exists && !rs.cur.Blob.IsZero() {
			fn(fromIndex(k, rs.cur))
		}
	}
}

// OnPut registers fn to be called with each record of namespace that has
// content, after a transaction that wrote it is durable (to make an
// image's variants ahead of the first request for them, say). Calls are
// at most once: a crash between the commit and the call loses it. fn must
// not block.
func (e *Engine) OnPut(namespace string, fn func(Record)) {
	e.hooksMu.Lock()
	defer e.hooksMu.Unlock()
	if e.putHooks == nil {
		e.putHooks = map[string]func(Record){}
	}
	e.putHooks[namespace] = fn
}

// maxConflicts bounds how often Update redoes a transaction another node
// committed over; past it, the client sees 503 and may try again.
const maxConflicts = 50

// backoff sleeps a little, more after each conflict, at random, so that
// nodes conflicting on one entry do not meet again in step.
func backoff(n int) {
	d := time.Duration(min(n, 10)) * time.Millisecond
	time.Sleep(d/2 + rand.N(d))
}

func (tx *Tx) lock(i int) error {
	if tx.retry {
		return errRetry
	}
	if !tx.locks.acquire(i) {
		tx.retry = true
		return errRetry
	}
	return nil
}

func (tx *Tx) chunk(id blob.ID) (*chunkState, error) {
	if cs, ok := tx.chunks[id]; ok {
		return cs, nil
	}
	i := tx.e.locks.ofID(index.ZeroChunk, id)
	if err := tx.lock(i); err != nil {
		return nil, err
	}
	c, ok, err := tx.idx.Chunk(id)
	if err != nil {
		return nil, corrupt(err)
	}
	cs := &chunkState{existed: ok, orig: c, cur: c, exists: ok, stripe: i}
	cs.wasZero = ok && c.Refs == 0
	tx.chunks[id] = cs
	return cs, nil
}

func (tx *Tx) blob(id blob.ID) (*blobState, error) {
	if bs, ok := tx.blobs[id]; ok {
		return bs, nil
	}
	i := tx.e.locks.ofID(index.ZeroBlob, id)
	if err := tx.lock(i); err != nil {
		return nil, err
	}
	b, ok, err := tx.idx.Blob(id)
	if err != nil {
		return nil, corrupt(err)
	}
	bs := &blobState{existed: ok, orig: b, cur: b, exists: ok, stripe: i}
	bs.wasZero = ok && b.Refs == 0
	tx.blobs[id] = bs
	return bs, nil
}

func (tx *Tx) record(k Key) (*recordState, error) {
	if err := validKey(k); err != nil {
		return nil, err
	}
	if rs, ok := tx.records[k]; ok {
		return rs, nil
	}
	if err := tx.lock(tx.e.locks.ofRecord(k)); err != nil {
		return nil, err
	}
	r, ok, err := tx.idx.Record(k)
	if err != nil {
		return nil, corrupt(err)
	}
	rs := &recordState{existed: ok, orig: r, cur: r, exists: ok}
	tx.records[k] = rs
	return rs, nil
}

// Get returns the record at k, or ErrNotFound.
func (tx *Tx) Get(k Key) (Record, error) {
	rs, err := tx.record(k)
	if err != nil {
		return Record{}, err
	}
	if !rs.exists || tx.e.expired(rs.cur) {
		return Record{}, fmt.Errorf("%w: record %s", ErrNotFound, k)
	}
	return fromIndex(k, rs.cur), nil
}

// Put writes the record at k, replacing any record there. Its content is
// up's if up is not nil; otherwise rec.Blob, which must be stored already
// (another record's content, as for a copy or a move) or zero for none.
// From rec, Put takes ContentType, Meta and Expires; it sets Size, the
// timestamps and the version, and returns the record as stored.
func (tx *Tx) Put(k Key, rec Record, up *Upload) (Record, error) {
	rs, err := tx.record(k)
	if err != nil {
		return Record{}, err
	}
	id := rec.Blob
	var size int64
	if up != nil {
		if up.closed || up.e != tx.e {
			return Record{}, fmt.Errorf("%w: upload closed or of another engine", ErrInvalid)
		}
		id, size = up.id, up.size
		if err := tx.addUpload(up); err != nil {
			return Record{}, err
		}
	} else if !id.IsZero() {
		bs, err := tx.blob(id)
		if err != nil {
			return Record{}, err
		}
		if !bs.exists {
			return Record{}, fmt.Errorf("%w: blob %s", ErrNotFound, id)
		}
		bs.cur.Refs++
		bs.changed = true
		size = bs.cur.Size
	}
	if rs.exists && !rs.cur.Blob.IsZero() {
		if err := tx.dropBlob(rs.cur.Blob); err != nil {
			return Record{}, err
		}
	}
	now := tx.now.UnixNano()
	created := now
	if rs.exists {
		created = rs.cur.Created
	}
	var expires int64
	if !rec.Expires.IsZero() {
		expires = rec.Expires.UnixNano()
	}
	rs.cur = index.Record{
		Blob: id, Size: size, ContentType: rec.ContentType, Meta: rec.Meta,
		Created: created, Modified: now, Expires: expires, Version: rs.cur.Version + 1,
	}
	if !rs.exists && rs.existed {
		// Deleted and written again in one transaction: the version goes on.
		rs.cur.Version = rs.orig.Version + 1
	}
	rs.exists, rs.changed = true, true
	return fromIndex(k, rs.cur), nil
}

// Delete removes the record at k; ErrNotFound if there is none. If it held
// the last reference to its content, the content's space is released.
func (tx *Tx) Delete(k Key) error {
	rs, err := tx.record(k)
	if err != nil {
		return err
	}
	if !rs.exists || tx.e.expired(rs.cur) && !tx.sweeping {
		return fmt.Errorf("%w: record %s", ErrNotFound, k)
	}
	if !rs.cur.Blob.IsZero() {
		if err := tx.dropBlob(rs.cur.Blob); err != nil {
			return err
		}
	}
	rs.exists, rs.changed = false, true
	return nil
}

// addUpload references an upload's content once more: its blob exists
// already (then only its count changes), or it is created from the
// upload's chunk list, each chunk referenced, new ones located where the
// upload appended them.
func (tx *Tx) addUpload(up *Upload) error {
	bs, err := tx.blob(up.id)
	if err != nil {
		return err
	}
	tx.uploads = append(tx.uploads, up)
	if bs.exists {
		bs.cur.Refs++
		bs.changed = true
		if up.again != nil {
			cs, err := tx.chunk(up.chunks[0].ID)
			if err != nil {
				return err
			}
			cs.again = up.again
		}
		return nil
	}
	for _, c := range up.chunks {
		cs, err := tx.chunk(c.ID)
		if err != nil {
			return err
		}
		if !cs.exists {
			loc, ok := up.fresh[c.ID]
			if !ok && tx.e.shared {
				// Another node's GC took it, not seeing this node's
				// horizon (nodes.go): this node's heartbeat stopped for
				// over nodeTTL (cut off from the database), or the nodes'
				// clocks are far apart. Refused, not lost.
				return fmt.Errorf("%w: chunk %s, stored when the upload began, was collected since by another node (was this node cut off from the database?): upload again", ErrUnavailable, c.ID)
			}
			if !ok {
				// The upload found it stored and pinned it: it cannot be gone.
				return corruptf("chunk %s, pinned by an upload, is missing from the index", c.ID)
			}
			cs.cur = index.Chunk{Location: loc}
			cs.exists = true
			if loc.Inline() {
				cs.inline = up.inline
			} else {
				tx.ends[loc.Segment] = max(tx.ends[loc.Segment], up.ends[loc.Segment])
			}
		}
		cs.cur.Refs++
	}
	bs.cur = index.Blob{Size: up.size, Refs: 1, Created: tx.now.UnixNano(), Chunks: up.chunks}
	bs.exists, bs.changed = true, true
	return nil
}

// aheadChunks bounds the chunks ahead reads: the chunks are read only if
// the content is new, and each is one more lock held from the start.
const aheadChunks = 4

// ahead is what a Put of up at k reads: the record, the content's blob
// and, if it is new, its chunks (of a small upload, whose round trips
// are most of its cost).
func (up *Upload) ahead(k Key) ahead {
	a := ahead{records: []Key{k}, blobs: []blob.ID{up.id}}
	if len(up.chunks) <= aheadChunks {
		for _, c := range up.chunks {
			a.chunks = append(a.chunks, c.ID)
		}
	}
	return a
}

// addUnreferenced stores an upload's content with no reference (Put).
func (tx *Tx) addUnreferenced(up *Upload) error {
	if err := tx.addUpload(up); err != nil {
		return err
	}
	bs := tx.blobs[up.id]
	bs.cur.Refs--
	return nil
}

// dropBlob removes one reference to a blob. The last one releases it: its
// chunks lose a reference each, and chunks left without one become dead
// bytes. A blob pinned by an open reader is kept, unreferenced, for GC.
func (tx *Tx) dropBlob(id blob.ID) error {
	bs, err := tx.blob(id)
	if err != nil {
		return err
	}
	if !bs.exists || bs.cur.Refs == 0 {
		return corruptf("record refers to blob %s, which has no references left", id)
	}
	bs.cur.Refs--
	bs.changed = true
	if bs.cur.Refs > 0 || tx.e.shared || tx.e.locks.s[bs.stripe].pinned(pinKey{index.ZeroBlob, id}) {
		// Pinned, here or maybe on another node (whose pins this one
		// cannot see): GC releases it after the grace period.
		return nil
	}
	for _, c := range bs.cur.Chunks {
		cs, err := tx.chunk(c.ID)
		if err != nil {
			return err
		}
		if !cs.exists || cs.cur.Refs == 0 {
			return corruptf("blob %s lists chunk %s, which has no references left", id, c.ID)
		}
		cs.cur.Refs--
	}
	bs.exists = false
	return nil
}

// hasOutboard reports whether a chunk at l may have an outboard: a raw
// one in a segment, of MinOutboard bytes or more.
func hasOutboard(l index.Location) bool {
	return !l.Inline() && l.Compression == uint8(segment.Raw) && l.Raw >= MinOutboard
}

// recordSize is a chunk record's size in its segment, or the size of its
// payload kept in the index.
func recordSize(l index.Location) int64 {
	if l.Inline() {
		return int64(l.Stored)
	}
	return segment.RecordHeaderSize + int64(l.Stored)
}

// commit writes the transaction's effects in one synced batch.
func (tx *Tx) commit() error {
	b := tx.e.idx.NewBatch()
	defer b.Close()
	now := tx.now.UnixNano()
	var tot index.Totals
	for k, rs := range tx.records {
		if !rs.changed {
			continue
		}
		if rs.existed {
			tot.Records--
			tot.RecordBytes -= rs.orig.Size
			if rs.orig.Expires != 0 && (!rs.exists || rs.cur.Expires != rs.orig.Expires) {
				b.DeleteExpiry(rs.orig.Expires, k)
			}
		}
		if rs.exists {
			tot.Records++
			tot.RecordBytes += rs.cur.Size
			b.SetRecord(k, rs.cur)
			if rs.cur.Expires != 0 && (!rs.existed || rs.cur.Expires != rs.orig.Expires) {
				b.SetExpiry(rs.cur.Expires, k)
			}
		} else if rs.existed {
			b.DeleteRecord(k)
		}
	}
	for id, bs := range tx.blobs {
		switch {
		case !bs.changed:
		case bs.exists:
			b.SetBlob(id, bs.cur)
			if !bs.existed {
				tot.Blobs++
				tot.BlobBytes += bs.cur.Size
			}
			if bs.cur.Refs == 0 && !bs.wasZero {
				b.SetZero(index.ZeroBlob, id, now)
			} else if bs.cur.Refs > 0 && bs.wasZero {
				b.DeleteZero(index.ZeroBlob, id)
			}
		case bs.existed:
			b.DeleteBlob(id)
			tot.Blobs--
			tot.BlobBytes -= bs.orig.Size
			if bs.wasZero {
				b.DeleteZero(index.ZeroBlob, id)
			}
		}
	}
	for id, cs := range tx.chunks {
		if a, l := cs.again, cs.cur.Location; a != nil && cs.exists && l.Inline() &&
			a.Compression == l.Compression && a.Raw == l.Raw && len(a.Payload) == int(l.Stored) {
			b.SetInline(id, *a)
		}
		if !cs.exists || cs.cur == cs.orig && cs.existed && !cs.release {
			continue
		}
		l := cs.cur.Location
		switch {
		case cs.cur.Refs > 0:
			b.SetChunk(id, cs.cur)
			if cs.moved {
				o := cs.orig.Location
				b.AddLive(o.Segment, -recordSize(o), -1)
				b.AddLive(l.Segment, recordSize(l), 1)
			}
			if !cs.existed {
				if l.Inline() {
					b.SetInline(id, *cs.inline)
				} else {
					b.AddLive(l.Segment, recordSize(l), 1)
				}
				tot.Chunks++
				tot.ChunkBytes += int64(l.Raw)
				tot.ChunkDisk += recordSize(l)
			} else if cs.wasZero {
				b.DeleteZero(index.ZeroChunk, id)
			}
		case !cs.existed:
			// Created and released in one transaction: never written.
		case tx.e.locks.s[cs.stripe].pinned(pinKey{index.ZeroChunk, id}) || tx.e.shared && !cs.release:
			// An upload will reference it: keep it, for GC to reclaim if
			// that upload never commits.
			b.SetChunk(id, cs.cur)
			if !cs.wasZero {
				b.SetZero(index.ZeroChunk, id, now)
			}
		default:
			b.DeleteChunk(id)
			if l.Inline() {
				b.DeleteInline(id)
			} else {
				b.AddLive(l.Segment, -recordSize(l), -1)
			}
			if hasOutboard(l) {
				b.DeleteOutboard(id)
			}
			tot.Chunks--
			tot.ChunkBytes -= int64(l.Raw)
			tot.ChunkDisk -= recordSize(l)
			if cs.wasZero {
				b.DeleteZero(index.ZeroChunk, id)
			}
		}
	}
	for seg, end := range tx.ends {
		b.RaiseEnd(seg, end)
	}
	b.AddTotals(tot)
	if b.Empty() {
		return nil
	}
	if tx.e.shared {
		for seg := range tx.ends {
			if retired, err := tx.e.idx.IsRetired(seg); err != nil {
				return err
			} else if retired {
				return fmt.Errorf("%w: segment %s, which this upload wrote into, was compacted away by another node before it committed (was this node cut off from the database?): upload again", ErrUnavailable, segment.FileName(seg))
			}
		}
		tx.expectations(b)
	}
	if tx.e.logged() {
		if err := tx.e.logCommit(b); err != nil {
			return err
		}
	}
	if err := b.Commit(); err != nil {
		return tx.e.fail(err)
	}
	return nil
}

// expectations makes b conditional on every entry the transaction read
// being as it read it, and on the segments its new chunks are in not
// having been compacted away: other nodes commit to the same index, and
// this node's stripe locks do not hold them off (see index.ErrConflict).
func (tx *Tx) expectations(b *index.Batch) {
	for id, cs := range tx.chunks {
		b.ExpectChunk(id, cs.orig, cs.existed)
	}
	for id, bs := range tx.blobs {
		b.ExpectBlob(id, bs.orig, bs.existed)
	}
	for k, rs := range tx.records {
		b.ExpectRecord(k, rs.orig, rs.existed)
	}
	for seg := range tx.ends {
		b.ExpectNotRetired(seg)
	}
}
