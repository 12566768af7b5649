package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairnstore/cairn/internal/blob"
)

// What several processes sharing one index (several nodes on one
// PostgreSQL database) need beyond one process's: conditional commits,
// leases, and IDs handed out once.
//
// One process serialises its own read-modify-write updates with locks in
// memory (the engine's stripes). Across processes a batch carries
// expectations instead: the values its updates were computed from. A
// batch in PostgreSQL takes the store's commit lock (a transaction-level
// advisory lock, so commits take turns and each sees every earlier one),
// checks its expectations, and fails with ErrConflict if any entry
// changed since it was read; the caller reads again and redoes the work.
// In Pebble (one process, whose locks already guarantee them) the
// expectations are not checked.

// ErrConflict: a batch's expectations did not hold at commit (another
// process changed an entry it was computed from); nothing was written.
var ErrConflict = errors.New("index: an entry changed since it was read")

// expectation is an entry's value as a batch's updates were computed
// from it: want is its canonical encoding (nil: absent), canon gives the
// canonical encoding of the value found.
type expectation struct {
	key   []byte
	want  []byte
	canon func([]byte) ([]byte, error)
	// absent, if not nil, is the canonical value an absent entry counts
	// as (a counter's zero).
	absent []byte
}

// holds reports whether the value found (ok: present) is the one
// expected.
func (x expectation) holds(v []byte, ok bool) bool {
	if !ok && x.absent != nil {
		return bytes.Equal(x.absent, x.want)
	}
	if !ok || x.want == nil {
		return ok == (x.want != nil)
	}
	got, err := x.canon(v)
	return err == nil && bytes.Equal(got, x.want)
}

func (b *Batch) expect(x expectation) { b.b.expect(x) }

func canonWith[T any](dec func([]byte) (T, error), enc func(T) []byte) func([]byte) ([]byte, error) {
	return func(v []byte) ([]byte, error) {
		t, err := dec(v)
		if err != nil {
			return nil, err
		}
		return enc(t), nil
	}
}

var (
	canonChunk  = canonWith(DecodeChunk, EncodeChunk)
	canonBlob   = canonWith(DecodeBlob, EncodeBlob)
	canonRecord = canonWith(DecodeRecord, EncodeRecord)
	canonBE64   = canonWith(decodeBE64, encodeBE64)
	canonLive   = canonWith(func(v []byte) ([]int64, error) { return decodeSum(v, 2) }, func(l []int64) []byte { return sumOperand(l...) })
)

// ExpectChunk makes the commit conditional on chunk id's entry being c
// (ok), or absent (!ok), as it was read.
func (b *Batch) ExpectChunk(id blob.ID, c Chunk, ok bool) {
	x := expectation{key: ChunkKey(id), canon: canonChunk}
	if ok {
		x.want = EncodeChunk(c)
	}
	b.expect(x)
}

// ExpectBlob makes the commit conditional on blob id's entry.
func (b *Batch) ExpectBlob(id blob.ID, v Blob, ok bool) {
	x := expectation{key: BlobKey(id), canon: canonBlob}
	if ok {
		x.want = EncodeBlob(v)
	}
	b.expect(x)
}

// ExpectRecord makes the commit conditional on the record at k.
func (b *Batch) ExpectRecord(k RecordKey, r Record, ok bool) {
	x := expectation{key: EncodeRecordKey(k), canon: canonRecord}
	if ok {
		x.want = EncodeRecord(r)
	}
	b.expect(x)
}

// ExpectZero makes the commit conditional on id's zero-reference entry
// (since when), or its absence.
func (b *Batch) ExpectZero(kind ZeroKind, id blob.ID, since int64, ok bool) {
	x := expectation{key: zeroKey(kind, id), canon: canonBE64}
	if ok {
		x.want = encodeBE64(uint64(since))
	}
	b.expect(x)
}

// ExpectNotRetired makes the commit conditional on segment id not being
// retired (compacted away, its object to be deleted): an upload that
// appended chunks to it must not index them there.
func (b *Batch) ExpectNotRetired(id uint64) {
	b.expect(expectation{key: retiredKey(id), canon: canonBE64})
}

// ExpectLive makes the commit conditional on segment id's live counters
// being what they were read as: compaction retires a segment only if no
// commit added a chunk to it meanwhile.
func (b *Batch) ExpectLive(s Segment) {
	b.expect(expectation{
		key:    segmentKey(s.ID, segFieldLive),
		want:   sumOperand(s.LiveBytes, s.LiveChunks),
		canon:  canonLive,
		absent: sumOperand(0, 0),
	})
}

