package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnstore/cairn/internal/blob"
)

// TestPartReads: a read of a window needing less than half of a chunk
// reads only the groups it needs, verified by the chunk's outboard, and
// caches nothing; damage inside the window is a corruption error, never
// wrong bytes; a damaged outboard costs only speed (the chunk is read
// whole) and is reported by Check; outboards go with their chunks, and
// GC deletes those of chunks never committed.
func TestPartReads(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	e, err := Open(dir, Options{GCGrace: -1, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	data := make([]byte, 6<<20)
	rand.NewChaCha8([32]byte{9}).Read(data)
	key := Key{Namespace: "ns", Tenant: "t", Name: "video"}
	rec, err := e.PutRecord(ctx, key, bytes.NewReader(data), Write{})
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := e.idx.Blob(rec.Blob)
	if len(b.Chunks) < 3 {
		t.Fatalf("6 MiB in %d chunks", len(b.Chunks))
	}
	for _, c := range b.Chunks {
		if _, ok, _ := e.idx.Outboard(c.ID); !ok {
			t.Fatalf("chunk %s of %d bytes has no outboard", c.ID, c.Size)
		}
	}
	stats := func() Stats {
		st, err := e.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	// readRange reads [off, off+n) as blobhttp does: seek, window, read
	// in pieces; readOther, in another scope (whose reads in part are
	// its own).
	var open func() (*Reader, error)
	readRange := func(off, n int64) ([]byte, error) {
		r, err := open()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		r.Window(n)
		return io.ReadAll(io.LimitReader(r, n))
	}
	open = func() (*Reader, error) { return e.OpenRecord(rec) }
	rnd := rand.New(rand.NewPCG(1, 2))
	rangeIn := func(i int) (off, n int64) {
		size := int64(b.Chunks[i].Size)
		n = 1 + rnd.Int64N(size/2)
		var start int64
		for _, c := range b.Chunks[:i] {
			start += int64(c.Size)
		}
		return start + rnd.Int64N(size-n), n
	}
	before := stats()
	for i := range b.Chunks {
		off, n := rangeIn(i)
		got, err := readRange(off, n)
		if err != nil || !bytes.Equal(got, data[off:off+n]) {
			t.Fatalf("range %d+%d: %d bytes, %v", off, n, len(got), err)
		}
	}
	after := stats()
	if after.PartReads == before.PartReads || after.ChunkReads != before.ChunkReads || after.ReadCacheBytes != before.ReadCacheBytes {
		t.Fatalf("a range in each chunk: %d part reads, %d whole chunks read, cache %d -> %d bytes; want parts only",
			after.PartReads-before.PartReads, after.ChunkReads-before.ChunkReads, before.ReadCacheBytes, after.ReadCacheBytes)
	}
	// A chunk read in part again is read whole and kept; the next range
	// in it is served from memory.
	for _, want := range []uint64{1, 0} {
		st := stats()
		off, n := rangeIn(2)
		if got, err := readRange(off, n); err != nil || !bytes.Equal(got, data[off:off+n]) {
			t.Fatalf("range %d+%d again: %v", off, n, err)
		}
		if now := stats(); now.ChunkReads-st.ChunkReads != want || now.PartReads != st.PartReads {
			t.Fatalf("a range in a chunk read in part before: %d whole, %d part reads; want %d, 0", now.ChunkReads-st.ChunkReads, now.PartReads-st.PartReads, want)
		}
	}
	after = stats()
	// A window of all of a chunk reads it whole, and keeps it.
	if got, err := readRange(0, int64(b.Chunks[0].Size)); err != nil || !bytes.Equal(got, data[:b.Chunks[0].Size]) {
		t.Fatalf("first chunk: %v", err)
	}
	if st := stats(); st.ChunkReads != after.ChunkReads+1 {
		t.Fatalf("a window of a whole chunk: %d whole chunks read", st.ChunkReads-after.ChunkReads)
	}

	// Damage in the second chunk: a window over it fails, a window elsewhere
	// in that chunk does not (its groups verify), and no wrong byte is
	// ever returned.
	second := int64(b.Chunks[0].Size)
	damageAt := second + 200<<10
	segs, _ := filepath.Glob(filepath.Join(dir, "segments", "*.seg"))
	var undo func()
	for _, p := range segs {
		f, _ := os.ReadFile(p)
		if i := bytes.Index(f, data[damageAt:damageAt+64]); i >= 0 {
			orig := bytes.Clone(f)
			f[i] ^= 0x10
			if err := os.WriteFile(p, f, 0o600); err != nil {
				t.Fatal(err)
			}
			undo = func() { os.WriteFile(p, orig, 0o600) }
		}
	}
	if undo == nil {
		t.Fatal("second chunk not found on disk")
	}
	open = func() (*Reader, error) { return e.Open(rec.Blob) } // a scope that read no part yet
	st := stats()
	if got, err := readRange(damageAt-1000, 4000); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a window over a damaged byte: %d bytes, %v; want ErrCorrupt", len(got), err)
	}
	if now := stats(); now.PartReads != st.PartReads || now.CorruptReads == st.CorruptReads {
		t.Fatalf("a window over a damaged byte: %d parts verified, %d corrupt reads", now.PartReads-st.PartReads, now.CorruptReads-st.CorruptReads)
	}
	open = func() (*Reader, error) { return e.OpenRecord(engineRecordIn(rec, "third")) }
	if got, err := readRange(second, 1000); err != nil || !bytes.Equal(got, data[second:second+1000]) {
		t.Fatalf("a window of intact groups of the damaged chunk: %v", err)
	}
	if now := stats(); now.PartReads == st.PartReads || now.ChunkReads != st.ChunkReads {
		t.Fatalf("a window of intact groups of the damaged chunk: %d parts verified, %d whole chunks; want parts only", now.PartReads-st.PartReads, now.ChunkReads-st.ChunkReads)
	}
	undo()
	open = func() (*Reader, error) { return e.OpenRecord(rec) }

	// A damaged outboard: the chunk is read whole, and Check says so.
	id := b.Chunks[1].ID
	ob, _, _ := e.idx.Outboard(id)
	bad := bytes.Clone(ob)
	bad[20] ^= 1
	if err := e.idx.PutOutboards(map[blob.ID][]byte{id: bad}); err != nil {
		t.Fatal(err)
	}
	open = func() (*Reader, error) { return e.OpenRecord(engineRecordIn(rec, "fourth")) }
	st = stats()
	if got, err := readRange(second+5000, 3000); err != nil || !bytes.Equal(got, data[second+5000:second+8000]) {
		t.Fatalf("a window read with a damaged outboard: %v", err)
	}
	if after := stats(); after.ChunkReads != st.ChunkReads+1 {
		t.Errorf("with a damaged outboard, %d whole chunks read; want 1", after.ChunkReads-st.ChunkReads)
	}
	if err := e.Check(ctx); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Check with a damaged outboard: %v", err)
	}
	if err := e.idx.PutOutboards(map[blob.ID][]byte{id: ob}); err != nil {
		t.Fatal(err)
	}

	// Outboards go with their chunks; one never committed goes after two
	// GC passes.
	orphan := blob.Sum([]byte("never committed"))
	if err := e.idx.PutOutboards(map[blob.ID][]byte{orphan: ob}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.GC(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := e.idx.Outboard(orphan); !ok {
		t.Fatal("an outboard without a chunk deleted at the first GC pass: it may be an upload's in flight")
	}
	if err := e.Update(ctx, func(tx *Tx) error { return tx.Delete(key) }); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := e.GC(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	for id, err := range e.idx.Outboards() {
		t.Errorf("outboard of %s left after its chunk went (%v)", id, err)
	}
	if err := e.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// engineRecordIn is rec as if another tenant's: its reads are in another
// scope.
func engineRecordIn(rec Record, tenant string) Record {
	rec.Key.Tenant = tenant
	return rec
}
