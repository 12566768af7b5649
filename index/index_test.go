package index

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/internal/blob"
)

func open(t *testing.T, fs vfs.FS) *DB {
	t.Helper()
	db, err := Open(fs, "idx", Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
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
	fs := vfs.NewMem()
	db := open(t, fs)
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

	db = open(t, fs)
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
	fs := vfs.NewMem()
	db := open(t, fs)
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
	if err := db.pdb.Flush(); err != nil {
		t.Fatal(err)
	}
	b := db.NewBatch()
	b.SetSealed(1, 6000)
	b.Commit()
	db.Close()
	db = open(t, fs)
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
	fs := vfs.NewMem()
	db := open(t, fs)
	b := db.NewBatch()
	b.set(metaKey(metaFormat), encodeBE64(FormatVersion+1))
	b.Commit()
	db.Close()
	if _, err := Open(fs, "idx", Options{}); err == nil {
		t.Fatal("opened an index of a newer format")
	}
}

// TestBatchCloseAfterCommit closes batches after Commit, as callers do
// with defer, from several goroutines. Pebble pools closed batches, so a
// second close of the same *pebble.Batch would release one that another
// goroutine is filling: under -race that shows as a data race, and
// without it as records lost or mixed between batches.
func TestBatchCloseAfterCommit(t *testing.T) {
	db := open(t, vfs.NewMem())
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