// retiredKey is the meta entry of a segment compacted away, whose object
// is deleted a grace period later (readers on other nodes may still be
// reading it). It stays, so that an upload that wrote into the segment
// and commits later, however late, is refused (ExpectNotRetired).
func retiredKey(id uint64) []byte {
	return metaKey("x.retired/" + fmt.Sprintf("%016x", id))
}

// SetRetired records that segment id was compacted away at the given
// time.
func (b *Batch) SetRetired(id uint64, at int64) { b.set(retiredKey(id), encodeBE64(uint64(at))) }

// RetiredSegment is a segment compacted away: since when, and whether its
// object is deleted yet.
type RetiredSegment struct {
	ID      uint64
	At      int64
	Deleted bool
}

// SetRetiredDeleted records that a retired segment's object is deleted
// (the entry stays; see retiredKey).
func (b *Batch) SetRetiredDeleted(id uint64) { b.set(retiredKey(id), encodeBE64(0)) }

// Retired lists the segments compacted away.
func (v View) Retired() iter.Seq2[RetiredSegment, error] {
	prefix := metaKey("x.retired/")
	return func(yield func(RetiredSegment, error) bool) {
		for e, err := range v.scan(prefix, nil) {
			if err != nil {
				yield(RetiredSegment{}, err)
				return
			}
			id, perr := strconv.ParseUint(string(e.key[len(prefix):]), 16, 64)
			at, derr := decodeBE64(e.value)
			if perr != nil || derr != nil {
				yield(RetiredSegment{}, corruptf("retired segment entry %q", e.key))
				return
			}
			if !yield(RetiredSegment{ID: id, At: int64(at), Deleted: at == 0}, nil) {
				return
			}
		}
	}
}

// IsRetired reports whether segment id was compacted away.
func (v View) IsRetired(id uint64) (bool, error) {
	_, ok, err := v.get(retiredKey(id))
	return ok, err
}

// SetSealedAt records when a segment was sealed (several nodes: a
// segment is compacted only once its writer has had a grace period to
// commit what it appended).
func (b *Batch) SetSealedAt(segment uint64, at int64) {
	b.set(segmentKey(segment, segFieldSealedAt), encodeBE64(uint64(at)))
}

// Shared reports whether the index is one several processes may share
// (PostgreSQL).
func (d *DB) Shared() bool {
	_, ok := d.st.(*pgStore)
	return ok
}

// Lease takes, or renews, the lease name for holder for ttl: true while
// holder has it. A lease whose holder stopped renewing it moves to the
// next to ask once ttl has passed (by the database's clock). An index in
// Pebble has one process, which always holds every lease.
func (d *DB) Lease(name, holder string, ttl time.Duration) (bool, error) {
	p, ok := d.st.(*pgStore)
	if !ok {
		return true, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	const q = `INSERT INTO cairn_leases AS l (name, holder, until) VALUES ($1, $2, now() + make_interval(secs => $3))
ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
WHERE l.holder = EXCLUDED.holder OR l.until < now()
RETURNING holder`
	var err error
	for range 3 {
		var got string
		err = p.pool.QueryRow(ctx, q, name, holder, ttl.Seconds()).Scan(&got)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, nil
		}
		if err == nil {
			return true, nil
		}
		if !connErr(err) {
			break
		}
	}
	return false, pgErr("lease "+name, err)
}

// ReleaseLease gives up holder's lease name, so another may take it at
// once.
func (d *DB) ReleaseLease(name, holder string) error {
	p, ok := d.st.(*pgStore)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	if _, err := p.pool.Exec(ctx, "DELETE FROM cairn_leases WHERE name = $1 AND holder = $2", name, holder); err != nil {
		return pgErr("release lease "+name, err)
	}
	return nil
}

// LeaseHolder returns who holds lease name, if anyone does.
func (d *DB) LeaseHolder(name string) (string, bool, error) {
	p, ok := d.st.(*pgStore)
	if !ok {
		return "", false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	var h string
	err := p.pool.QueryRow(ctx, "SELECT holder FROM cairn_leases WHERE name = $1 AND until >= now()", name).Scan(&h)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, pgErr("lease "+name, err)
	}
	return h, true, nil
}

