package engine_test

import (
	"bytes"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/internal/chunker"
)

// TestWholeDedup: with RevealDedup, an upload that fits the chunker's buffer (at most
// MaxChunk bytes) and is stored already is found by its hash alone, not
// chunked, and writes nothing; a new one gets the ID b3sum would give, one
// chunk or several, and reads back whole and in part. Around every size
// where the path changes.
func TestWholeDedup(t *testing.T) {
	var skew atomic.Int64
	e := enginetest.Open(t, engine.Options{RevealDedup: true, Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	maxChunk := chunker.DefaultMaxSize
	for i, size := range []int{16 << 10, 16<<10 + 1, engine.MinOutboard - 1, engine.MinOutboard, 300 << 10,
		1 << 20, 3<<20 + 5, maxChunk - 1, maxChunk, maxChunk + 1, 9 << 20} {
		data := random(uint64(100+i), size)
		k1 := engine.Key{Namespace: "ns", Tenant: "t", Name: "first"}
		k2 := engine.Key{Namespace: "ns", Tenant: "t", Name: "second"}
		r1, err := e.PutRecord(ctx, k1, bytes.NewReader(data), engine.Write{})
		if err != nil {
			t.Fatal(err)
		}
		if r1.Blob != blob.Sum(data) {
			t.Fatalf("size %d: ID %s, b3sum %s", size, r1.Blob, blob.Sum(data))
		}
		before, _ := e.Stats()
		r2, err := e.PutRecord(ctx, k2, bytes.NewReader(data), engine.Write{})
		if err != nil {
			t.Fatal(err)
		}
		after, _ := e.Stats()
		whole := size > 16<<10 && size >= engine.MinOutboard && size < maxChunk
		if got := after.DedupWhole - before.DedupWhole; got != map[bool]uint64{true: 1}[whole] {
			t.Errorf("size %d: %d uploads found stored whole, want whole=%v", size, got, whole)
		}
		if r2.Blob != r1.Blob || after.Blobs != before.Blobs || after.Chunks != before.Chunks {
			t.Errorf("size %d: the second upload is %s (first %s), blobs %d→%d, chunks %d→%d",
				size, r2.Blob, r1.Blob, before.Blobs, after.Blobs, before.Chunks, after.Chunks)
		}
		if w := after.WrittenBytes - before.WrittenBytes; size > 16<<10 && w != 0 {
			t.Errorf("size %d: the second upload wrote %d bytes", size, w)
		}
		// Either record alone keeps the content whole.
		if err := e.DeleteRecord(ctx, k1); err != nil {
			t.Fatal(err)
		}
		if _, err := e.GC(ctx, false); err != nil {
			t.Fatal(err)
		}
		rec, err := e.GetRecord(k2)
		if err != nil {
			t.Fatal(err)
		}
		readsBack(t, e, rec, data)
		if err := e.DeleteRecord(ctx, k2); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.GC(ctx, false); err != nil {
		t.Fatal(err)
	}
	enginetest.Collect(t, e, func(d time.Duration) { skew.Add(int64(d)) })
	st, _ := e.Stats()
	if st.Blobs != 0 || st.Chunks != 0 || st.LiveBytes != 0 {
		t.Errorf("everything deleted: %d blobs, %d chunks, %d live bytes left", st.Blobs, st.Chunks, st.LiveBytes)
	}
}

// TestWholeDedupOfReleased: content whose last record was deleted while a
// reader held it (its blob kept, unreferenced, for GC) is found stored
// whole by a new upload, which then keeps it: GC after the reader closes
// takes nothing the new record needs.
func TestWholeDedupOfReleased(t *testing.T) {
	e := enginetest.Open(t, engine.Options{RevealDedup: true})
	data := random(7, 2<<20)
	k := engine.Key{Namespace: "ns", Tenant: "t", Name: "f"}
	rec, err := e.PutRecord(ctx, k, bytes.NewReader(data), engine.Write{})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := e.OpenRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteRecord(ctx, k); err != nil {
		t.Fatal(err)
	}
	before, _ := e.Stats()
	k2 := engine.Key{Namespace: "ns", Tenant: "t", Name: "again"}
	if _, err := e.PutRecord(ctx, k2, bytes.NewReader(data), engine.Write{}); err != nil {
		t.Fatal(err)
	}
	after, _ := e.Stats()
	if after.DedupWhole-before.DedupWhole != 1 || after.WrittenBytes != before.WrittenBytes {
		t.Errorf("found whole %d times, wrote %d bytes", after.DedupWhole-before.DedupWhole, after.WrittenBytes-before.WrittenBytes)
	}
	rd.Close()
	if _, err := e.GC(ctx, false); err != nil {
		t.Fatal(err)
	}
	rec2, err := e.GetRecord(k2)
	if err != nil {
		t.Fatal(err)
	}
	rd2, err := e.OpenRecord(rec2)
	if err != nil {
		t.Fatal(err)
	}
	defer rd2.Close()
	if got, err := io.ReadAll(rd2); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after GC: read back %d bytes (%v)", len(got), err)
	}
	if err := e.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWholeDedupHidden: hiding deduplication (the default), a stored
// content is chunked as a new one would be, so that it costs the same work
// (but the writing, which hideDedup pads): not found by its hash first.
func TestWholeDedupHidden(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	data := random(8, 1<<20)
	for range 2 {
		if _, _, err := e.Put(ctx, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := e.Stats(); st.DedupWhole != 0 || st.DedupChunks != 1 {
		t.Errorf("hiding: %d found whole, %d chunks found stored; want 0 and 1", st.DedupWhole, st.DedupChunks)
	}
}

// readsBack checks rec's content reads back as data, whole and its last
// 70 KiB (in part, through the outboard of a large chunk).
func readsBack(t *testing.T, e *engine.Engine, rec engine.Record, data []byte) {
	t.Helper()
	rd, err := e.OpenRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got, err := io.ReadAll(rd)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("size %d: read back %d bytes (%v)", len(data), len(got), err)
	}
	part := make([]byte, min(len(data), 70<<10))
	off := int64(len(data) - len(part))
	if _, err := rd.ReadAt(part, off); err != nil || !bytes.Equal(part, data[off:]) {
		t.Fatalf("size %d: the last %d bytes read back wrong (%v)", len(data), len(part), err)
	}
}
