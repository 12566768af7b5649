package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/internal/chunker"
)

var ctx = context.Background()

// random returns n deterministic incompressible bytes.
func random(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	rand.NewChaCha8(s).Read(b)
	return b
}

// text returns n deterministic compressible bytes.
func text(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	words := []string{"media ", "store ", "cairn ", "chunk ", "segment ", "index ", "\n"}
	var b bytes.Buffer
	for b.Len() < n {
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.Bytes()[:n]
}

func readAll(t testing.TB, e *engine.Engine, id blob.ID) []byte {
	t.Helper()
	r, err := e.Open(id)
	if err != nil {
		t.Fatalf("Open(%s): %v", id, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	return b
}

func TestRoundTripSizes(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	const min, max = chunker.DefaultMinSize, chunker.DefaultMaxSize
	for _, size := range []int{0, 1, min - 1, min, min + 1, max - 1, max, max + 1, 2*max + 1, 64 << 20} {
		for _, kind := range []string{"random", "text"} {
			if kind == "text" && size > 2*max+1 {
				continue // random bytes cover 64 MiB; text that long is slow to make under -race
			}
			t.Run(fmt.Sprintf("size=%d/%s", size, kind), func(t *testing.T) {
				data := random(uint64(size), size)
				if kind == "text" {
					data = text(uint64(size), size)
				}
				id, n, err := e.Put(ctx, bytes.NewReader(data))
				if err != nil {
					t.Fatal(err)
				}
				if want := blob.Sum(data); id != want || n != int64(size) {
					t.Fatalf("Put = %s, %d; want %s, %d", id, n, want, size)
				}
				if got := readAll(t, e, id); !bytes.Equal(got, data) {
					t.Fatalf("read back %d bytes, differ from the %d put", len(got), size)
				}
				info, err := e.Stat(id)
				if err != nil || info.Size != int64(size) {
					t.Fatalf("Stat = %+v, %v", info, err)
				}
				if size > min+1 {
					return // iotest reads byte by byte, many times over; TestSeekAndReadAt covers many chunks
				}
				r, err := e.Open(id)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				if err := iotest.TestReader(r, data); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

func TestSeekAndReadAt(t *testing.T) {
	e := enginetest.Open(t, engine.Options{MinChunk: 1 << 10, AvgChunk: 4 << 10, MaxChunk: 16 << 10})
	data := random(1, 200<<10)
	id, _, err := e.Put(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	info, _ := e.Stat(id)
	if info.Chunks < 10 {
		t.Fatalf("%d chunks; the test wants many", info.Chunks)
	}
	r, err := e.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rng := rand.New(rand.NewPCG(2, 2))
	for range 200 {
		off := rng.Int64N(int64(len(data)) + 10)
		n := rng.IntN(20 << 10)
		buf := make([]byte, n)
		got, err := r.ReadAt(buf, off)
		wantN := max(0, min(n, len(data)-int(off)))
		if got != wantN || !bytes.Equal(buf[:got], data[min(int(off), len(data)):min(int(off), len(data))+wantN]) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v", n, off, got, err)
		}
		if (got < n) != (err == io.EOF) {
			t.Fatalf("ReadAt(%d bytes at %d) = %d, %v: EOF iff short", n, off, got, err)
		}
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got2, _ := io.ReadFull(r, buf)
		if got2 != wantN || !bytes.Equal(buf[:got2], data[min(int(off), len(data)):min(int(off), len(data))+wantN]) {
			t.Fatalf("Seek(%d)+Read(%d) = %d", off, n, got2)
		}
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("Seek(-1) succeeded")
	}
}

func TestDedup(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	data := random(3, 10<<20)
	before, _ := e.Stats()
	id1, _, err := e.Put(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	mid, _ := e.Stats()
	id2, _, err := e.Put(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	after, _ := e.Stats()
	if id1 != id2 {
		t.Fatalf("same content, IDs %s and %s", id1, id2)
	}
	if w := mid.WrittenBytes - before.WrittenBytes; w < uint64(len(data)) {
		t.Errorf("first put wrote %d bytes for %d of content", w, len(data))
	}
	if w := after.WrittenBytes - mid.WrittenBytes; w != 0 {
		t.Errorf("second put of the same content wrote %d bytes", w)
	}
	if after.Blobs != 1 || after.DedupBytes-mid.DedupBytes != uint64(len(data)) {
		t.Errorf("after two puts: %d blobs, %d dedup bytes", after.Blobs, after.DedupBytes-mid.DedupBytes)
	}
}

// TestShiftedDedup stores 16 MiB, then the same with bytes inserted at the
// front: content-defined chunks mean most of the second is not written.
func TestShiftedDedup(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	data := random(4, 16<<20)
	if _, _, err := e.Put(ctx, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	for _, insert := range []int{1, 1000, 100 << 10} {
		before, _ := e.Stats()
		shifted := append(random(uint64(insert), insert), data...)
		id, _, err := e.Put(ctx, bytes.NewReader(shifted))
		if err != nil {
			t.Fatal(err)
		}
		after, _ := e.Stats()
		written := after.WrittenBytes - before.WrittenBytes
		shared := float64(after.DedupBytes-before.DedupBytes) / float64(len(shifted))
		t.Logf("insert %d bytes at the front of 16 MiB: %.1f%% deduplicated, %d bytes written", insert, 100*shared, written)
		if shared < 0.8 {
			t.Errorf("insert %d: only %.1f%% of the content deduplicated", insert, 100*shared)
		}
		if got := readAll(t, e, id); !bytes.Equal(got, shifted) {
			t.Fatal("shifted content reads back wrong")
		}
	}
}

func key(name string) engine.Key { return engine.Key{Namespace: "test", Tenant: "t1", Name: name} }

func TestRecords(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	e := enginetest.Open(t, engine.Options{Now: func() time.Time { return now }})
	a := text(1, 100<<10)
	r1, err := e.PutRecord(ctx, key("a.txt"), bytes.NewReader(a), engine.Write{ContentType: "text/plain", Meta: []byte("m1")})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Version != 1 || r1.Blob != blob.Sum(a) || r1.Size != int64(len(a)) || !r1.Created.Equal(now) {
		t.Fatalf("first put: %+v", r1)
	}
	got, err := e.GetRecord(key("a.txt"))
	if err != nil || got.ContentType != "text/plain" || string(got.Meta) != "m1" || got.Version != 1 {
		t.Fatalf("GetRecord = %+v, %v", got, err)
	}
	now = now.Add(time.Hour)
	b := text(2, 50<<10)
	r2, err := e.PutRecord(ctx, key("a.txt"), bytes.NewReader(b), engine.Write{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Version != 2 || !r2.Created.Equal(r1.Created) || !r2.Modified.Equal(now) || r2.Blob != blob.Sum(b) {
		t.Fatalf("overwrite: %+v", r2)
	}
	st, _ := e.Stats()
	// Several nodes (engine/nodes.go): released by GC after the grace
	// period, not at once.
	if !e.Shared() && (st.Blobs != 1 || st.Records != 1 || st.RecordBytes != int64(len(b))) {
		t.Fatalf("after overwrite, the old content should be released: %+v", st.Totals)
	}
	if r, err := e.Open(blob.Sum(a)); err == nil {
		r.Close()
		if !e.Shared() {
			t.Fatal("old content still readable")
		}
	} else if !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("old content: %v", err)
	}
	// Same content under another name and another tenant: stored once.
	if _, err := e.PutRecord(ctx, key("b.txt"), bytes.NewReader(b), engine.Write{}); err != nil {
		t.Fatal(err)
	}
	other := engine.Key{Namespace: "test", Tenant: "t2", Name: "a.txt"}
	if _, err := e.PutRecord(ctx, other, bytes.NewReader(b), engine.Write{}); err != nil {
		t.Fatal(err)
	}
	if info, _ := e.Stat(blob.Sum(b)); info.Refs != 3 {
		t.Fatalf("blob refs = %d, want 3", info.Refs)
	}
	var names []string
	for r, err := range e.Records("test", "t1", "", "") {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, r.Key.Name)
	}
	if !slices.Equal(names, []string{"a.txt", "b.txt"}) {
		t.Fatalf("Records(t1) = %v", names)
	}
	for _, k := range []engine.Key{key("a.txt"), key("b.txt"), other} {
		if err := e.DeleteRecord(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.DeleteRecord(ctx, key("a.txt")); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if e.Shared() {
		// Blobs a pass past the grace period, their chunks the next.
		for range 2 {
			now = now.Add(2 * time.Hour)
			if _, err := e.GC(ctx, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, _ = e.Stats()
	if st.Records != 0 || st.Blobs != 0 || st.Chunks != 0 || st.LiveBytes != 0 {
		t.Fatalf("after deleting everything: %+v, live %d", st.Totals, st.LiveBytes)
	}
	if st.DeadBytes == 0 {
		t.Fatal("deleted content is not counted as dead bytes")
	}
}

func TestTransaction(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	data := random(9, 300<<10)
	if _, err := e.PutRecord(ctx, key("from"), bytes.NewReader(data), engine.Write{ContentType: "image/png"}); err != nil {
		t.Fatal(err)
	}
	// A move: one transaction, the content keeps its reference throughout.
	err := e.Update(ctx, func(tx *engine.Tx) error {
		rec, err := tx.Get(key("from"))
		if err != nil {
			return err
		}
		if _, err := tx.Put(key("to"), rec, nil); err != nil {
			return err
		}
		return tx.Delete(key("from"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.GetRecord(key("from")); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("source after move: %v", err)
	}
	rec, err := e.GetRecord(key("to"))
	if err != nil || rec.ContentType != "image/png" || !bytes.Equal(readAll(t, e, rec.Blob), data) {
		t.Fatalf("destination after move: %+v, %v", rec, err)
	}
	// A failing transaction writes nothing.
	boom := errors.New("boom")
	err = e.Update(ctx, func(tx *engine.Tx) error {
		if err := tx.Delete(key("to")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	if _, err := e.GetRecord(key("to")); err != nil {
		t.Fatalf("a failed transaction deleted its record: %v", err)
	}
	// A record without content, and one pointing at content that is not
	// stored.
	err = e.Update(ctx, func(tx *engine.Tx) error {
		_, err := tx.Put(key("link"), engine.Record{Meta: []byte(`{"url":"https://example.com/"}`)}, nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Update(ctx, func(tx *engine.Tx) error {
		_, err := tx.Put(key("bad"), engine.Record{Blob: blob.Sum([]byte("never stored"))}, nil)
		return err
	})
	if !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Put of unstored content: %v", err)
	}
	for _, k := range []engine.Key{{Namespace: "", Tenant: "t", Name: "x"}, {Namespace: "n", Tenant: "t", Name: ""}} {
		if _, err := e.GetRecord(k); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("GetRecord(%q) = %v, want ErrInvalid", k, err)
		}
	}
}

// TestReaderKeepsContent: deleting the last record while a reader is open
// does not pull the bytes from under it.
func TestReaderKeepsContent(t *testing.T) {
	e := enginetest.Open(t, engine.Options{MinChunk: 1 << 10, AvgChunk: 4 << 10, MaxChunk: 16 << 10})
	data := random(5, 100<<10)
	rec, err := e.PutRecord(ctx, key("x"), bytes.NewReader(data), engine.Write{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Open(rec.Blob)
	if err != nil {
		t.Fatal(err)
	}
	head := make([]byte, 10)
	io.ReadFull(r, head)
	if err := e.DeleteRecord(ctx, key("x")); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(append(head, rest...), data) {
		t.Fatalf("reading after the delete: %v", err)
	}
	r.Close()
	// Unreferenced now, kept for garbage collection.
	if info, err := e.Stat(rec.Blob); err != nil || info.Refs != 0 {
		t.Fatalf("Stat after close = %+v, %v", info, err)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	opts := engine.Options{SegmentSize: 1 << 20, MinChunk: 16 << 10, AvgChunk: 64 << 10, MaxChunk: 256 << 10}
	contents := map[string][]byte{}
	for round := range 3 {
		e, err := engine.Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range contents {
			rec, err := e.GetRecord(key(name))
			if err != nil || !bytes.Equal(readAll(t, e, rec.Blob), want) {
				t.Fatalf("round %d: %s: %v", round, name, err)
			}
		}
		for i := range 5 {
			name := fmt.Sprintf("r%d-%d", round, i)
			data := random(uint64(round*10+i), 300<<10)
			if _, err := e.PutRecord(ctx, key(name), bytes.NewReader(data), engine.Write{}); err != nil {
				t.Fatal(err)
			}
			contents[name] = data
		}
		if err := e.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	e := enginetest.OpenDir(t, dir, opts)
	st, _ := e.Stats()
	if st.Segments < 4 || st.Records != 15 {
		t.Fatalf("after 3 rounds of 1.5 MB on 1 MiB segments: %d segments, %d records", st.Segments, st.Records)
	}
}

// TestMaxUploads: uploads past Options.MaxUploads wait for a slot, and
// give up when their context ends or, whatever the context, after
// Options.UploadWait (ErrBusy): a waiting client never holds its
// connection indefinitely.
func TestMaxUploads(t *testing.T) {
	e := enginetest.Open(t, engine.Options{MaxUploads: 1, UploadWait: 200 * time.Millisecond})
	pr, pw := io.Pipe()
	first := make(chan error, 1)
	go func() {
		up, err := e.Upload(context.Background(), pr)
		if err == nil {
			up.Close()
		}
		first <- err
	}()
	pw.Write([]byte("the first upload is streaming")) // it holds the slot now

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := e.Upload(ctx, strings.NewReader("second")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second upload while the only slot is taken: %v", err)
	}
	start := time.Now()
	if _, err := e.Upload(context.Background(), strings.NewReader("second")); !errors.Is(err, engine.ErrBusy) {
		t.Fatalf("an upload waiting without a deadline of its own: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Errorf("gave up after %v, UploadWait is 200ms", d)
	}
	second := make(chan error, 1)
	go func() {
		up, err := e.Upload(context.Background(), strings.NewReader("second"))
		if err == nil {
			up.Close()
		}
		second <- err
	}()
	pw.Close()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatalf("the waiting upload after the slot freed: %v", err)
	}
}

// TestReadCacheBound: the chunks downloads read are kept for the next
// read; many open downloads reading slowly keep no more than
// Options.ReadCache between them (the least recently used are dropped),
// and one whose chunk was dropped reads it again, verified.
func TestReadCacheBound(t *testing.T) {
	const budget = 4 << 20
	e := enginetest.Open(t, engine.Options{ReadCache: budget})
	data := random(31, 8<<20) // about eight 1 MiB chunks
	rec, err := e.PutRecord(ctx, engine.Key{Namespace: "ns", Tenant: "t", Name: "big"}, bytes.NewReader(data), engine.Write{})
	if err != nil {
		t.Fatal(err)
	}
	// 40 slow downloads, each 4 KiB into a different part of the blob.
	var readers []*engine.Reader
	for i := range 40 {
		r, err := e.Open(rec.Blob)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		off := int64(i) * int64(len(data)) / 40
		buf := make([]byte, 4<<10)
		if _, err := r.ReadAt(buf, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, data[off:off+int64(len(buf))]) {
			t.Fatalf("reader %d: wrong bytes", i)
		}
		readers = append(readers, r)
		st, err := e.Stats()
		if err != nil {
			t.Fatal(err)
		}
		// One chunk (4 MiB at most, with a buffer's slack) over the budget
		// while the newest is counted before the oldest are dropped.
		if st.ReadCacheBytes > budget+5<<20 {
			t.Fatalf("after %d open downloads the readers keep %d bytes, budget %d", i+1, st.ReadCacheBytes, budget)
		}
	}
	// Every reader, dropped or not, reads the rest of its blob right.
	for i, r := range readers {
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("reader %d after the cache dropped chunks: %d bytes, %v", i, len(got), err)
		}
		r.Close()
	}
	if st, _ := e.Stats(); st.ReadCacheBytes > budget {
		t.Errorf("with every reader closed the cache holds %d bytes, budget %d", st.ReadCacheBytes, budget)
	}
}

// TestReadCache: a record read again is served from memory without
// reading the disk, but only to its own tenant: another tenant's record
// of the same bytes reads them from disk, verified, so its timing shows
// nothing of what the first read. Bytes in memory are trusted: damage to
// the disk after they were read is found by the next read from disk.
func TestReadCache(t *testing.T) {
	dir := t.TempDir()
	e := enginetest.OpenDir(t, dir, engine.Options{})
	data := random(41, 3<<20)
	mine, err := e.PutRecord(ctx, engine.Key{Namespace: "ns", Tenant: "a", Name: "x"}, bytes.NewReader(data), engine.Write{})
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := e.PutRecord(ctx, engine.Key{Namespace: "ns", Tenant: "b", Name: "x"}, bytes.NewReader(data), engine.Write{})
	if err != nil {
		t.Fatal(err)
	}
	read := func(rec engine.Record) ([]byte, error) {
		r, err := e.OpenRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		return io.ReadAll(r)
	}
	chunkReads := func() (disk, hits uint64) {
		st, err := e.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st.ChunkReads, st.ReadCacheHits
	}
	if got, err := read(mine); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("first read: %d bytes, %v", len(got), err)
	}
	disk, hits := chunkReads()
	chunks := int(disk)
	if chunks < 2 {
		t.Fatalf("3 MiB read as %d chunks; want several", chunks)
	}
	if got, err := read(mine); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("second read: %d bytes, %v", len(got), err)
	}
	if d, h := chunkReads(); d != disk || h < hits+uint64(chunks) {
		t.Fatalf("second read of the same record: %d chunks from disk, %d hits; want none, %d", d-disk, h-hits, chunks)
	}

	// Damage every chunk on disk: the cached bytes were verified when
	// read; the other tenant reads the disk and finds the damage.
	segs, _ := filepath.Glob(filepath.Join(dir, "segments", "*.seg"))
	for _, p := range segs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		orig := bytes.Clone(b)
		for off := 0; off+1<<20 <= len(data); off += 1 << 20 {
			if i := bytes.Index(b, data[off:off+64]); i >= 0 {
				b[i] ^= 1
			}
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		// Whole again for the Check at cleanup.
		defer os.WriteFile(p, orig, 0o600)
	}
	if got, err := read(mine); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("cached read after the disk was damaged: %d bytes, %v", len(got), err)
	}
	if _, err := read(theirs); !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("the other tenant's read of damaged bytes: %v; want ErrCorrupt, read from disk", err)
	}
}

// TestBatches: Batches yields what Records yields, n at a time, from start
// (inclusive) and within the prefix, each record once, even when the
// records of earlier batches are deleted between batches.
func TestBatches(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	var all []string
	for i := range 10 {
		name := fmt.Sprintf("d%d/f%02d", i%2, i)
		if _, err := e.PutRecord(ctx, key(name), strings.NewReader(name), engine.Write{}); err != nil {
			t.Fatal(err)
		}
		all = append(all, name)
	}
	slices.Sort(all)
	for _, tc := range []struct {
		prefix, start string
		n             int
		want          []string
		batches       int
	}{
		{"", "", 3, all, 4},
		{"", "", 5, all, 2},
		{"", "", 100, all, 1},
		{"d1/", "", 2, all[5:], 3},
		{"", all[4], 3, all[4:], 2},
		{"d0/", "d0/f04", 1, all[2:5], 3},
		{"zz", "", 3, nil, 0},
	} {
		var got []string
		batches := 0
		for recs, err := range e.Batches("test", "t1", tc.prefix, tc.start, tc.n) {
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) > tc.n {
				t.Fatalf("a batch of %d, over %d", len(recs), tc.n)
			}
			batches++
			for _, r := range recs {
				got = append(got, r.Key.Name)
			}
		}
		if !slices.Equal(got, tc.want) || batches != tc.batches {
			t.Errorf("Batches(%q, %q, %d) = %v in %d batches; want %v in %d", tc.prefix, tc.start, tc.n, got, batches, tc.want, tc.batches)
		}
	}
	// Namespace: every tenant's records, and no other namespace's.
	other := engine.Key{Namespace: "test", Tenant: "t2", Name: "x"}
	if _, err := e.PutRecord(ctx, other, strings.NewReader("x"), engine.Write{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.PutRecord(ctx, engine.Key{Namespace: "test2", Name: "y"}, strings.NewReader("y"), engine.Write{}); err != nil {
		t.Fatal(err)
	}
	var everywhere []string
	for r, err := range e.Namespace("test") {
		if err != nil {
			t.Fatal(err)
		}
		everywhere = append(everywhere, r.Key.Tenant+"/"+r.Key.Name)
	}
	if len(everywhere) != len(all)+1 || everywhere[len(everywhere)-1] != "t2/x" {
		t.Fatalf("Namespace(test) = %v", everywhere)
	}
	if err := e.DeleteRecord(ctx, other); err != nil {
		t.Fatal(err)
	}
	// Deleting each batch as it comes (as DeleteAll does) sees every record once.
	seen := 0
	for recs, err := range e.Batches("test", "t1", "", "", 4) {
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if err := e.DeleteRecord(ctx, r.Key); err != nil {
				t.Fatal(err)
			}
			seen++
		}
	}
	if seen != len(all) {
		t.Fatalf("deleting as it went, Batches yielded %d of %d", seen, len(all))
	}
}
