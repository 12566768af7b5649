package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The index in PostgreSQL: one table of ordered bytea keys (bytea sorts
// bytewise, as Pebble does), each batch one transaction. A merge (the
// counters of merge.go) reads the row under a lock and writes the merged
// value in the same transaction; a transaction that deadlocks or fails
// to serialize is retried whole, which callers never see.

const (
	pgTable = "cairn_index"
	// pgPage is how many entries a scan fetches a query.
	pgPage = 512
	// pgTimeout bounds each statement, so that a server that stops
	// answering fails requests instead of holding them.
	pgTimeout = 30 * time.Second
	// pgRetries bounds the retries of a transaction that deadlocked or
	// failed to serialize.
	pgRetries = 20
	// pgReprMagic begins a batch repr of this store (Pebble's begin with
	// a sequence number).
	pgReprMagic = 0xC1
)

// OpenPostgres opens, or creates, the index in the PostgreSQL database
// dsn names (postgres://user:password@host:port/db?…, or the key=value
// form; pgx's environment variables apply).
func OpenPostgres(ctx context.Context, dsn string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("index: postgres: %w", err)
	}
	if cfg.MaxConns < 32 {
		cfg.MaxConns = 32 // a scan holds a connection while its caller reads others
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("index: postgres: %w", err)
	}
	st := &pgStore{pool: pool}
	st.pgReader = pgReader{live: st}
	cctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	if err := createTable(cctx, pool, "CREATE TABLE IF NOT EXISTS "+pgTable+" (k bytea PRIMARY KEY, v bytea NOT NULL)"); err != nil {
		pool.Close()
		return nil, fmt.Errorf("index: postgres: create the table: %w", err)
	}
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS cairn_leases (name text PRIMARY KEY, holder text NOT NULL, until timestamptz NOT NULL)",
		"CREATE TABLE IF NOT EXISTS cairn_counters (name text PRIMARY KEY, v bigint NOT NULL)",
		"CREATE TABLE IF NOT EXISTS cairn_nodes (node text PRIMARY KEY, horizon bigint NOT NULL, until timestamptz NOT NULL)",
		"CREATE TABLE IF NOT EXISTS cairn_rates (k bytea PRIMARY KEY, tokens float8 NOT NULL, at float8 NOT NULL)",
	} {
		if err := createTable(cctx, pool, q); err != nil {
			pool.Close()
			return nil, fmt.Errorf("index: postgres: create the tables: %w", err)
		}
	}
	d := &DB{View: View{r: st}, st: st}
	if err := d.checkFormat(); err != nil {
		pool.Close()
		return nil, err
	}
	return d, nil
}

type pgStore struct {
	pgReader
	pool *pgxpool.Pool
	// lockMu guards lockConn and lockPID: the connection holding the
	// store's advisory lock (LockStore) and its server process.
	lockMu   sync.Mutex
	lockConn *pgxpool.Conn
	lockPID  int32
	// pingMu guards the last Ping's answer and when it came.
	pingMu  sync.Mutex
	pingErr error
	pingAt  time.Time
}

// pgReader reads the live table (live set) or a snapshot's transaction.
type pgReader struct {
	live *pgStore
	// A snapshot: its transaction, used by one query at a time.
	mu *sync.Mutex
	tx pgx.Tx
}

// ErrUnavailable: a service the store depends on did not answer, or
// failed the statement: the index's database here (and, through the
// engine's ErrUnavailable, which is this one, the object store): nothing
// is known to be wrong with the store, and the same call may succeed once
// the service is back.
var ErrUnavailable = errors.New("unavailable: the index's database or the object store did not answer")

// connErr reports whether err is a connection's failure, not the
// statement's: a connection PostgreSQL ended (a restart: class 57P), one
// broken (class 08), or closed under the pool. A statement that failed
// so before its transaction committed may be sent again on another.
func connErr(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "57P") || strings.HasPrefix(pe.Code, "08")
	}
	return pgconn.SafeToRetry(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

func pgErr(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, what, err)
}

