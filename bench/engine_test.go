package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/internal/chunker"
)

// sizes are the object sizes every Put/Get benchmark runs at.
var sizes = []struct {
	name string
	n    int
}{
	{"4KiB", 4 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
	{"64MiB", 64 << 20},
}

// content fills p with data of the given kind: "random" is
// incompressible (media); "text" is prose-like: words of a 2,000-word
// vocabulary drawn by Zipf's law, with punctuation and line breaks, which
// zstd's fastest level stores in about a third of its bytes. Text is a
// window of a pool made once, a letter changed in every 4 KiB so that no
// two contents share a chunk.
func content(r *rand.ChaCha8, kind string, p []byte) {
	if kind != "text" {
		r.Read(p)
		return
	}
	pool := textPool()
	for n := 0; n < len(p); {
		off := int(r.Uint64() % uint64(len(pool)-1))
		n += copy(p[n:], pool[off:])
	}
	for i := 0; i < len(p); i += 4 << 10 {
		j := i + int(r.Uint64()%uint64(min(4<<10, len(p)-i)))
		p[j] = 'a' + byte(r.Uint64()%26)
	}
}

var textPool = sync.OnceValue(func() []byte {
	r := rand.New(rand.NewPCG(1, 2))
	vocabulary := make([]string, 2000)
	for i := range vocabulary {
		w := make([]byte, 2+r.IntN(8))
		for j := range w {
			w[j] = byte('a' + r.IntN(26))
		}
		vocabulary[i] = string(w)
	}
	z := rand.NewZipf(r, 1.1, 1, uint64(len(vocabulary)-1))
	var b bytes.Buffer
	for b.Len() < 8<<20 {
		b.WriteString(vocabulary[z.Uint64()])
		switch r.IntN(12) {
		case 0:
			b.WriteString(". ")
		case 1:
			b.WriteString(", ")
		case 2:
			b.WriteString("\n")
		default:
			b.WriteString(" ")
		}
	}
	return b.Bytes()
})

func openEngine(b *testing.B) *engine.Engine {
	b.Helper()
	// Benchmarks write gigabytes; the free-space reserve is the engine's
	// business, not what is measured here.
	return enginetest.Open(b, engine.Options{MinFreeBytes: -1})
}

var seq atomic.Uint64

func key() engine.Key {
	return engine.Key{Namespace: "bench", Tenant: "t", Name: fmt.Sprintf("obj-%d", seq.Add(1))}
}

// BenchmarkPut stores new, distinct content as a record, acknowledged
// (segment synced and index committed) before the next starts.
func BenchmarkPut(b *testing.B) {
	for _, kind := range []string{"random", "text"} {
		for _, s := range sizes {
			b.Run(fmt.Sprintf("content=%s/size=%s", kind, s.name), func(b *testing.B) {
				e := openEngine(b)
				r := rand.NewChaCha8([32]byte{1})
				buf := make([]byte, s.n)
				ctx := context.Background()
				b.SetBytes(int64(s.n))
				b.ReportAllocs()
				for b.Loop() {
					content(r, kind, buf)
					if _, err := e.PutRecord(ctx, key(), bytes.NewReader(buf), engine.Write{}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkPutParallel is BenchmarkPut from GOMAXPROCS*par goroutines:
// concurrent uploads share segment syncs (group commit).
func BenchmarkPutParallel(b *testing.B) {
	for _, s := range sizes {
		if s.n > 1<<20 {
			continue // one 64 MiB upload already keeps both cores busy
		}
		for _, par := range []int{1, 32} {
			b.Run(fmt.Sprintf("size=%s/writers=%dxprocs", s.name, par), func(b *testing.B) {
				e := openEngine(b)
				ctx := context.Background()
				var seed atomic.Uint64
				b.SetBytes(int64(s.n))
				b.ReportAllocs()
				b.SetParallelism(par)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					r := rand.NewChaCha8([32]byte{byte(seed.Add(1))})
					buf := make([]byte, s.n)
					for pb.Next() {
						content(r, "random", buf)
						if _, err := e.PutRecord(ctx, key(), bytes.NewReader(buf), engine.Write{}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkPutDuplicate stores the same content under new names: every
// chunk is already stored, so only hashing and the index batch remain;
// unless the engine hides deduplication (hide=true, its default), and
// waits as writing would have taken (engine/dedup.go).
func BenchmarkPutDuplicate(b *testing.B) {
	for _, hide := range []bool{true, false} {
		for _, s := range sizes {
			b.Run(fmt.Sprintf("hide=%v/size=%s", hide, s.name), func(b *testing.B) {
				putDuplicate(b, s.n, hide)
			})
		}
	}
}

func putDuplicate(b *testing.B, size int, hide bool) {
	e := enginetest.Open(b, engine.Options{MinFreeBytes: -1, RevealDedup: !hide})
	buf := make([]byte, size)
	ctx := context.Background()
	// A few new contents first, as a serving store writes: what hiding
	// waits is learnt from them.
	r := rand.NewChaCha8([32]byte{2})
	for range 8 {
		content(r, "random", buf)
		if _, err := e.PutRecord(ctx, key(), bytes.NewReader(buf), engine.Write{}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.PutRecord(ctx, key(), bytes.NewReader(buf), engine.Write{}); err != nil {
			b.Fatal(err)
		}
	}
}

// storeSome puts n distinct blobs of size bytes and returns their IDs.
func storeSome(b *testing.B, e *engine.Engine, kind string, size, n int) []blob.ID {
	b.Helper()
	r := rand.NewChaCha8([32]byte{3})
	buf := make([]byte, size)
	ids := make([]blob.ID, n)
	for i := range ids {
		content(r, kind, buf)
		rec, err := e.PutRecord(context.Background(), key(), bytes.NewReader(buf), engine.Write{})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = rec.Blob
	}
	return ids
}

// objects keeps the stored set for Get benchmarks near 256 MiB.
func objects(size int) int { return max(2, min(1024, (256<<20)/size)) }

// BenchmarkGet reads whole blobs back, every chunk verified.
func BenchmarkGet(b *testing.B) {
	for _, kind := range []string{"random", "text"} {
		for _, s := range sizes {
			b.Run(fmt.Sprintf("content=%s/size=%s", kind, s.name), func(b *testing.B) {
				e := openEngine(b)
				ids := storeSome(b, e, kind, s.n, objects(s.n))
				b.SetBytes(int64(s.n))
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					readAll(b, e, ids[i%len(ids)])
					i++
				}
			})
		}
	}
}

// BenchmarkGetParallel is BenchmarkGet from GOMAXPROCS goroutines.
func BenchmarkGetParallel(b *testing.B) {
	for _, s := range sizes {
		b.Run("size="+s.name, func(b *testing.B) {
			e := openEngine(b)
			ids := storeSome(b, e, "random", s.n, objects(s.n))
			var next atomic.Uint64
			b.SetBytes(int64(s.n))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					readAll(b, e, ids[int(next.Add(1))%len(ids)])
				}
			})
		})
	}
}

// BenchmarkGetRange reads 64 KiB at a random offset of a 64 MiB blob: one
// chunk (or two) read and verified, not the blob.
func BenchmarkGetRange(b *testing.B) {
	e := openEngine(b)
	ids := storeSome(b, e, "random", 64<<20, 2)
	r, err := e.Open(ids[0])
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	rnd := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		off := rnd.Int64N(r.Size() - int64(len(buf)))
		if _, err := r.ReadAt(buf, off); err != nil {
			b.Fatal(err)
		}
	}
}

func readAll(b *testing.B, e *engine.Engine, id blob.ID) {
	r, err := e.Open(id)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	if _, err := io.Copy(io.Discard, r); err != nil {
		b.Fatal(err)
	}
}

// The Raw benchmarks measure the limits the engine stands on, so its own
// figures can be read against them.

func BenchmarkRawBLAKE3(b *testing.B) {
	buf := make([]byte, 1<<20)
	content(rand.NewChaCha8([32]byte{4}), "random", buf)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		blob.Sum(buf)
	}
}

func BenchmarkRawChunker(b *testing.B) {
	buf := make([]byte, 64<<20)
	content(rand.NewChaCha8([32]byte{5}), "random", buf)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		c := chunker.New(bytes.NewReader(buf), chunker.Params{}.WithDefaults())
		for {
			_, err := c.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		c.Close()
	}
}

// BenchmarkRawAppendSync is the floor under a small acknowledged Put: one
// 4 KiB append and fdatasync on the benchmark's temporary folder.
func BenchmarkRawAppendSync(b *testing.B) {
	fs := vfs.Default
	f, err := fs.Create(filepath.Join(b.TempDir(), "raw"), vfs.WriteCategoryUnspecified)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.SyncData(); err != nil {
			b.Fatal(err)
		}
	}
}