// NextIDs hands out n consecutive IDs of the sequence name, each at
// least floor and never handed out before, to any process: the first is
// returned. Only an index several processes share has sequences
// (ErrUnsupported otherwise).
func (d *DB) NextIDs(name string, floor, n uint64) (uint64, error) {
	p, ok := d.st.(*pgStore)
	if !ok {
		return 0, ErrUnsupported
	}
	if n == 0 || floor == 0 || floor > 1<<62 {
		return 0, fmt.Errorf("index: NextIDs(%d, %d)", floor, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	const q = `INSERT INTO cairn_counters AS c (name, v) VALUES ($1, $2::bigint + $3 - 1)
ON CONFLICT (name) DO UPDATE SET v = GREATEST(c.v + 1, $2::bigint) + $3 - 1
RETURNING v`
	var err error
	for range 3 {
		var last int64
		err = p.pool.QueryRow(ctx, q, name, int64(floor), int64(n)).Scan(&last)
		if err == nil {
			return uint64(last) - n + 1, nil
		}
		if !connErr(err) {
			break
		}
	}
	return 0, pgErr("sequence "+name, err)
}

// RateOp is what Rate does with a token bucket.
type RateOp int

const (
	// RatePeek reports whether a token is left, taking none.
	RatePeek RateOp = iota
	// RateAllow takes a token if one is left.
	RateAllow
	// RateTake takes a token, left or not (the bucket may go below zero,
	// as golang.org/x/time/rate's reservations do).
	RateTake
)

// Rate applies op to the token bucket key (perSecond tokens a second, at
// most burst) at now, in a table every node of the store shares: ok, or
// how long until a token is there. Buckets are timed by the callers'
// clocks, which the nodes keep in step (NTP). Only an index several
// processes share has them (ErrUnsupported otherwise).
func (d *DB) Rate(key string, perSecond, burst float64, now time.Time, op RateOp) (bool, time.Duration, error) {
	p, ok := d.st.(*pgStore)
	if !ok {
		return false, 0, ErrUnsupported
	}
	t := float64(now.UnixNano()) / 1e9
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	var allowed bool
	var wait time.Duration
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO cairn_rates (k, tokens, at) VALUES ($1, $2, $3) ON CONFLICT (k) DO NOTHING", []byte(key), burst, t); err != nil {
			return err
		}
		var tokens, at float64
		if err := tx.QueryRow(ctx, "SELECT tokens, at FROM cairn_rates WHERE k = $1 FOR UPDATE", []byte(key)).Scan(&tokens, &at); err != nil {
			return err
		}
		tokens = min(burst, tokens+max(0, t-at)*perSecond)
		allowed, wait = tokens >= 1, 0
		if !allowed {
			wait = time.Duration((1 - tokens) / perSecond * float64(time.Second))
		}
		if op == RatePeek || op == RateAllow && !allowed {
			return nil
		}
		_, err := tx.Exec(ctx, "UPDATE cairn_rates SET tokens = $2, at = $3 WHERE k = $1", []byte(key), tokens-1, max(t, at))
		return err
	})
	if err != nil {
		return false, 0, pgErr("rate "+key, err)
	}
	return allowed, wait, nil
}

// Mark records that key happened at now (a client address that signed
// in as an identity), where every node sees it; Marked says when.
func (d *DB) Mark(key string, now time.Time) error {
	p, ok := d.st.(*pgStore)
	if !ok {
		return ErrUnsupported
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	if _, err := p.pool.Exec(ctx, "INSERT INTO cairn_rates (k, tokens, at) VALUES ($1, 0, $2) ON CONFLICT (k) DO UPDATE SET at = GREATEST(cairn_rates.at, EXCLUDED.at)", []byte(markPrefix+key), float64(now.UnixNano())/1e9); err != nil {
		return pgErr("mark", err)
	}
	return nil
}

// Marked returns when key was last marked.
func (d *DB) Marked(key string) (time.Time, bool, error) {
	p, ok := d.st.(*pgStore)
	if !ok {
		return time.Time{}, false, ErrUnsupported
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	var at float64
	err := p.pool.QueryRow(ctx, "SELECT at FROM cairn_rates WHERE k = $1", []byte(markPrefix+key)).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, pgErr("marked", err)
	}
	return time.Unix(0, int64(at*1e9)), true, nil
}

// markPrefix keeps marks apart from token buckets in their table.
const markPrefix = "mark:"

// SweepRates deletes the token buckets untouched since buckets, and the
// marks made before marks.
func (d *DB) SweepRates(buckets, marks time.Time) error {
	p, ok := d.st.(*pgStore)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	if _, err := p.pool.Exec(ctx, "DELETE FROM cairn_rates WHERE at < $1 AND substring(k for $4) <> $3 OR at < $2 AND substring(k for $4) = $3",
		float64(buckets.UnixNano())/1e9, float64(marks.UnixNano())/1e9, []byte(markPrefix), len(markPrefix)); err != nil {
		return pgErr("sweep rates", err)
	}
	return nil
}

// Ping reports whether the index's database answers (nil for Pebble),
// asking again when the last answer is over two seconds old: a node
// whose database does not answer is not ready.
func (d *DB) Ping() error {
	p, ok := d.st.(*pgStore)
	if !ok {
		return nil
	}
	p.pingMu.Lock()
	defer p.pingMu.Unlock()
	if time.Since(p.pingAt) > 2*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		p.pingErr = p.pool.Ping(ctx)
		cancel()
		if p.pingErr != nil {
			p.pingErr = pgErr("ping", p.pingErr)
		}
		p.pingAt = time.Now()
	}
	return p.pingErr
}

