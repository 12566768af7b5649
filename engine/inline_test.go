package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/blob"
)

// TestInline: a content of one chunk of at most InlineMax bytes is kept in
// the index: its upload appends and syncs nothing in the segments, it is
// read back verified (raw or compressed), deduplicated, kept by Reindex,
// and its payload deleted with its last reference; a damaged payload is a
// corruption error and a problem for Check, never wrong bytes.
func TestInline(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	now := time.Unix(1_800_000_000, 0)
	opts := Options{GCGrace: -1, Now: func() time.Time { return now }}
	e, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { e.Close() }()

	small := make([]byte, 4<<10)
	rand.NewChaCha8([32]byte{5}).Read(small)
	words := bytes.Repeat([]byte("a small text compresses well. "), 300)[:9000]
	big := make([]byte, opts.InlineMax+(16<<10)+1)
	rand.NewChaCha8([32]byte{6}).Read(big)

	before, _ := e.Stats()
	put := func(name string, data []byte) Record {
		t.Helper()
		rec, err := e.PutRecord(ctx, Key{Namespace: "ns", Tenant: "t", Name: name}, bytes.NewReader(data), Write{})
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	read := func(id blob.ID) ([]byte, error) {
		t.Helper()
		r, err := e.Open(id)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(r)
	}
	recSmall, recWords := put("small", small), put("words", words)
	put("again", small) // the same bytes: one chunk, two references
	after, _ := e.Stats()
	if after.SyncCount != before.SyncCount || after.WrittenBytes > before.WrittenBytes+uint64(len(small)+len(words)) {
		t.Fatalf("small uploads synced segments %d times, wrote %d bytes", after.SyncCount-before.SyncCount, after.WrittenBytes-before.WrittenBytes)
	}
	for _, id := range []blob.ID{recSmall.Blob, recWords.Blob} {
		c, ok, err := e.idx.Chunk(id) // a one-chunk blob's chunk has its ID
		if err != nil || !ok || !c.Inline() || c.Refs == 0 {
			t.Fatalf("chunk %s: %+v %v %v; want inline", id, c, ok, err)
		}
	}
	if c, _, _ := e.idx.Chunk(recWords.Blob); c.Compression == 0 || c.Stored >= c.Raw {
		t.Errorf("text kept inline uncompressed: %+v", c)
	}
	if b, _ := e.Stat(recSmall.Blob); b.Refs != 2 {
		t.Errorf("the same small bytes twice: %d references", b.Refs)
	}
	recBig := put("big", big)
	if st, _ := e.Stats(); st.SyncCount == after.SyncCount {
		t.Error("a content over InlineMax did not go to a segment")
	}
	for name, want := range map[blob.ID][]byte{recSmall.Blob: small, recWords.Blob: words, recBig.Blob: big} {
		if got, err := read(name); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %s: %d bytes, %v", name, len(got), err)
		}
	}

	// Reopened, and reindexed: still there.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if e, err = Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	rep, err := e.Reindex(ctx)
	if err != nil || len(rep.Missing) != 0 {
		t.Fatalf("reindex: %+v, %v", rep, err)
	}
	if err := e.Check(ctx); err != nil {
		t.Fatalf("check after reindex: %v", err)
	}
	if got, err := read(recWords.Blob); err != nil || !bytes.Equal(got, words) {
		t.Fatalf("after reopen and reindex: %d bytes, %v", len(got), err)
	}

	// Damage: a corruption error and a Check problem, never other bytes.
	in, _, _ := e.idx.Inline(recSmall.Blob)
	good := bytes.Clone(in.Payload)
	in.Payload[100] ^= 1
	b := e.idx.NewBatch()
	b.SetInline(recSmall.Blob, in)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if _, err := read(recSmall.Blob); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read of a damaged inline payload: %v; want ErrCorrupt", err)
	}
	if err := e.Check(ctx); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check with a damaged inline payload: %v", err)
	}
	in.Payload = good
	b = e.idx.NewBatch()
	b.SetInline(recSmall.Blob, in)
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	b.Close()

	// The last reference gone, GC deletes the payload.
	for _, name := range []string{"small", "again", "words"} {
		if err := e.Update(ctx, func(tx *Tx) error { return tx.Delete(Key{Namespace: "ns", Tenant: "t", Name: name}) }); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.GC(ctx, false); err != nil {
		t.Fatal(err)
	}
	for _, id := range []blob.ID{recSmall.Blob, recWords.Blob} {
		if _, ok, _ := e.idx.Inline(id); ok {
			t.Errorf("inline payload of %s kept after its last reference went and GC ran", id)
		}
	}
	if err := e.Check(ctx); err != nil {
		t.Fatalf("check after GC: %v", err)
	}
	tot, _ := e.idx.Totals()
	if tot.Chunks == 0 || tot.ChunkDisk < int64(len(big)) || tot.ChunkDisk > int64(len(big))+4<<10 {
		t.Errorf("totals after GC: %+v; want only the big file's chunks", tot)
	}
}

// TestInlineAgain: an upload of small bytes stored inline makes their
// payload again, as a new upload would, and its commit writes the same
// bytes over the stored ones (so that its time tells nothing, unpadded);
// bytes stored in a segment (by a store that kept nothing inline) are
// left where they are.
func TestInlineAgain(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	small := bytes.Repeat([]byte("small text, compressible. "), 200)[:5000]
	legacy := make([]byte, 5000)
	rand.NewChaCha8([32]byte{8}).Read(legacy)

	e, err := Open(dir, Options{InlineMax: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.PutRecord(ctx, Key{Namespace: "ns", Tenant: "a", Name: "legacy"}, bytes.NewReader(legacy), Write{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := e.PutRecord(ctx, Key{Namespace: "ns", Tenant: "a", Name: "small"}, bytes.NewReader(small), Write{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		data  []byte
		again bool
	}{{small, true}, {legacy, false}} {
		u, err := e.Upload(ctx, bytes.NewReader(c.data))
		if err != nil {
			t.Fatal(err)
		}
		if (u.again != nil) != c.again || u.dedup != int64(len(c.data)) {
			t.Fatalf("stored bytes again: again %v, dedup %d; want %v", u.again != nil, u.dedup, c.again)
		}
		if pad := e.writeCost.pad(u, e.opts.InlineMax); c.again && pad != 0 {
			t.Errorf("an upload that made its payload again padded by %v", pad)
		}
		err = e.Update(ctx, func(tx *Tx) error {
			_, err := tx.Put(Key{Namespace: "ns", Tenant: "b", Name: "copy"}, Record{}, u)
			return err
		})
		u.Close()
		if err != nil {
			t.Fatal(err)
		}
		rec, err := e.GetRecord(Key{Namespace: "ns", Tenant: "b", Name: "copy"})
		if err != nil {
			t.Fatal(err)
		}
		r, err := e.OpenRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, c.data) {
			t.Fatalf("the copy reads %d bytes, %v", len(got), err)
		}
	}
	if err := e.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
