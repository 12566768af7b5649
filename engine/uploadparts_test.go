package engine

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/blob"
)

// TestUploadParts: the contents of several records, uploaded from them,
// are the upload of their bytes one after the other: the same ID and
// chunk list, for parts of every kind of size (kept in the index, below
// a chunk, several chunks); the parts' chunks are taken as they are
// where the chunking meets them, and not waited for, where a chunk
// someone else stored is. The result reads back, and GC after the parts
// are deleted keeps exactly it.
func TestUploadParts(t *testing.T) {
	ctx := context.Background()
	e, err := Open(filepath.Join(t.TempDir(), "data"), Options{MinChunk: 8 << 10, AvgChunk: 32 << 10, MaxChunk: 128 << 10, GCGrace: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// As if writing were slow, so that a wait shows.
	for range 20 {
		e.writeCost.observe(1<<20, 100<<20, 50*time.Millisecond)
	}
	r := rand.New(rand.NewPCG(5, 5))
	// put stores b as a part of upload tenant, and returns its record.
	put := func(tenant, name string, b []byte) Record {
		rec, err := e.PutRecord(ctx, Key{Namespace: "tus", Tenant: tenant, Name: name}, bytes.NewReader(b), Write{})
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	for round, sizes := range [][]int{
		{1 << 20, 1 << 20, 1 << 20},
		{100, 5000, 700 << 10, 3, 20 << 10, 1 << 20},
		{300 << 10},
		{1, 2, 3},
		{2 << 20, 16 << 10, 16<<10 + 1, 130 << 10, 1 << 20},
	} {
		var whole []byte
		var parts []Record
		for i, n := range sizes {
			b := make([]byte, n)
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			whole = append(whole, b...)
			parts = append(parts, put("up", fmt.Sprintf("part/%d/%03d", round, i), b))
		}
		up, err := e.UploadParts(ctx, parts)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := e.Upload(ctx, bytes.NewReader(whole))
		if err != nil {
			t.Fatal(err)
		}
		if up.ID() != blob.Sum(whole) || up.Size() != int64(len(whole)) || !slices.Equal(up.chunks, plain.chunks) {
			t.Fatalf("round %d: from the parts %s, %d chunks; their bytes %s, %d chunks", round, up.ID(), len(up.chunks), plain.ID(), len(plain.chunks))
		}
		if len(up.chunks) > 2*len(sizes) && up.taken == 0 {
			t.Errorf("round %d: none of the parts' chunks taken as they are", round)
		}
		if up.dedup != 0 {
			t.Errorf("round %d: the parts' own chunks counted as found stored (%d bytes), to be waited for", round, up.dedup)
		}
		plain.Close()
		k := Key{Namespace: "files", Tenant: "t", Name: fmt.Sprint(round)}
		err = e.Update(ctx, func(tx *Tx) error {
			for _, p := range parts {
				if err := tx.Delete(p.Key); err != nil {
					return err
				}
			}
			_, err := tx.Put(k, Record{}, up)
			return err
		})
		up.Close()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.GC(ctx, false); err != nil {
			t.Fatal(err)
		}
		if got := readRecordAll(t, e, k); !bytes.Equal(got, whole) {
			t.Fatalf("round %d: read back %d bytes, not the parts' %d", round, len(got), len(whole))
		}
		if err := e.Check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := e.Stats()
	if st.Records != 5 {
		t.Fatalf("%d records, want the 5 files", st.Records)
	}

	// A chunk of the whole that someone else stored (not a part's) is
	// waited for as ever.
	other := make([]byte, 600<<10)
	for j := range other {
		other[j] = byte(r.Uint32())
	}
	if _, err := e.PutRecord(ctx, Key{Namespace: "files", Tenant: "other", Name: "f"}, bytes.NewReader(other), Write{}); err != nil {
		t.Fatal(err)
	}
	var parts []Record
	for i, b := range [][]byte{other[:200<<10], other[200<<10:]} {
		parts = append(parts, put("up2", fmt.Sprint(i), b))
	}
	up, err := e.UploadParts(ctx, parts)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	if up.ID() != blob.Sum(other) || up.dedup == 0 || up.written != 0 {
		t.Fatalf("the parts of a content stored by another: %s, %d bytes found stored, %d written", up.ID(), up.dedup, up.written)
	}
}

func readRecordAll(t *testing.T, e *Engine, k Key) []byte {
	t.Helper()
	rec, err := e.GetRecord(k)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.OpenRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