// Heartbeat publishes node's horizon (Unix nanoseconds: no upload or
// reader of the node's in flight began before it, nor will any begin
// before it later) for ttl, by the database's clock.
func (d *DB) Heartbeat(node string, horizon int64, ttl time.Duration) error {
	p, ok := d.st.(*pgStore)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	const q = `INSERT INTO cairn_nodes AS n (node, horizon, until) VALUES ($1, $2, now() + make_interval(secs => $3))
ON CONFLICT (node) DO UPDATE SET horizon = EXCLUDED.horizon, until = EXCLUDED.until`
	var err error
	for range 3 {
		if _, err = p.pool.Exec(ctx, q, node, horizon, ttl.Seconds()); !connErr(err) {
			break
		}
	}
	if err != nil {
		return pgErr("heartbeat", err)
	}
	return nil
}

// Leave withdraws node's horizon (it has nothing in flight any more).
func (d *DB) Leave(node string) error {
	p, ok := d.st.(*pgStore)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	if _, err := p.pool.Exec(ctx, "DELETE FROM cairn_nodes WHERE node = $1", node); err != nil {
		return pgErr("leave", err)
	}
	return nil
}

// Horizon is the earliest horizon of the nodes whose heartbeat is live:
// no operation of theirs in flight began before it. ok is false if no
// node has one.
func (d *DB) Horizon() (int64, bool, error) {
	p, ok := d.st.(*pgStore)
	if !ok {
		return 0, false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	var h *int64
	if err := p.pool.QueryRow(ctx, "SELECT min(horizon) FROM cairn_nodes WHERE until > now()").Scan(&h); err != nil {
		return 0, false, pgErr("horizon", err)
	}
	if h == nil {
		return 0, false, nil
	}
	return *h, true, nil
}

// NodeInfo is a node whose heartbeat is live.
type NodeInfo struct {
	Name string
	// Horizon: see Heartbeat. Until: when the heartbeat lapses unless
	// renewed (the database's clock).
	Horizon int64
	Until   time.Time
}

// Nodes lists the nodes whose heartbeat is live, by name.
func (d *DB) Nodes() ([]NodeInfo, error) {
	p, ok := d.st.(*pgStore)
	if !ok {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	rows, err := p.pool.Query(ctx, "SELECT node, horizon, until FROM cairn_nodes WHERE until > now() ORDER BY node")
	if err != nil {
		return nil, pgErr("nodes", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (NodeInfo, error) {
		var n NodeInfo
		err := r.Scan(&n.Name, &n.Horizon, &n.Until)
		return n, err
	})
	if err != nil {
		return nil, pgErr("nodes", err)
	}
	return out, nil
}

// LeaseInfo is a lease held.
type LeaseInfo struct {
	Name, Holder string
	Until        time.Time
}

// Leases lists the leases held now, by name.
func (d *DB) Leases() ([]LeaseInfo, error) {
	p, ok := d.st.(*pgStore)
	if !ok {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	rows, err := p.pool.Query(ctx, "SELECT name, holder, until FROM cairn_leases WHERE until >= now() ORDER BY name")
	if err != nil {
		return nil, pgErr("leases", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (LeaseInfo, error) {
		var l LeaseInfo
		err := r.Scan(&l.Name, &l.Holder, &l.Until)
		return l, err
	})
	if err != nil {
		return nil, pgErr("leases", err)
	}
	return out, nil
}
