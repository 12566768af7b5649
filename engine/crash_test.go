package engine_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
)

// smallOptions make many chunks and segments out of little data, so that a
// short workload crosses chunk and segment boundaries often.
func smallOptions(fs vfs.FS) engine.Options {
	return engine.Options{
		FS:          fs,
		SegmentSize: 96 << 10,
		MinChunk:    1 << 10, AvgChunk: 4 << 10, MaxChunk: 16 << 10,
		MinFreeBytes: -1,
		GCGrace:      -1,
		CompactRatio: 0.8,
	}
}

// crashModel is what the workload knows of the store: the state of each key
// as last acknowledged, and the operation in flight on it, if any. A key's
// content after a crash must be its acknowledged state or, if an operation
// was in flight, that operation's result.
type crashModel struct {
	mu       sync.Mutex
	acked    map[string][]byte // nil: absent
	inflight map[string]op
}

type op struct {
	del  bool
	data []byte
}

func (m *crashModel) begin(key string, o op) {
	m.mu.Lock()
	m.inflight[key] = o
	m.mu.Unlock()
}

func (m *crashModel) end(key string, o op, ok bool) {
	m.mu.Lock()
	delete(m.inflight, key)
	if ok {
		if o.del {
			delete(m.acked, key)
		} else {
			m.acked[key] = o.data
		}
	}
	m.mu.Unlock()
}

// contentPool is a few contents that share most of their bytes, so
// uploads deduplicate whole blobs and chunks across goroutines.
func contentPool(seed uint64) [][]byte {
	base := random(seed, 64<<10)
	var pool [][]byte
	for i := range 6 {
		n := 1 + int(seed*7+uint64(i)*13_331)%(len(base)-1)
		c := bytes.Clone(base[:n])
		if i%2 == 1 {
			c = append(random(seed+uint64(i), 1+i*97), c...) // shifted
		}
		pool = append(pool, c)
	}
	pool = append(pool, text(seed, 40<<10), []byte{})
	return pool
}

// TestCrash runs a concurrent workload of uploads, overwrites and deletes on
// a crashable in-memory file system, takes a crash image at a random
// moment (keeping none, half, or all of the unsynced writes), reopens the
// image and verifies that every acknowledged write is there byte for byte,
// that nothing else is, and that Check passes. Rerun one case with
// -run 'TestCrash/seed=N/'.
func TestCrash(t *testing.T) {
	seeds := 240
	if testing.Short() {
		seeds = 30
	}
	for seed := range uint64(seeds) {
		unsynced := []int{0, 50, 100}[seed%3]
		t.Run(fmt.Sprintf("seed=%d/unsynced=%d", seed, unsynced), func(t *testing.T) {
			t.Parallel()
			crashOnce(t, seed, unsynced)
		})
	}
}

func crashOnce(t *testing.T, seed uint64, unsynced int) {
	rng := rand.New(rand.NewPCG(seed, 1))
	fs := vfs.NewCrashableMem()
	opts := smallOptions(fs)
	opts.Logger = enginetest.Logger(t)
	e, err := engine.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	pool := contentPool(seed)
	m := &crashModel{acked: map[string][]byte{}, inflight: map[string]op{}}

	const workers, opsPerWorker = 4, 24
	crashAt := int64(rng.IntN(workers * opsPerWorker))
	var done atomic.Int64
	var crashed sync.Once
	var image *vfs.MemFS
	var model map[string][]byte
	var inflight map[string]op
	crash := func() {
		crashed.Do(func() {
			m.mu.Lock()
			defer m.mu.Unlock()
			image = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(seed, 2))})
			model, inflight = maps.Clone(m.acked), maps.Clone(m.inflight)
		})
	}

	// Half the seeds run GC and compaction in a loop during the workload,
	// so the crash lands in the middle of releases, copies, repoints and
	// segment removals too.
	stopGC := make(chan struct{})
	var gcWG sync.WaitGroup
	if seed%2 == 0 {
		gcWG.Go(func() {
			for {
				select {
				case <-stopGC:
					return
				default:
				}
				if _, err := e.GC(ctx, false); err != nil {
					t.Errorf("GC: %v", err)
					return
				}
			}
		})
	}
	var wg sync.WaitGroup
	for w := range workers {
		wrng := rand.New(rand.NewPCG(seed, uint64(10+w)))
		wg.Go(func() {
			for range opsPerWorker {
				key := fmt.Sprintf("w%d/%d", w, wrng.IntN(5))
				k := engine.Key{Namespace: "crash", Tenant: "t", Name: key}
				var o op
				var err error
				if wrng.IntN(5) == 0 {
					o = op{del: true}
					m.begin(key, o)
					err = e.DeleteRecord(ctx, k)
					if errors.Is(err, engine.ErrNotFound) {
						err = nil
					}
				} else {
					o = op{data: pool[wrng.IntN(len(pool))]}
					m.begin(key, o)
					_, err = e.PutRecord(ctx, k, bytes.NewReader(o.data), engine.Write{ContentType: "application/octet-stream"})
				}
				if err != nil {
					t.Errorf("%s: %v", key, err)
				}
				m.end(key, o, err == nil)
				if done.Add(1) == crashAt {
					crash()
				}
			}
		})
	}
	wg.Wait()
	crash()
	close(stopGC)
	gcWG.Wait()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// Recover from the image, twice: recovery itself must leave a state
	// that recovers.
	for round := range 2 {
		opts := smallOptions(image)
		re := enginetest.OpenDir(t, "data", opts)
		verifyModel(t, re, model, inflight)
		if err := re.Check(ctx); err != nil {
			t.Fatalf("round %d: Check after recovery: %v", round, err)
		}
		// No dead space is leaked for good: GC passes converge to a store
		// with nothing left to reclaim, and lose nothing.
		for pass := 0; ; pass++ {
			rep, err := re.GC(ctx, false)
			if err != nil {
				t.Fatalf("round %d: GC after recovery: %v", round, err)
			}
			if rep.Compacted == 0 && rep.CopiedChunks == 0 {
				break
			}
			if pass == 5 {
				t.Fatalf("round %d: GC still compacting after %d passes: %+v", round, pass, rep)
			}
		}
		if dry, _ := re.GC(ctx, true); dry.Reclaimable != 0 {
			t.Fatalf("round %d: %d bytes still reclaimable after GC converged", round, dry.Reclaimable)
		}
		verifyModel(t, re, model, inflight)
		// The store keeps working: a new write lands after the recovered tail.
		data := pool[round]
		k := engine.Key{Namespace: "crash", Tenant: "t", Name: fmt.Sprintf("after/%d", round)}
		if _, err := re.PutRecord(ctx, k, bytes.NewReader(data), engine.Write{}); err != nil {
			t.Fatalf("round %d: write after recovery: %v", round, err)
		}
		model[k.Name] = data
		if err := re.Close(); err != nil {
			t.Fatal(err)
		}
		image = image.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	}
}