func (r pgReader) get(key []byte) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	var v []byte
	var err error
	const q = "SELECT v FROM " + pgTable + " WHERE k = $1"
	if r.tx != nil {
		r.mu.Lock()
		err = r.tx.QueryRow(ctx, q, key).Scan(&v)
		r.mu.Unlock()
	} else {
		// A connection a restart of PostgreSQL ended fails once, then
		// leaves the pool: one more try takes another.
		for range 3 {
			if err = r.live.pool.QueryRow(ctx, q, key).Scan(&v); !connErr(err) {
				break
			}
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, pgErr(fmt.Sprintf("get %q", key), err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, true, nil
}

// page returns up to pgPage entries from (after, or from start), below upper.
func page(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, from []byte, inclusive bool, upper []byte) ([]kv, error) {
	cmp := ">"
	if inclusive {
		cmp = ">="
	}
	sql := "SELECT k, v FROM " + pgTable + " WHERE k " + cmp + " $1"
	args := []any{from}
	if upper != nil {
		sql += " AND k < $2"
		args = append(args, upper)
	}
	sql += fmt.Sprintf(" ORDER BY k LIMIT %d", pgPage)
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	var out []kv
	for rows.Next() {
		var e kv
		if err := rows.Scan(&e.key, &e.value); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, e)
	}
	rows.Close()
	return out, rows.Err()
}

func (r pgReader) scan(lower, upper, start []byte) iter.Seq2[kv, error] {
	return func(yield func(kv, error) bool) {
		from := lower
		if start != nil && bytes.Compare(start, lower) > 0 {
			from = start
		}
		if from == nil {
			from = []byte{}
		}
		// The live table is read in a transaction of its own, so that
		// the scan sees one moment, as a Pebble iterator does.
		tx, mu := r.tx, r.mu
		if tx == nil {
			ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
			var t pgx.Tx
			var err error
			for range 3 {
				if t, err = r.live.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}); err == nil {
					// BEGIN may not reach the server before the first
					// statement: see that the connection is alive.
					if _, err = t.Exec(ctx, "SELECT 1"); err != nil {
						t.Rollback(context.Background())
					}
				}
				if !connErr(err) {
					break
				}
			}
			cancel()
			if err != nil {
				yield(kv{}, pgErr("scan", err))
				return
			}
			defer t.Rollback(context.Background())
			tx, mu = t, &sync.Mutex{}
		}
		inclusive := true
		for {
			ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
			mu.Lock()
			entries, err := page(ctx, tx, from, inclusive, upper)
			mu.Unlock()
			cancel()
			if err != nil {
				yield(kv{}, pgErr("scan", err))
				return
			}
			for _, e := range entries {
				if !yield(e, nil) {
					return
				}
			}
			if len(entries) < pgPage {
				return
			}
			from, inclusive = entries[len(entries)-1].key, false
		}
	}
}

func (p *pgStore) newBatch() batch { return &pgBatch{st: p} }

func (p *pgStore) snapshot() (reader, func() error) {
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err == nil {
		// The snapshot is taken by the first statement, not by BEGIN.
		_, err = tx.Exec(ctx, "SELECT 1")
	}
	if err != nil {
		return failedReader{pgErr("snapshot", err)}, func() error { return nil }
	}
	r := pgReader{live: p, mu: &sync.Mutex{}, tx: tx}
	return r, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		return tx.Rollback(context.Background())
	}
}

// failedReader answers every read with the error that kept a snapshot
// from being taken.
type failedReader struct{ err error }

func (f failedReader) get([]byte) ([]byte, bool, error) { return nil, false, f.err }
func (f failedReader) scan(_, _, _ []byte) iter.Seq2[kv, error] {
	return func(yield func(kv, error) bool) { yield(kv{}, f.err) }
}

func (p *pgStore) apply(repr []byte) error {
	b := &pgBatch{st: p}
	if err := b.decode(repr); err != nil {
		return fmt.Errorf("index: apply: %w", err)
	}
	return b.commit(false)
}

// flush makes the commits made unsynced durable: a synchronous commit
// waits for the log up to its own record, and so past theirs.
func (p *pgStore) flush() error {
	b := &pgBatch{st: p}
	b.set(metaKey("x.flush"), nil)
	return b.commit(true)
}

func (p *pgStore) checkpoint(string) error {
	return fmt.Errorf("%w: a checkpoint of an index in PostgreSQL (back it up with pg_dump or pg_basebackup)", ErrUnsupported)
}

func (p *pgStore) close() error {
	p.lockMu.Lock()
	defer p.lockMu.Unlock()
	if p.lockConn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
		p.lockConn.Exec(ctx, "SELECT pg_advisory_unlock($1)", pgLockKey)
		cancel()
		p.lockConn.Release()
	}
	p.pool.Close()
	return nil
}

// The kinds of a pgBatch's updates, as its repr writes them.
const (
	pgSet byte = iota + 1
	pgDel
	pgMerge
	pgDelRange
)

type pgOp struct {
	kind byte
	k, v []byte
}

type pgBatch struct {
	st      *pgStore
	ops     []pgOp
	expects []expectation
}

func (b *pgBatch) expect(x expectation) { b.expects = append(b.expects, x) }

