package bench

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/cairnstore/cairn/engine"
)

// writeCases are the rows of the write table: a size and a kind of
// content ("random", "text"; "stored": random bytes already stored, a
// new name each time; "stored-revealed": the same with the engine's
// RevealDedup, --hide-dedup-timing=false).
var writeCases = []struct {
	size    int
	kind    string
	clients int
}{
	{4 << 10, "random", 8},
	{64 << 10, "random", 8},
	{1 << 20, "random", 8},
	{64 << 20, "random", 1},
	{1 << 20, "stored", 8},
	{1 << 20, "stored-revealed", 8},
	{1 << 20, "text", 8},
}

// BenchmarkHTTPWrite uploads over loopback through cairn's cloud storage
// API (each upload answered once durable) beside two baselines measured
// in the same run, each a plain net/http handler that writes the body to
// a new file: server=files as nginx stores an upload (no sync) and
// server=fdatasync with an fdatasync before answering, the durable-write
// floor (as MinIO does). Read each row as a ratio to those; for text,
// disk/logical is the bytes cairn's chunks take over the bytes uploaded.
func BenchmarkHTTPWrite(b *testing.B) {
	for _, c := range writeCases {
		for _, server := range []string{"cairn", "files", "fdatasync"} {
			name := fmt.Sprintf("size=%s/content=%s/clients=%d/server=%s", sizeName(c.size), c.kind, c.clients, server)
			b.Run(name, func(b *testing.B) {
				var h *httpEnv
				if server == "cairn" {
					h = newHTTPEnvWith(b, engine.Options{RevealDedup: c.kind == "stored-revealed"})
				} else {
					h = fileServer(b, server == "fdatasync")
				}
				stored := make([]byte, c.size)
				if c.kind == "stored" || c.kind == "stored-revealed" {
					content(rand.NewChaCha8([32]byte{42}), "random", stored)
					h.do(b, "POST", "/public/1/first", stored, 201)
				}
				var seed, name atomic.Uint64
				b.SetBytes(int64(c.size))
				b.ReportAllocs()
				b.SetParallelism((c.clients + 1) / 2) // GOMAXPROCS is 2 on the reference machine
				start := cpuTime()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					r := rand.NewChaCha8([32]byte{byte(seed.Add(1)), 1})
					buf := make([]byte, c.size)
					for pb.Next() {
						body := stored
						if c.kind == "random" || c.kind == "text" {
							content(r, c.kind, buf)
							body = buf
						}
						h.do(b, "POST", fmt.Sprintf("/public/1/f%d", name.Add(1)), body, 201)
					}
				})
				b.StopTimer()
				reportCPU(b, start)
				if h.e != nil && c.kind == "text" {
					st, err := h.e.Stats()
					if err != nil {
						b.Fatal(err)
					}
					// The files baselines store each byte as it came: 1.
					b.ReportMetric(float64(st.ChunkDisk)/float64(st.RecordBytes), "disk/logical")
				}
			})
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// fileServer answers POST /public/1/{name} by writing the body to a new
// file, synced with fdatasync if sync, and 201.
func fileServer(b *testing.B, sync bool) *httpEnv {
	dir := b.TempDir()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /public/1/{name}", func(w http.ResponseWriter, r *http.Request) {
		f, err := os.OpenFile(filepath.Join(dir, r.PathValue("name")), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, r.Body); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if sync {
			if err := f.Sync(); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
		}
		w.WriteHeader(http.StatusCreated)
	})
	ts := httptest.NewServer(mux)
	b.Cleanup(ts.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	return &httpEnv{url: ts.URL, client: &http.Client{Transport: tr}}
}
