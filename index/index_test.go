package index

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/internal/testtool"
)

func open(t *testing.T, fs vfs.FS) *DB {
	t.Helper()
	db, err := Open(fs, "idx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestMain(m *testing.M) { testtool.Main(m) }

// stores runs f on each kind of store: Pebble (on a memory file system)
// and PostgreSQL (a database of its own in the package's cluster). f
// opens the index with open, as often as it likes: each time the same
// one.
func stores(t *testing.T, f func(t *testing.T, open func() (*DB, error))) {
	t.Run("store=pebble", func(t *testing.T) {
		fs := vfs.NewMem()
		f(t, func() (*DB, error) { return Open(fs, "idx", Options{}) })
	})
	t.Run("store=postgres", func(t *testing.T) {
		dsn := testtool.SharedPostgres(t).NewDatabase(t)
		f(t, func() (*DB, error) { return OpenPostgres(context.Background(), dsn, Options{}) })
	})
}

// must is open that ends the test on an error.
func must(t *testing.T, open func() (*DB, error)) func() *DB {
	return func() *DB {
		t.Helper()
		db, err := open()
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
}

func TestRecordKeyOrder(t *testing.T) {
	keys := []RecordKey{
		{"", "", ""},
		{"a", "", ""},
		{"a", "\x00", ""},
		{"a", "\x00\x00", "x"},
		{"a", "\x00\x01", ""},
		{"a", "b", ""},
		{"a", "b", "\x00"},
		{"a", "b", "c/d"},
		{"a", "bb", ""},
		{"a\x00", "", ""},
		{"a\x01", "", ""},
		{"ab", "", "z"},
		{"b", "\xff", "\xff"},
	}
	for i := range keys {
		enc := EncodeRecordKey(keys[i])
		got, err := DecodeRecordKey(enc)
		if err != nil || got != keys[i] {
			t.Errorf("round trip %q: %q, %v", keys[i], got, err)
		}
		for j := range keys {
			want := keys[i].Compare(keys[j])
			if got := bytes.Compare(enc, EncodeRecordKey(keys[j])); got != want {
				t.Errorf("order of %q vs %q: keys compare %d, tuples %d", keys[i], keys[j], got, want)
			}
		}
	}
}

func TestExpiryKeyOrder(t *testing.T) {
	times := []int64{-5e18, -1, 0, 1, 1e9, 5e18}
	for i, a := range times {
		k := ExpiryKey(a, RecordKey{"ns", "t", "n"})
		at, rk, err := DecodeExpiryKey(k)
		if err != nil || at != a || rk != (RecordKey{"ns", "t", "n"}) {
			t.Errorf("round trip %d: %d %v %v", a, at, rk, err)
		}
		for j, b := range times {
			if got := bytes.Compare(k, ExpiryKey(b, RecordKey{"ns", "t", "n"})); got != cmp.Compare(i, j) {
				t.Errorf("expiry %d vs %d: %d", a, b, got)
			}
		}
	}
}

func TestValueRoundTrip(t *testing.T) {
	c := Chunk{Location{Segment: 7, Offset: 1 << 40, Stored: 123, Raw: 4 << 20, Compression: 1}, 99}
	if got, err := DecodeChunk(EncodeChunk(c)); err != nil || got != c {
		t.Errorf("chunk: %+v, %v", got, err)
	}
	b := Blob{Size: 1 << 33, Refs: 3, Created: -5, Chunks: []ChunkRef{{blob.Sum([]byte("a")), 1}, {blob.Sum([]byte("b")), 1 << 22}}}
	if got, err := DecodeBlob(EncodeBlob(b)); err != nil || got.Size != b.Size || got.Refs != b.Refs || got.Created != b.Created || !slices.Equal(got.Chunks, b.Chunks) {
		t.Errorf("blob: %+v, %v", got, err)
	}
	if got, err := DecodeBlob(EncodeBlob(Blob{})); err != nil || got.Chunks != nil {
		t.Errorf("empty blob: %+v, %v", got, err)
	}
	r := Record{Blob: blob.Sum([]byte("x")), Size: 1, ContentType: "image/png", Meta: []byte(`{"a":1}`), Created: 1, Modified: 2, Expires: 3, Version: 4}
	got, err := DecodeRecord(EncodeRecord(r))
	if err != nil || got.Blob != r.Blob || got.ContentType != r.ContentType || !bytes.Equal(got.Meta, r.Meta) || got.Version != 4 || got.Expires != 3 {
		t.Errorf("record: %+v, %v", got, err)
	}
	for name, bad := range map[string][]byte{
		"empty":      nil,
		"version":    {9},
		"trailing":   append(EncodeChunk(c), 0),
		"truncated":  EncodeRecord(r)[:20],
		"hugechunks": {1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		_, err1 := DecodeChunk(bad)
		_, err2 := DecodeBlob(bad)
		_, err3 := DecodeRecord(bad)
		for _, err := range []error{err1, err2, err3} {
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: decode error %v, want ErrCorrupt", name, err)
			}
		}
	}
}

func TestPersistAndScan(t *testing.T) {
	stores(t, func(t *testing.T, open func() (*DB, error)) { testPersistAndScan(t, must(t, open)) })
}

func testPersistAndScan(t *testing.T, reopen func() *DB) {
	db := reopen()
	b := db.NewBatch()
	for _, tenant := range []string{"a", "ab", "b"} {
		for i := range 5 {
			k := RecordKey{"ns", tenant, fmt.Sprintf("dir/%d", i)}
			b.SetRecord(k, Record{Size: int64(i), Version: 1})
			if i%2 == 0 {
				b.SetExpiry(int64(100*i), k)
			}
		}
	}
	b.SetRecord(RecordKey{"other", "a", "dir/0"}, Record{Version: 1})
	b.AddTotals(Totals{Records: 16})
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = reopen()
	defer db.Close()
	var names []string
	for e, err := range db.Records("ns", "a", "dir/", "dir/2") {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, e.Key.Tenant+":"+e.Key.Name)
	}
	if want := []string{"a:dir/2", "a:dir/3", "a:dir/4"}; !slices.Equal(names, want) {
		t.Errorf("Records(ns, a, dir/, dir/2) = %v, want %v (tenant ab must not appear)", names, want)
	}
	n := 0
	for e, err := range db.Expiring(201) {
		if err != nil {
			t.Fatal(err)
		}
		if e.At > 200 {
			t.Errorf("Expiring(201) yielded %d", e.At)
		}
		n++
	}
	if n != 6 { // i = 0 and 2, for three tenants
		t.Errorf("Expiring(201) yielded %d entries, want 6", n)
	}
	tot, err := db.Totals()
	if err != nil || tot.Records != 16 {
		t.Errorf("Totals = %+v, %v", tot, err)
	}
}

// TestMergeCounters adds to the same counters from many goroutines, across
// flushes, and checks the sums and maxima.
func TestMergeCounters(t *testing.T) {
	stores(t, func(t *testing.T, open func() (*DB, error)) { testMergeCounters(t, must(t, open)) })
}

func testMergeCounters(t *testing.T, reopen func() *DB) {
	db := reopen()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 200 {
				b := db.NewBatch()
				b.AddLive(1, 10, 1)
				b.AddLive(2, -3, 0)
				b.RaiseEnd(1, int64(r.IntN(1000)))
				b.AddTotals(Totals{Chunks: 1, ChunkDisk: 5})
				if i == 100 && g == 0 {
					b.RaiseEnd(1, 5000)
				}
				if err := b.Commit(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if db.pdb != nil {
		if err := db.pdb.Flush(); err != nil { // the merges into tables, and on from there
			t.Fatal(err)
		}
	}
	b := db.NewBatch()
	b.SetSealed(1, 6000)
	b.Commit()
	db.Close()
	db = reopen()
	defer db.Close()
	segs, err := db.Segments()
	if err != nil {
		t.Fatal(err)
	}
	want := []Segment{{ID: 1, End: 5000, Sealed: 6000, LiveBytes: 16000, LiveChunks: 1600}, {ID: 2, LiveBytes: -4800}}
	if !slices.Equal(segs, want) {
		t.Errorf("Segments = %+v, want %+v", segs, want)
	}
	tot, _ := db.Totals()
	if tot.Chunks != 1600 || tot.ChunkDisk != 8000 {
		t.Errorf("Totals = %+v", tot)
	}
}

func TestFormatVersion(t *testing.T) {
	stores(t, func(t *testing.T, open func() (*DB, error)) {
		db := must(t, open)()
		b := db.NewBatch()
		b.set(metaKey(metaFormat), encodeBE64(FormatVersion+1))
		b.Commit()
		db.Close()
		if db, err := open(); err == nil {
			db.Close()
			t.Fatal("opened an index of a newer format")
		}
	})
}

// TestBatchCloseAfterCommit closes batches after Commit, as callers do
// with defer, from several goroutines. Pebble pools closed batches, so a
// second close of the same *pebble.Batch would release one that another
// goroutine is filling: under -race that shows as a data race, and
// without it as records lost or mixed between batches.
func TestBatchCloseAfterCommit(t *testing.T) {
	stores(t, func(t *testing.T, open func() (*DB, error)) { testBatchCloseAfterCommit(t, must(t, open)) })
}

func testBatchCloseAfterCommit(t *testing.T, reopen func() *DB) {
	db := reopen()
	defer db.Close()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				b := db.NewBatch()
				b.SetRecord(RecordKey{"ns", fmt.Sprint(g), fmt.Sprint(i)}, Record{Size: int64(i), Version: 1})
				if err := b.Commit(); err != nil {
					t.Error(err)
				}
				b.Close()
				b.Close()
			}
		})
	}
	wg.Wait()
	for g := range 4 {
		n := 0
		for r, err := range db.Records("ns", fmt.Sprint(g), "", "") {
			if err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprint(r.Size); r.Key.Name != want {
				t.Errorf("record %s holds size %d: batches were mixed", r.Key, r.Size)
			}
			n++
		}
		if n != 50 {
			t.Errorf("tenant %d: %d records, want 50", g, n)
		}
	}
}