func (b *pgBatch) set(k, v []byte) {
	b.ops = append(b.ops, pgOp{pgSet, bytes.Clone(k), bytes.Clone(v)})
}
func (b *pgBatch) del(k []byte) { b.ops = append(b.ops, pgOp{pgDel, bytes.Clone(k), nil}) }
func (b *pgBatch) merge(k, v []byte) {
	b.ops = append(b.ops, pgOp{pgMerge, bytes.Clone(k), bytes.Clone(v)})
}
func (b *pgBatch) deleteRange(start, end []byte) {
	b.ops = append(b.ops, pgOp{pgDelRange, bytes.Clone(start), bytes.Clone(end)})
}
func (b *pgBatch) empty() bool { return len(b.ops) == 0 }
func (b *pgBatch) close()      { b.ops, b.expects = nil, nil }

func (b *pgBatch) repr() []byte {
	out := []byte{pgReprMagic}
	for _, op := range b.ops {
		out = append(out, op.kind)
		out = binary.AppendUvarint(out, uint64(len(op.k)))
		out = append(out, op.k...)
		out = binary.AppendUvarint(out, uint64(len(op.v)))
		out = append(out, op.v...)
	}
	return out
}

func (b *pgBatch) decode(repr []byte) error {
	if len(repr) == 0 || repr[0] != pgReprMagic {
		return corruptf("not a batch of an index in PostgreSQL")
	}
	rest := repr[1:]
	field := func() ([]byte, bool) {
		n, w := binary.Uvarint(rest)
		if w <= 0 || uint64(len(rest)-w) < n {
			return nil, false
		}
		f := rest[w : w+int(n)]
		rest = rest[w+int(n):]
		return bytes.Clone(f), true
	}
	for len(rest) > 0 {
		kind := rest[0]
		rest = rest[1:]
		k, ok1 := field()
		v, ok2 := field()
		if !ok1 || !ok2 || kind < pgSet || kind > pgDelRange {
			return corruptf("bad batch repr")
		}
		b.ops = append(b.ops, pgOp{kind, k, v})
	}
	return nil
}

// pgFinal is what a batch leaves of one key: deleted, set to a value, or
// merged with operands whose base the table holds.
type pgFinal struct {
	kind byte // pgSet, pgDel or pgMerge
	v    []byte
}

// mergeValues merges operand b into a (merge.go's operands).
func mergeValues(a, b []byte) ([]byte, error) {
	m := &valueMerger{}
	if err := m.add(a); err != nil {
		return nil, err
	}
	if err := m.add(b); err != nil {
		return nil, err
	}
	v, _, err := m.Finish(true)
	return v, err
}

