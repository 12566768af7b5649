package bench

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
)

// cpuTime is the CPU the process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU per operation since start: client
// and server share the process, so it is read beside a baseline measured
// with the same client.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

// readCase is one row of the read table: a method and, for a range, the
// part of each object asked for.
type readCase struct {
	name   string
	method string
	size   int
	// rng, when not zero, is the length of a range at a random offset.
	rng int
	// cold: cairn's read cache is too small to hold the objects, so each
	// read is of the disk (the page cache), verified.
	cold bool
	// kind of content, as content makes it: "random" or "text" (stored
	// compressed, so a cold read of it also decompresses).
	kind string
}

var readCases = []readCase{
	{"GET/size=4KiB", "GET", 4 << 10, 0, false, "random"},
	{"GET/size=64KiB", "GET", 64 << 10, 0, false, "random"},
	{"GET/size=1MiB", "GET", 1 << 20, 0, false, "random"},
	{"GET/size=64MiB", "GET", 64 << 20, 0, false, "random"},
	{"range/size=1MiB/range=256KiB", "GET", 1 << 20, 256 << 10, false, "random"},
	{"range/size=64MiB/range=1MiB", "GET", 64 << 20, 1 << 20, false, "random"},
	{"HEAD/size=64KiB", "HEAD", 64 << 10, 0, false, "random"},
	{"text/GET/size=1MiB", "GET", 1 << 20, 0, false, "text"},
	{"cold/GET/size=1MiB", "GET", 1 << 20, 0, true, "random"},
	{"cold/range/size=1MiB/range=256KiB", "GET", 1 << 20, 256 << 10, true, "random"},
	{"cold/range/size=64MiB/range=1MiB", "GET", 64 << 20, 1 << 20, true, "random"},
	{"cold/text/GET/size=1MiB", "GET", 1 << 20, 0, true, "text"},
}

// BenchmarkHTTPRead reads stored objects over loopback with 8 concurrent
// clients, each GET's bytes compared by the client with what was stored,
// through cairn's cloud storage API and, as the ceiling, through a plain
// net/http handler serving the same bytes from memory with
// http.ServeContent. Read each row as server=cairn against server=ceiling
// of the same run (throughput, and cpu-µs/op, the whole process's CPU:
// the client's share is the same in both). The objects fit in cairn's
// default read cache, but for the cold rows, where it holds 4 MiB: each
// read is of the segment files (in the page cache) and verified.
func BenchmarkHTTPRead(b *testing.B) {
	const clients = 8
	for _, c := range readCases {
		n := max(2, min(64, (128<<20)/c.size)) // within the default read cache
		objs := make([][]byte, n)
		r := rand.NewChaCha8([32]byte{7})
		for i := range objs {
			objs[i] = make([]byte, c.size)
			content(r, c.kind, objs[i])
		}
		for _, server := range []string{"cairn", "ceiling"} {
			b.Run(fmt.Sprintf("%s/server=%s", c.name, server), func(b *testing.B) {
				var h *httpEnv
				if server == "cairn" {
					var opts engine.Options
					if c.cold {
						opts.ReadCache = 4 << 20
					}
					h = newHTTPEnvWith(b, opts)
					for i, p := range objs {
						h.do(b, "POST", fmt.Sprintf("/public/1/f%d", i), p, 201)
					}
				} else {
					h = ceiling(b, objs)
				}
				h.auth = "" // public media: read as a browser would, without a token
				readLoad(b, h, c, objs, clients)
			})
		}
	}
}

// ceiling serves objs at /public/1/f{i} from memory, as cairn would
// without an index, a disk or verification.
func ceiling(b *testing.B, objs [][]byte) *httpEnv {
	mod := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("/public/1/{name}", func(w http.ResponseWriter, r *http.Request) {
		var i int
		if _, err := fmt.Sscanf(r.PathValue("name"), "f%d", &i); err != nil || i >= len(objs) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", fmt.Sprintf(`"%064x"`, i))
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", mod, bytes.NewReader(objs[i]))
	})
	ts := httptest.NewServer(mux)
	b.Cleanup(ts.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	return &httpEnv{url: ts.URL, client: &http.Client{Transport: tr}}
}

func readLoad(b *testing.B, h *httpEnv, c readCase, objs [][]byte, clients int) {
	var next atomic.Uint64
	if c.rng > 0 {
		b.SetBytes(int64(c.rng))
	} else if c.method == "GET" {
		b.SetBytes(int64(c.size))
	}
	b.ReportAllocs()
	b.SetParallelism((clients + 1) / 2) // GOMAXPROCS is 2 on the reference machine
	start := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rnd := rand.New(rand.NewPCG(next.Add(1), 1))
		buf := make([]byte, c.size)
		for pb.Next() {
			i := int(next.Add(1) % uint64(len(objs)))
			req, _ := http.NewRequest(c.method, fmt.Sprintf("%s/public/1/f%d", h.url, i), nil)
			want, code := objs[i], http.StatusOK
			if c.rng > 0 {
				off := rnd.IntN(c.size - c.rng + 1)
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+c.rng-1))
				want, code = want[off:off+c.rng], http.StatusPartialContent
			}
			res, err := h.client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			got := buf[:0]
			for {
				m, err := res.Body.Read(buf[len(got):cap(buf)])
				got = buf[:len(got)+m]
				if err != nil || len(got) == cap(buf) {
					break
				}
			}
			extra, _ := io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != code {
				b.Errorf("%s: %d, want %d", c.name, res.StatusCode, code)
				return
			}
			if c.method == "GET" && (extra != 0 || !bytes.Equal(got, want)) {
				b.Errorf("%s: the body is not the bytes stored", c.name)
				return
			}
		}
	})
	b.StopTimer()
	reportCPU(b, start)
}
