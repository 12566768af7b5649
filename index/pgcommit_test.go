package index

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/cairnstore/cairn/internal/testtool"
)

// TestPostgresCommit: a commit's transaction, pipelined in two round
// trips, is still one transaction. Eight writers increment one record by
// compare-and-set (ExpectRecord, retried on ErrConflict) and a counter by
// merge in the same batches, holding the store's lock: no increment is
// lost or doubled. A batch whose expectation fails writes nothing, not
// even the counter row its merge had inserted before the check; and no
// connection is left taken.
func TestPostgresCommit(t *testing.T) {
	dsn := testtool.SharedPostgres(t).NewDatabase(t)
	db, err := OpenPostgres(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