func (b *pgBatch) commit(sync bool) error {
	defer b.close()
	if len(b.ops) == 0 && len(b.expects) == 0 {
		return nil
	}
	var ranges []pgOp
	final := map[string]*pgFinal{}
	for _, op := range b.ops {
		k := string(op.k)
		f := final[k]
		switch op.kind {
		case pgDelRange:
			// Only ever alone in its batch (ClearApplied): applied first.
			ranges = append(ranges, op)
		case pgSet:
			final[k] = &pgFinal{pgSet, op.v}
		case pgDel:
			final[k] = &pgFinal{kind: pgDel}
		case pgMerge:
			switch {
			case f == nil:
				final[k] = &pgFinal{pgMerge, op.v}
			case f.kind == pgDel:
				final[k] = &pgFinal{pgSet, op.v}
			default:
				v, err := mergeValues(f.v, op.v)
				if err != nil {
					return fmt.Errorf("index: commit: %w", err)
				}
				f.v = v
			}
		}
	}
	var dels, setK, setV, mergeK [][]byte
	keys := make([]string, 0, len(final))
	for k := range final {
		keys = append(keys, k)
	}
	slices.Sort(keys) // one order for every transaction's locks
	for _, k := range keys {
		f := final[k]
		switch f.kind {
		case pgDel:
			dels = append(dels, []byte(k))
		case pgSet:
			setK, setV = append(setK, []byte(k)), append(setV, nonNil(f.v))
		case pgMerge:
			mergeK = append(mergeK, []byte(k))
		}
	}
	var err error
	for range pgRetries {
		var committing bool
		committing, err = b.run(sync, ranges, dels, setK, setV, mergeK, final)
		if err != nil && !committing && connErr(err) {
			continue // nothing was committed: on another connection
		}
		if errors.Is(err, ErrConflict) {
			return err
		}
		if errors.Is(err, errNoLock) {
			// PostgreSQL restarted since the lock was taken: take it
			// again, unless another process has meanwhile.
			if err = b.st.relock(); err != nil {
				break
			}
			continue
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || (pe.Code != "40001" && pe.Code != "40P01") {
			break
		}
	}
	if errors.Is(err, ErrLockLost) {
		return err
	}
	if err != nil {
		return pgErr("commit", err)
	}
	return nil
}

func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

// run is one attempt at a batch's transaction, in two round trips: the
// first begins it, takes the commit lock (with expectations), checks the
// store's lock and the expectations, and inserts or locks the merged
// rows; the second writes and commits. Both are pipelined (pgx.Batch):
// what the first finds decides the second, so the transaction is the
// one statements sent one by one would make, without the round trips
// each would cost (about ten an upload's commit, the commit lock held
// through all of them). committing says whether COMMIT was sent and its
// outcome is unknown: a failure of the second round trip other than a
// statement's own error before COMMIT.
func (b *pgBatch) run(sync bool, ranges []pgOp, dels, setK, setV, mergeK [][]byte, final map[string]*pgFinal) (committing bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	conn, err := b.st.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer func() {
		// A failed attempt's transaction is rolled back; a connection
		// that cannot say so is closed by Release (pgxpool destroys one
		// left in a transaction).
		if pc := conn.Conn().PgConn(); !pc.IsClosed() && pc.TxStatus() != 'I' {
			rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn.Exec(rctx, "ROLLBACK")
			rcancel()
		}
		conn.Release()
	}()
	b.st.lockMu.Lock()
	pid := b.st.lockPID
	b.st.lockMu.Unlock()

	var first pgx.Batch
	first.Queue("BEGIN")
	// Commits with expectations take turns, so that each checks them
	// against every earlier one (shared.go). The others write no entry
	// a transaction computes from (segment seals, outboards, counters by
	// merge) and go on unordered, as they did with one process.
	if len(b.expects) > 0 {
		first.Queue("SELECT pg_advisory_xact_lock($1)", pgCommitLockKey)
	}
	// That this process still holds the store's lock, if it took one.
	if pid != 0 {
		first.Queue(lockHeld, uint32(pgLockKey>>32), uint32(pgLockKey&0xffffffff), pid)
	}
	if len(b.expects) > 0 {
		keys := make([][]byte, len(b.expects))
		for i, x := range b.expects {
			keys[i] = x.key
		}
		first.Queue("SELECT k, v FROM "+pgTable+" WHERE k = ANY($1)", keys)
	}
	if len(mergeK) > 0 {
		// A merged key not there yet takes the operand as its value; the
		// others are read locked, merged here and written back.
		ops := make([][]byte, len(mergeK))
		for i, k := range mergeK {
			ops[i] = final[string(k)].v
		}
		first.Queue("INSERT INTO "+pgTable+" (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT (k) DO NOTHING RETURNING k", mergeK, ops)
		first.Queue("SELECT k, v FROM "+pgTable+" WHERE k = ANY($1) ORDER BY k FOR UPDATE", mergeK)
	}
	var held bool
	var found, inserted, locked map[string][]byte
	err = func() error {
		br := conn.SendBatch(ctx, &first)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		if len(b.expects) > 0 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		if pid != 0 {
			if err := br.QueryRow().Scan(&held); err != nil {
				return err
			}
		}
		var err error
		if len(b.expects) > 0 {
			if found, err = scanKV(br.Query()); err != nil {
				return err
			}
		}
		if len(mergeK) > 0 {
			if inserted, err = scanKV(br.Query()); err != nil {
				return err
			}
			if locked, err = scanKV(br.Query()); err != nil {
				return err
			}
		}
		return br.Close()
	}()
	if err != nil {
		return false, err
	}
	if pid != 0 && !held {
		return false, errNoLock
	}
	for _, x := range b.expects {
		v, ok := found[string(x.key)]
		if !x.holds(v, ok) {
			return false, fmt.Errorf("%w: %q", ErrConflict, x.key)
		}
	}
	var upK, upV [][]byte
	for _, k := range mergeK {
		if _, ok := inserted[string(k)]; ok {
			continue
		}
		v, ok := locked[string(k)]
		if !ok {
			return false, &pgconn.PgError{Code: "40001", Message: "a merged row was deleted meanwhile"}
		}
		merged, err := mergeValues(v, final[string(k)].v)
		if err != nil {
			return false, err
		}
		upK, upV = append(upK, k), append(upV, merged)
	}

	var second pgx.Batch
	if !sync {
		second.Queue("SET LOCAL synchronous_commit TO OFF")
	}
	for _, r := range ranges {
		second.Queue("DELETE FROM "+pgTable+" WHERE k >= $1 AND k < $2", r.k, r.v)
	}
	if len(dels) > 0 {
		second.Queue("DELETE FROM "+pgTable+" WHERE k = ANY($1)", dels)
	}
	if len(setK) > 0 {
		second.Queue("INSERT INTO "+pgTable+" (k, v) SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v", setK, setV)
	}
	if len(upK) > 0 {
		second.Queue("UPDATE "+pgTable+" AS t SET v = u.v FROM unnest($1::bytea[], $2::bytea[]) AS u(k, v) WHERE t.k = u.k", upK, upV)
	}
	writes := second.Len()
	second.Queue("COMMIT")
	br := conn.SendBatch(ctx, &second)
	defer br.Close()
	for range writes {
		if _, err := br.Exec(); err != nil {
			// A statement's own error: the server skipped the rest,
			// COMMIT too. Any other: COMMIT may have run.
			var pe *pgconn.PgError
			return !errors.As(err, &pe), err
		}
	}
	if _, err := br.Exec(); err != nil {
		return true, err
	}
	return true, br.Close()
}

// scanKV reads rows of (k, v), or of (k), by key; it takes a query's
// results as it returns them.
func scanKV(rows pgx.Rows, err error) (map[string][]byte, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var k, v []byte
		dest := []any{&k, &v}
		if err := rows.Scan(dest[:len(rows.FieldDescriptions())]...); err != nil {
			return nil, err
		}
		out[string(k)] = nonNil(v)
	}
	return out, rows.Err()
}