// TestStoreSemantics: what the engine relies on of a store, on each:
// scans over many pages from a start and within a prefix, snapshots that
// do not see later commits, batches whose repr applied elsewhere makes
// the same index, and range deletes.
func TestStoreSemantics(t *testing.T) {
	stores(t, func(t *testing.T, open func() (*DB, error)) {
		db := must(t, open)()
		defer db.Close()
		b := db.NewBatch()
		for i := range 1500 { // several of PostgreSQL's pages
			b.SetRecord(RecordKey{"ns", "t", fmt.Sprintf("%05d", i)}, Record{Size: int64(i), Version: 1})
		}
		b.SetRecord(RecordKey{"ns", "u", "00000"}, Record{Version: 1})
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		count := func(v View, start string) (n int, first string) {
			for r, err := range v.Records("ns", "t", "", start) {
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					first = r.Key.Name
				}
				n++
			}
			return n, first
		}
		if n, first := count(db.View, "00700"); n != 800 || first != "00700" {
			t.Fatalf("scan from 00700: %d records from %q, want 800 from 00700", n, first)
		}

		snap := db.Snapshot()
		b = db.NewBatch()
		for i := range 100 {
			b.DeleteRecord(RecordKey{"ns", "t", fmt.Sprintf("%05d", i)})
		}
		b.SetRecord(RecordKey{"ns", "t", "99999"}, Record{Version: 1})
		b.AddLive(7, 100, 1)
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		if n, _ := count(snap.View, ""); n != 1500 {
			t.Errorf("the snapshot sees %d records, want the 1500 of before", n)
		}
		if _, ok, err := snap.Record(RecordKey{"ns", "t", "99999"}); ok || err != nil {
			t.Errorf("the snapshot sees a record written after it: %v, %v", ok, err)
		}
		if err := snap.Close(); err != nil {
			t.Fatal(err)
		}
		if n, first := count(db.View, ""); n != 1401 || first != "00100" {
			t.Errorf("live: %d records from %q, want 1401 from 00100", n, first)
		}

		// A batch's repr, applied again, makes the same changes again.
		b = db.NewBatch()
		b.SetRecord(RecordKey{"ns", "r", "a"}, Record{Size: 1, Version: 1})
		b.DeleteRecord(RecordKey{"ns", "r", "a"})
		b.SetRecord(RecordKey{"ns", "r", "b"}, Record{Size: 2, Version: 1})
		b.AddLive(7, 5, 1)
		b.AddLive(7, 5, 1)
		b.RaiseEnd(7, 900)
		b.AddTotals(Totals{Records: 3})
		b.SetApplied(42)
		repr := b.Repr()
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		segs, err := db.Segments()
		if err != nil || len(segs) != 1 || segs[0].LiveBytes != 110 || segs[0].LiveChunks != 3 || segs[0].End != 900 {
			t.Fatalf("Segments = %+v, %v", segs, err)
		}
		other := db
		if err := other.Apply(repr); err != nil {
			t.Fatal(err)
		}
		if err := other.Flush(); err != nil {
			t.Fatal(err)
		}
		segs, _ = other.Segments()
		if len(segs) != 1 || segs[0].LiveBytes != 120 || segs[0].End != 900 {
			t.Errorf("after Apply: Segments = %+v", segs)
		}
		if _, ok, _ := other.Record(RecordKey{"ns", "r", "a"}); ok {
			t.Error("after Apply: a record the batch deleted after setting it is there")
		}
		if r, ok, _ := other.Record(RecordKey{"ns", "r", "b"}); !ok || r.Size != 2 {
			t.Error("after Apply: a record the batch set is not there")
		}
		if ok, err := db.Applied(42); !ok || err != nil {
			t.Fatalf("Applied(42) = %v, %v", ok, err)
		}
		if err := db.ClearApplied(); err != nil {
			t.Fatal(err)
		}
		if ok, _ := db.Applied(42); ok {
			t.Error("ClearApplied left a mark")
		}
	})
}
