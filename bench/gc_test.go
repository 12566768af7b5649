package bench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
)

// gcOptions: 8 MiB segments, so 64 MiB of data makes eight to compact.
func gcOptions() engine.Options {
	return engine.Options{SegmentSize: 8 << 20, MinFreeBytes: -1, GCGrace: -1, CompactRatio: 0.6}
}

// fillHalfGarbage stores n objects of size bytes and deletes every other
// one, leaving every sealed segment about half garbage.
func fillHalfGarbage(b *testing.B, e *engine.Engine, ns string, n, size int) {
	b.Helper()
	r := rand.NewChaCha8([32]byte{byte(n), byte(size)})
	buf := make([]byte, size)
	for i := range n {
		content(r, "random", buf)
		if _, err := e.PutRecord(context.Background(), engine.Key{Namespace: ns, Tenant: "t", Name: fmt.Sprint(i)}, bytes.NewReader(buf), engine.Write{}); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < n; i += 2 {
		if err := e.DeleteRecord(context.Background(), engine.Key{Namespace: ns, Tenant: "t", Name: fmt.Sprint(i)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompaction times one GC pass over 64 MiB of segments that are
// half garbage, reporting the live bytes copied per second and the write
// amplification (bytes copied per byte of garbage given back).
func BenchmarkCompaction(b *testing.B) {
	b.Run("garbage=50%/object=64KiB", func(b *testing.B) {
		var copied, reclaimed int64
		var elapsed time.Duration
		for b.Loop() {
			b.StopTimer()
			e := enginetest.Open(b, gcOptions())
			fillHalfGarbage(b, e, "c", 1024, 64<<10)
			b.StartTimer()
			start := time.Now()
			rep, err := e.GC(context.Background(), false)
			elapsed += time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
			if rep.Compacted == 0 {
				b.Fatalf("nothing compacted: %+v", rep)
			}
			copied += rep.CopiedBytes
			reclaimed += rep.Reclaimed
		}
		b.ReportMetric(float64(copied)/elapsed.Seconds()/1e6, "copied-MB/s")
		b.ReportMetric(float64(copied)/float64(reclaimed-copied), "write-amp")
		b.ReportMetric(float64(reclaimed-copied)/float64(b.N), "freed-B/op")
	})
}

// BenchmarkLatencyDuringCompaction measures 64 KiB Put and Get latency
// (p50, p99) with the store idle and while another writer makes garbage
// and GC compacts it in a loop.
func BenchmarkLatencyDuringCompaction(b *testing.B) {
	for _, state := range []string{"idle", "compacting"} {
		for _, op := range []string{"put", "get"} {
			b.Run(fmt.Sprintf("state=%s/op=%s/size=64KiB", state, op), func(b *testing.B) {
				e := enginetest.Open(b, gcOptions())
				ctx := context.Background()
				r := rand.NewChaCha8([32]byte{3})
				buf := make([]byte, 64<<10)
				var ids []engine.Record
				for i := range 256 {
					content(r, "random", buf)
					rec, err := e.PutRecord(ctx, engine.Key{Namespace: "l", Tenant: "t", Name: fmt.Sprint(i)}, bytes.NewReader(buf), engine.Write{})
					if err != nil {
						b.Fatal(err)
					}
					ids = append(ids, rec)
				}
				stop := make(chan struct{})
				var wg sync.WaitGroup
				var passes, compacted int
				if state == "compacting" {
					wg.Go(func() {
						for round := 0; ; round++ {
							select {
							case <-stop:
								return
							default:
							}
							fillHalfGarbage(b, e, fmt.Sprintf("g%d", round), 256, 64<<10)
							rep, err := e.GC(ctx, false)
							if err != nil {
								b.Error(err)
								return
							}
							passes++
							compacted += rep.Compacted
						}
					})
				}
				lat := make([]time.Duration, 0, 1<<16)
				rd := make([]byte, 64<<10)
				i := 0
				b.SetBytes(64 << 10)
				for b.Loop() {
					start := time.Now()
					if op == "put" {
						content(r, "random", buf)
						if _, err := e.PutRecord(ctx, engine.Key{Namespace: "l", Tenant: "t", Name: fmt.Sprint("p", i)}, bytes.NewReader(buf), engine.Write{}); err != nil {
							b.Fatal(err)
						}
					} else {
						rc, err := e.Open(ids[i%len(ids)].Blob)
						if err != nil {
							b.Fatal(err)
						}
						if _, err := rc.ReadAt(rd, 0); err != nil {
							b.Fatal(err)
						}
						rc.Close()
					}
					lat = append(lat, time.Since(start))
					i++
				}
				close(stop)
				wg.Wait()
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
				if state == "compacting" {
					b.ReportMetric(float64(compacted), "segments-compacted")
				}
			})
		}
	}
}