// pgCommitLockKey is the transaction-level advisory lock by which
// commits take turns.
const pgCommitLockKey = 0x636169726e01

// pgLockKey is the advisory lock of the node that has the store open.
const pgLockKey = 0x636169726e // "cairn"

// LockStore takes, for as long as the index is open, the lock that says
// one process has the store open (a PostgreSQL advisory lock, held by a
// connection of its own): false if another holds it. Only an index in
// PostgreSQL has one (Pebble's lock is its folder's); for it, true.
//
// Every commit then checks, in its transaction, that the lock is still
// this process's: a restart of PostgreSQL ends the session that held it,
// and another process could take it meanwhile. A commit that finds it
// gone takes it again, or fails with ErrLockLost if another process has.
func (d *DB) LockStore() (bool, error) {
	p, ok := d.st.(*pgStore)
	if !ok {
		return true, nil
	}
	p.lockMu.Lock()
	defer p.lockMu.Unlock()
	return p.takeLock()
}

// ErrLockLost: the store's lock, lost when PostgreSQL restarted, was
// taken by another process: this one must stop writing.
var ErrLockLost = errors.New("index: another process took the store's lock")

// takeLock takes the advisory lock on a connection of its own. Called
// with lockMu.
func (p *pgStore) takeLock() (bool, error) {
	if p.lockConn != nil {
		p.lockConn.Release()
		p.lockConn, p.lockPID = nil, 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	var conn *pgxpool.Conn
	var got bool
	var pid int32
	var err error
	for range 3 { // past connections a restart of PostgreSQL ended
		if conn, err = p.pool.Acquire(ctx); err != nil {
			return false, pgErr("lock", err)
		}
		err = conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1), pg_backend_pid()", pgLockKey).Scan(&got, &pid)
		if err == nil {
			break
		}
		conn.Release()
		if !connErr(err) {
			break
		}
	}
	if err != nil {
		return false, pgErr("lock", err)
	}
	if !got {
		conn.Release()
		return false, nil
	}
	p.lockConn, p.lockPID = conn, pid
	return true, nil
}

// lockHeld is the statement by which a commit's transaction checks that
// the session with pid holds the store's lock (an advisory lock on a
// bigint: classid its high 32 bits, objid its low, objsubid 1).
const lockHeld = "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 1 AND pid = $3 AND granted)"

// errNoLock is an attempt's finding that this process no longer holds
// the store's lock.
var errNoLock = errors.New("index: the store's lock is not held")

// relock takes the lock again after a commit found it gone.
func (p *pgStore) relock() error {
	p.lockMu.Lock()
	defer p.lockMu.Unlock()
	got, err := p.takeLock()
	if err != nil {
		return err
	}
	if !got {
		return ErrLockLost
	}
	return nil
}

// createTable runs a CREATE TABLE IF NOT EXISTS, once more if it lost a
// race with another node's (two at once can both find no table, and one
// then fails on the catalog's unique index).
func createTable(ctx context.Context, pool *pgxpool.Pool, q string) error {
	_, err := pool.Exec(ctx, q)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "42P07") {
		_, err = pool.Exec(ctx, q)
	}
	return err
}
