package index

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/internal/testtool"
)

// openPostgres opens an index in a new database of the package's
// cluster, closed when t ends.
func openPostgres(t *testing.T) *DB {
	t.Helper()
	db, err := OpenPostgres(context.Background(), testtool.SharedPostgres(t).NewDatabase(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestPostgresCommit: a commit's transaction, pipelined in two round
// trips, is still one transaction. Eight writers increment one record by
// compare-and-set (ExpectRecord, retried on ErrConflict) and a counter by
// merge in the same batches, holding the store's lock: no increment is
// lost or doubled. A batch whose expectation fails writes nothing, not
// even the counter row its merge had inserted before the check; and no
// connection is left taken.
func TestPostgresCommit(t *testing.T) {
	db := openPostgres(t)
	if ok, err := db.LockStore(); !ok || err != nil {
		t.Fatalf("LockStore = %v, %v", ok, err)
	}
	k := RecordKey{"ns", "t", "counter"}
	const writers, each = 8, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts := 0
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; {
				r, ok, err := db.Record(k)
				if err != nil {
					t.Error(err)
					return
				}
				b := db.NewBatch()
				b.ExpectRecord(k, r, ok)
				b.SetRecord(k, Record{Size: r.Size + 1, Version: 1})
				b.AddLive(7, 1, 1)
				err = b.Commit()
				if errors.Is(err, ErrConflict) {
					mu.Lock()
					conflicts++
					mu.Unlock()
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				i++
			}
		}()
	}
	wg.Wait()
	t.Logf("%d conflicts retried", conflicts)
	r, ok, err := db.Record(k)
	if err != nil || !ok || r.Size != writers*each {
		t.Fatalf("the record counts %d (%v, %v), want %d", r.Size, ok, err, writers*each)
	}
	live := func(seg uint64) (int64, bool) {
		segs, err := db.Segments()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range segs {
			if s.ID == seg {
				return s.LiveBytes, true
			}
		}
		return 0, false
	}
	if n, _ := live(7); n != writers*each {
		t.Errorf("the merged counter is %d, want %d", n, writers*each)
	}

	// A stale expectation: nothing of the batch is written.
	b := db.NewBatch()
	b.ExpectRecord(k, Record{Size: 1, Version: 1}, true)
	b.SetRecord(RecordKey{"ns", "t", "other"}, Record{Size: 1, Version: 1})
	b.AddLive(9, 5, 1) // a new row, inserted before the check
	b.AddLive(7, 5, 1) // an existing one, locked before the check
	if err := b.Commit(); !errors.Is(err, ErrConflict) {
		t.Fatalf("a stale expectation committed: %v", err)
	}
	if _, ok, _ := db.Record(RecordKey{"ns", "t", "other"}); ok {
		t.Error("a conflicting batch's record was written")
	}
	if _, ok := live(9); ok {
		t.Error("a conflicting batch's new counter row was left")
	}
	if n, _ := live(7); n != writers*each {
		t.Errorf("a conflicting batch's merge moved the counter to %d", n)
	}
	if n := db.st.(*pgStore).pool.Stat().AcquiredConns(); n != 1 {
		t.Errorf("%d connections taken, want 1 (the store's lock's)", n)
	}
}

// TestPostgresCommitLocks: commits that read and write overlapping
// entries take turns, small ones and large. Writers add 1 to two of eight
// counters at a time by compare-and-set; another adds 1 to all eight with
// 64 more entries expected absent. No increment is lost: the counters
// add up to what the commits added.
func TestPostgresCommitLocks(t *testing.T) {
	db := openPostgres(t)
	key := func(i int) RecordKey { return RecordKey{"ns", "t", fmt.Sprintf("c%d", i)} }
	// add adds 1 to each of the counters named, expecting the others
	// absent, until it commits.
	add := func(counters []int, absent int) {
		for {
			b := db.NewBatch()
			for _, i := range counters {
				r, ok, err := db.Record(key(i))
				if err != nil {
					t.Error(err)
					return
				}
				b.ExpectRecord(key(i), r, ok)
				b.SetRecord(key(i), Record{Size: r.Size + 1, Version: 1})
			}
			for j := range absent {
				b.ExpectRecord(RecordKey{"ns", "absent", fmt.Sprint(j)}, Record{}, false)
			}
			err := b.Commit()
			if errors.Is(err, ErrConflict) {
				continue
			}
			if err != nil {
				t.Error(err)
			}
			return
		}
	}
	var wg sync.WaitGroup
	const pairs, bigs = 4 * 40, 20
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range pairs / 4 {
				i := rng.IntN(8)
				add([]int{i, (i + 1 + rng.IntN(7)) % 8}, 0)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range bigs {
			add([]int{0, 1, 2, 3, 4, 5, 6, 7}, 64)
		}
	}()
	wg.Wait()
	var sum int64
	for i := range 8 {
		r, _, err := db.Record(key(i))
		if err != nil {
			t.Fatal(err)
		}
		sum += r.Size
	}
	if want := int64(2*pairs + 8*bigs); sum != want {
		t.Errorf("the counters add up to %d, want %d: increments lost", sum, want)
	}
}

// TestPrefetch: on each store, a prefetched View answers the entries it
// was asked for as they were when it read them (present or absent), and
// any other as the index does now.
func TestPrefetch(t *testing.T) {
	stores(t, func(t *testing.T, open func() (*DB, error)) {
		db := must(t, open)()
		defer db.Close()
		a, b := RecordKey{"ns", "t", "a"}, RecordKey{"ns", "t", "b"}
		id, missing := blob.Sum([]byte("content")), blob.Sum([]byte("nothing"))
		batch := db.NewBatch()
		batch.SetRecord(a, Record{Size: 1, Version: 1})
		batch.SetBlob(id, Blob{Size: 7, Refs: 2})
		batch.SetChunk(id, Chunk{Refs: 3, Location: Location{Segment: 5, Raw: 7, Stored: 7}})
		if err := batch.Commit(); err != nil {
			t.Fatal(err)
		}
		v, err := db.Prefetch([]RecordKey{a, b}, []blob.ID{id, missing}, []blob.ID{id, missing})
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.HasSuffix(t.Name(), "store=postgres"); db.Remote() != want {
			t.Errorf("Remote = %v on %s", db.Remote(), t.Name())
		}
		batch = db.NewBatch()
		batch.SetRecord(a, Record{Size: 2, Version: 2})
		batch.SetRecord(b, Record{Size: 3, Version: 1})
		batch.SetRecord(RecordKey{"ns", "t", "c"}, Record{Size: 4, Version: 1})
		if err := batch.Commit(); err != nil {
			t.Fatal(err)
		}
		if r, ok, err := v.Record(a); err != nil || !ok || r.Size != 1 {
			t.Errorf("Record(a) = %+v, %v, %v; want the one read ahead", r, ok, err)
		}
		if _, ok, err := v.Record(b); err != nil || ok {
			t.Errorf("Record(b) = %v, %v; want absent, as read ahead", ok, err)
		}
		if r, ok, err := v.Record(RecordKey{"ns", "t", "c"}); err != nil || !ok || r.Size != 4 {
			t.Errorf("Record(c), not read ahead = %+v, %v, %v; want the index's", r, ok, err)
		}
		if bl, ok, err := v.Blob(id); err != nil || !ok || bl.Refs != 2 || bl.Size != 7 {
			t.Errorf("Blob = %+v, %v, %v", bl, ok, err)
		}
		if c, ok, err := v.Chunk(id); err != nil || !ok || c.Refs != 3 || c.Raw != 7 {
			t.Errorf("Chunk = %+v, %v, %v", c, ok, err)
		}
		if _, ok, err := v.Blob(missing); err != nil || ok {
			t.Errorf("Blob(missing) = %v, %v", ok, err)
		}
		if _, ok, err := v.Chunk(missing); err != nil || ok {
			t.Errorf("Chunk(missing) = %v, %v", ok, err)
		}
	})
}
