package engine_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
)

// gcOptions make small segments on the real disk, with no grace period.
func gcOptions() engine.Options {
	return engine.Options{
		SegmentSize: 256 << 10,
		MinChunk:    4 << 10, AvgChunk: 16 << 10, MaxChunk: 64 << 10,
		MinFreeBytes: -1,
		GCGrace:      -1,
	}
}

// diskBytes is the size of the segment files under dir.
func diskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "segments", "*.seg"))
	var n int64
	for _, p := range segs {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

func readRecord(t *testing.T, e *engine.Engine, k engine.Key) []byte {
	t.Helper()
	rec, err := e.GetRecord(k)
	if err != nil {
		t.Fatalf("GetRecord(%s): %v", k, err)
	}
	r, err := e.Open(rec.Blob)
	if err != nil {
		t.Fatalf("Open(%s): %v", k, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", k, err)
	}
	return b
}

// TestGCReclaims deletes most of a store and checks that a GC pass gives
// the space back, keeps every live record byte-exact, and that a second
// pass has nothing left to do.
func TestGCReclaims(t *testing.T) {
	dir := t.TempDir()
	e := enginetest.OpenDir(t, dir, gcOptions())
	contents := map[string][]byte{}
	for i := range 60 {
		k := engine.Key{Namespace: "gc", Tenant: "t", Name: fmt.Sprint(i)}
		data := random(uint64(100+i), 40<<10+i*997)
		if _, err := e.PutRecord(ctx, k, bytes.NewReader(data), engine.Write{}); err != nil {
			t.Fatal(err)
		}
		contents[k.Name] = data
	}
	for i := range 60 {
		if i%3 != 0 {
			k := engine.Key{Namespace: "gc", Tenant: "t", Name: fmt.Sprint(i)}
			if err := e.DeleteRecord(ctx, k); err != nil {
				t.Fatal(err)
			}
			delete(contents, k.Name)
		}
	}
	before, _ := e.Stats()
	disk := diskBytes(t, dir)
	dry, err := e.GC(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if dry.Reclaimable <= 0 || dry.Compacted != 0 || diskBytes(t, dir) != disk {
		t.Fatalf("dry run: %+v, disk %d → %d", dry, disk, diskBytes(t, dir))
	}
	rep, err := e.GC(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := e.Stats()
	t.Logf("GC: %+v; dead bytes %d → %d; disk %d → %d", rep, before.DeadBytes, after.DeadBytes, disk, diskBytes(t, dir))
	if rep.Compacted == 0 || rep.Reclaimed <= rep.CopiedBytes {
		t.Fatalf("GC compacted nothing useful: %+v", rep)
	}
	if got := diskBytes(t, dir); got > disk-rep.Reclaimed+rep.CopiedBytes+segmentSlack || got >= disk/2 {
		t.Errorf("disk %d → %d after reclaiming %d", disk, got, rep.Reclaimed)
	}
	if after.DeadBytes >= before.DeadBytes/3 {
		t.Errorf("dead bytes %d → %d", before.DeadBytes, after.DeadBytes)
	}
	for name, want := range contents {
		if got := readRecord(t, e, engine.Key{Namespace: "gc", Tenant: "t", Name: name}); !bytes.Equal(got, want) {
			t.Fatalf("record %s changed across GC", name)
		}
	}
	if err := e.Check(ctx); err != nil {
		t.Fatal(err)
	}
	// A segment sealed during a pass (it was active when the pass began)
	// waits for the next; passes converge.
	for pass := 2; ; pass++ {
		again, err := e.GC(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if again.Compacted == 0 && again.CopiedChunks == 0 {
			break
		}
		if pass == 4 {
			t.Fatalf("pass %d still compacting: %+v", pass, again)
		}
	}
	// The store survives a reopen after compaction.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = enginetest.OpenDir(t, dir, gcOptions())
	for name, want := range contents {
		if got := readRecord(t, e, engine.Key{Namespace: "gc", Tenant: "t", Name: name}); !bytes.Equal(got, want) {
			t.Fatalf("record %s changed across reopen", name)
		}
	}
}

// segmentSlack allows for the active segment's preallocation.
const segmentSlack = 2 << 20

// TestGCZeroReferences: content stored with no record is kept for the
// grace period; content an open reader pins outlives its record until
// the reader closes.
func TestGCZeroReferences(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	opts := gcOptions()
	opts.GCGrace = time.Hour
	opts.Now = func() time.Time { return time.Unix(0, now.Load()) }
	e := enginetest.Open(t, opts)

	id, _, err := e.Put(ctx, bytes.NewReader(random(1, 100<<10)))
	if err != nil {
		t.Fatal(err)
	}
	if rep, _ := e.GC(ctx, false); rep.ReleasedBlobs != 0 {
		t.Fatalf("released an unreferenced blob inside its grace period: %+v", rep)
	}
	if _, err := e.Stat(id); err != nil {
		t.Fatal(err)
	}
	now.Add(int64(2 * time.Hour))
	if rep, _ := e.GC(ctx, false); rep.ReleasedBlobs != 1 {
		t.Fatalf("grace over: %+v, want one blob released", rep)
	}
	if _, err := e.Stat(id); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("Stat after release: %v", err)
	}

	data := random(2, 300<<10)
	k := engine.Key{Namespace: "gc", Tenant: "t", Name: "pinned"}
	rec, err := e.PutRecord(ctx, k, bytes.NewReader(data), engine.Write{})
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Open(rec.Blob)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteRecord(ctx, k); err != nil {
		t.Fatal(err)
	}
	now.Add(int64(2 * time.Hour))
	if rep, _ := e.GC(ctx, false); rep.ReleasedBlobs != 0 {
		t.Fatalf("released a blob an open reader pins: %+v", rep)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("reading a pinned blob after its record was deleted: %v", err)
	}
	r.Close()
	if rep, _ := e.GC(ctx, false); rep.ReleasedBlobs != 1 {
		t.Fatalf("after the reader closed: %+v, want the blob released", rep)
	}
	if e.Shared() {
		// Several nodes: its chunks, unreferenced since, a pass later.
		now.Add(int64(2 * time.Hour))
		e.GC(ctx, false)
	}
	st, _ := e.Stats()
	if st.Blobs != 0 || st.Chunks != 0 {
		t.Fatalf("after release: %d blobs, %d chunks", st.Blobs, st.Chunks)
	}
}

// TestExpiry: a record stops being served at its expiry time and the
// sweeper deletes it then, from the expiry index, giving its space back.
func TestExpiry(t *testing.T) {
	var now atomic.Int64
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now.Store(t0.UnixNano())
	opts := gcOptions()
	opts.Now = func() time.Time { return time.Unix(0, now.Load()) }
	e := enginetest.Open(t, opts)
	put := func(name string, expires time.Time) {
		k := engine.Key{Namespace: "exp", Tenant: "t", Name: name}
		if _, err := e.PutRecord(ctx, k, bytes.NewReader(random(uint64(len(name)), 50<<10)), engine.Write{Expires: expires}); err != nil {
			t.Fatal(err)
		}
	}
	put("soon", t0.Add(10*time.Second))
	put("later", t0.Add(time.Hour))
	put("never", time.Time{})
	put("moved", t0.Add(10*time.Second))
	put("moved", t0.Add(2*time.Hour)) // rewritten with a later expiry
	if next, ok, _ := e.NextExpiry(); !ok || !next.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("NextExpiry = %v, %v", next, ok)
	}
	if n, _ := e.Expire(ctx); n != 0 {
		t.Fatalf("expired %d before time", n)
	}
	now.Store(t0.Add(10 * time.Second).UnixNano())
	if _, err := e.GetRecord(engine.Key{Namespace: "exp", Tenant: "t", Name: "soon"}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("GetRecord at its expiry: %v, want ErrNotFound", err)
	}
	names := func() []string {
		var out []string
		for r, err := range e.Records("exp", "t", "", "") {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r.Key.Name)
		}
		return out
	}
	if got := fmt.Sprint(names()); got != "[later moved never]" {
		t.Fatalf("listing at expiry: %s", got)
	}
	var notified []string
	e.OnExpire("exp", func(r engine.Record) { notified = append(notified, r.Key.Name) })
	if n, err := e.Expire(ctx); n != 1 || err != nil {
		t.Fatalf("Expire = %d, %v; want 1", n, err)
	}
	if fmt.Sprint(notified) != "[soon]" {
		t.Fatalf("OnExpire saw %q", notified)
	}
	now.Store(t0.Add(3 * time.Hour).UnixNano())
	if n, err := e.Expire(ctx); n != 2 || err != nil {
		t.Fatalf("Expire = %d, %v; want 2", n, err)
	}
	if got := fmt.Sprint(names()); got != "[never]" {
		t.Fatalf("left: %s", got)
	}
	st, _ := e.Stats()
	if st.Records != 1 || st.Blobs != 1 && !e.Shared() || st.Expired != 3 {
		t.Fatalf("after expiry: %+v", st)
	}
}

// TestGCRaces runs 64 goroutines uploading and deleting a few shared
// contents while GC and compaction run in a loop; afterwards every
// acknowledged, undeleted record is byte-exact and Check passes. Run it
// with -race.
func TestGCRaces(t *testing.T) {
	opts := gcOptions()
	opts.SegmentSize = 128 << 10
	opts.CompactRatio = 0.9
	e := enginetest.Open(t, opts)
	base := random(7, 120<<10)
	pool := [][]byte{base, base[:70<<10], append(random(8, 333), base...), random(9, 20<<10), {}}

	stop := make(chan struct{})
	var gcWG sync.WaitGroup
	var passes, compacted atomic.Int64
	gcWG.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			rep, err := e.GC(ctx, false)
			if err != nil {
				t.Errorf("GC: %v", err)
				return
			}
			passes.Add(1)
			compacted.Add(int64(rep.Compacted))
		}
	})

	const workers, ops = 64, 12
	var wg sync.WaitGroup
	final := make([]map[string][]byte, workers)
	for w := range workers {
		rng := rand.New(rand.NewPCG(uint64(w), 3))
		final[w] = map[string][]byte{}
		wg.Go(func() {
			for range ops {
				k := engine.Key{Namespace: "race", Tenant: "t", Name: fmt.Sprintf("w%d/%d", w, rng.IntN(3))}
				if rng.IntN(3) == 0 {
					err := e.DeleteRecord(ctx, k)
					if err != nil && !errors.Is(err, engine.ErrNotFound) {
						t.Errorf("delete %s: %v", k.Name, err)
					}
					delete(final[w], k.Name)
					continue
				}
				data := pool[rng.IntN(len(pool))]
				if rng.IntN(3) == 0 {
					// Unique content, soon overwritten or deleted: garbage
					// for compaction to collect.
					data = random(rng.Uint64(), 30<<10)
				}
				if _, err := e.PutRecord(ctx, k, bytes.NewReader(data), engine.Write{}); err != nil {
					t.Errorf("put %s: %v", k.Name, err)
					continue
				}
				final[w][k.Name] = data
				// Read something back while GC runs.
				if got := readRecord(t, e, k); !bytes.Equal(got, data) {
					t.Errorf("%s read back other bytes", k.Name)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	gcWG.Wait()
	if _, err := e.GC(ctx, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d GC passes compacted %d segments during the workload", passes.Load(), compacted.Load())
	n := 0
	for w := range workers {
		for name, want := range final[w] {
			if got := readRecord(t, e, engine.Key{Namespace: "race", Tenant: "t", Name: name}); !bytes.Equal(got, want) {
				t.Errorf("%s: wrong bytes after the race", name)
			}
			n++
		}
	}
	count := 0
	for _, err := range e.Records("race", "t", "", "") {
		if err != nil {
			t.Fatal(err)
		}
		count++
	}
	if count != n {
		t.Errorf("%d records stored, the model has %d", count, n)
	}
	if err := e.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if compacted.Load() == 0 {
		t.Error("no segment was compacted during the workload: the test proved nothing")
	}
}

// TestScrub flips a byte of one chunk on disk: scrub finds that chunk and
// names every record whose content includes it, and nothing else.
func TestScrub(t *testing.T) {
	dir := t.TempDir()
	e, err := engine.Open(dir, gcOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	victim := random(50, 200<<10)
	keys := []string{"a", "b-same-bytes", "c"}
	for i, name := range keys {
		data := victim
		if i == 2 {
			data = random(51, 200<<10)
		}
		if _, err := e.PutRecord(ctx, engine.Key{Namespace: "s", Tenant: "t", Name: name}, bytes.NewReader(data), engine.Write{}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := e.Scrub(ctx, 1)
	if err != nil || len(rep.Corrupt) != 0 || rep.Bytes != 400<<10 {
		t.Fatalf("clean scrub: %+v, %v", rep, err)
	}
	if half, err := e.Scrub(ctx, 0.5); err != nil || half.Chunks >= rep.Chunks || half.Chunks == 0 {
		t.Errorf("scrub of half: %d of %d chunks, %v", half.Chunks, rep.Chunks, err)
	}
	if _, err := e.Scrub(ctx, 0); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("scrub sample 0: %v", err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "segments", "*.seg"))
	flipped := false
	needle := victim[100<<10 : 100<<10+64]
	for _, p := range segs {
		b, _ := os.ReadFile(p)
		if i := bytes.Index(b, needle); i >= 0 {
			b[i] ^= 1
			os.WriteFile(p, b, 0o644)
			flipped = true
		}
	}
	if !flipped {
		t.Fatal("victim bytes not found on disk")
	}
	rep, err = e.Scrub(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var damaged []string
	for _, k := range rep.Damaged {
		damaged = append(damaged, k.Name)
	}
	if len(rep.Corrupt) != 1 || fmt.Sprint(damaged) != "[a b-same-bytes]" {
		t.Fatalf("scrub after a flip: corrupt %v, damaged %v", rep.Corrupt, damaged)
	}
	if st, _ := e.Stats(); st.ScrubCorrupt != 1 || st.ScrubRuns != 3 {
		t.Errorf("stats: %d corrupt, %d runs", st.ScrubCorrupt, st.ScrubRuns)
	}
}

// TestOrphansReclaimed: content appended and synced but never indexed (an
// upload abandoned before its record was committed, as after a crash
// between the segment sync and the index commit) is dead space that GC
// gives back once its segment is sealed.
func TestOrphansReclaimed(t *testing.T) {
	dir := t.TempDir()
	e := enginetest.OpenDir(t, dir, gcOptions())
	for i := range 10 {
		up, err := e.Upload(ctx, bytes.NewReader(random(uint64(300+i), 60<<10)))
		if err != nil {
			t.Fatal(err)
		}
		up.Close() // never referenced
	}
	keep := random(399, 300<<10) // fills and seals the orphans' segments
	k := engine.Key{Namespace: "o", Tenant: "t", Name: "keep"}
	if _, err := e.PutRecord(ctx, k, bytes.NewReader(keep), engine.Write{}); err != nil {
		t.Fatal(err)
	}
	before, _ := e.Stats()
	if before.DeadBytes < 600<<10 {
		t.Fatalf("orphans not counted dead: %+v", before)
	}
	rep, err := e.GC(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := e.Stats()
	if rep.Reclaimed-rep.CopiedBytes < 400<<10 || after.DeadBytes > before.DeadBytes-400<<10 {
		t.Fatalf("orphans not reclaimed: %+v; dead %d → %d", rep, before.DeadBytes, after.DeadBytes)
	}
	if !bytes.Equal(readRecord(t, e, k), keep) {
		t.Fatal("the kept record changed")
	}
}