// verifyModel checks that each key holds its acknowledged content or the
// result of its in-flight operation, byte for byte, and that no other key
// exists.
func verifyModel(t *testing.T, e *engine.Engine, acked map[string][]byte, inflight map[string]op) {
	t.Helper()
	seen := map[string]bool{}
	for rec, err := range e.Records("crash", "t", "", "") {
		if err != nil {
			t.Fatal(err)
		}
		name := rec.Key.Name
		seen[name] = true
		got := readAll(t, e, rec.Blob)
		want, ok := acked[name]
		o, busy := inflight[name]
		switch {
		case ok && bytes.Equal(got, want):
		case busy && !o.del && bytes.Equal(got, o.data):
		default:
			t.Errorf("%s: %d bytes after recovery match neither the acknowledged write (%v, %d bytes) nor the one in flight (%v)", name, len(got), ok, len(want), busy)
		}
		if rec.Size != int64(len(got)) {
			t.Errorf("%s: record says %d bytes, read %d", name, rec.Size, len(got))
		}
	}
	for name := range acked {
		if !seen[name] {
			if o, busy := inflight[name]; !busy || !o.del {
				t.Errorf("%s: acknowledged, lost after recovery", name)
			}
		}
	}
}

// TestCrashSweep crashes while the expiry sweeper and GC delete and
// compact: after recovery every record that was not due is intact, the due
// ones are gone or whole, Check passes, and sweeping and GC again leave
// nothing due and nothing reclaimable.
func TestCrashSweep(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(seed, 7))
			var now atomic.Int64
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			now.Store(t0.UnixNano())
			fs := vfs.NewCrashableMem()
			opts := smallOptions(fs)
			opts.Now = func() time.Time { return time.Unix(0, now.Load()) }
			opts.Logger = enginetest.Logger(t)
			e, err := engine.Open("data", opts)
			if err != nil {
				t.Fatal(err)
			}
			pool := contentPool(seed)
			kept := map[string][]byte{}
			due := map[string][]byte{}
			for i := range 40 {
				name := fmt.Sprint(i)
				data := pool[rng.IntN(len(pool))]
				w := engine.Write{}
				if rng.IntN(2) == 0 {
					w.Expires = t0.Add(time.Minute)
					due[name] = data
				} else {
					kept[name] = data
				}
				if _, err := e.PutRecord(ctx, engine.Key{Namespace: "crash", Tenant: "t", Name: name}, bytes.NewReader(data), w); err != nil {
					t.Fatal(err)
				}
			}
			now.Store(t0.Add(2 * time.Minute).UnixNano())
			done := make(chan struct{})
			go func() {
				defer close(done)
				if _, err := e.Expire(ctx); err != nil {
					t.Errorf("Expire: %v", err)
				}
				if _, err := e.GC(ctx, false); err != nil {
					t.Errorf("GC: %v", err)
				}
			}()
			for range rng.IntN(2000) {
				runtime.Gosched()
			}
			image := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(seed, 8))})
			<-done
			e.Close()

			opts.FS = image
			re := enginetest.OpenDir(t, "data", opts)
			// Expired records are not served whether or not the sweep got
			// to them; the rest are intact.
			verifyModel(t, re, kept, nil)
			if err := re.Check(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := re.Expire(ctx); err != nil {
				t.Fatal(err)
			}
			for pass := 0; ; pass++ {
				rep, err := re.GC(ctx, false)
				if err != nil {
					t.Fatal(err)
				}
				if rep.Compacted == 0 && rep.CopiedChunks == 0 {
					break
				}
				if pass == 5 {
					t.Fatalf("GC not converging: %+v", rep)
				}
			}
			st, _ := re.Stats()
			if st.Records != int64(len(kept)) {
				t.Fatalf("%d records after the sweep, want %d", st.Records, len(kept))
			}
			if next, ok, _ := re.NextExpiry(); ok {
				t.Fatalf("an expiry entry is left at %v", next)
			}
			verifyModel(t, re, kept, nil)
		})
	}
}
