package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/server"
	"github.com/cairnstore/cairn/server/cloudstorage"
)

// httpEnv is a server on loopback with a WRITE token on bucket 1.
type httpEnv struct {
	url, auth string
	client    *http.Client
	e         *engine.Engine
}

func newHTTPEnv(b *testing.B) *httpEnv {
	return newHTTPEnvWith(b, engine.Options{})
}

// newHTTPEnvWith is newHTTPEnv on an engine with opts.
func newHTTPEnvWith(b *testing.B, opts engine.Options) *httpEnv {
	b.Helper()
	opts.MinFreeBytes = -1
	e := enginetest.Open(b, opts)
	ts := httptest.NewServer(server.New(server.Config{Engine: e, Logger: enginetest.Logger(b)}))
	b.Cleanup(ts.Close)
	users := cloudstorage.NewUsers(e)
	ctx := context.Background()
	if _, err := users.Add(ctx, "bench", ""); err != nil {
		b.Fatal(err)
	}
	if _, err := users.Grant(ctx, "bench", "1", cloudstorage.Write); err != nil {
		b.Fatal(err)
	}
	tok, err := users.Token("bench", time.Now(), time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	return &httpEnv{url: ts.URL, auth: "Bearer " + tok, client: &http.Client{Transport: tr}, e: e}
}

func (h *httpEnv) do(b *testing.B, method, path string, body []byte, want int) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, h.url+path, rd)
	req.Header.Set("Authorization", h.auth)
	res, err := h.client.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != want {
		b.Errorf("%s %s: %d, want %d", method, path, res.StatusCode, want)
	}
}

var clientCounts = []int{1, 16}

// BenchmarkHTTPPut uploads new content through the cloud storage API
// over loopback, with 1 and 16 concurrent clients.
func BenchmarkHTTPPut(b *testing.B) {
	for _, s := range sizes {
		for _, clients := range clientCounts {
			if s.n > 1<<20 && clients > 1 {
				continue // 16 × 64 MiB in flight measures the disk, not the server
			}
			b.Run(fmt.Sprintf("api=cloudstorage/size=%s/clients=%d", s.name, clients), func(b *testing.B) {
				h := newHTTPEnv(b)
				var seed, name atomic.Uint64
				b.SetBytes(int64(s.n))
				b.ReportAllocs()
				b.SetParallelism((clients + 1) / 2) // GOMAXPROCS is 2 on the reference machine
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					r := rand.NewChaCha8([32]byte{byte(seed.Add(1))})
					buf := make([]byte, s.n)
					for pb.Next() {
						content(r, "random", buf)
						h.do(b, "POST", fmt.Sprintf("/public/1/f%d", name.Add(1)), buf, 201)
					}
				})
			})
		}
	}
}

// BenchmarkHTTPGet downloads stored files through the shared download
// path over loopback.
func BenchmarkHTTPGet(b *testing.B) {
	for _, s := range sizes {
		for _, clients := range clientCounts {
			b.Run(fmt.Sprintf("api=cloudstorage/size=%s/clients=%d", s.name, clients), func(b *testing.B) {
				h := newHTTPEnv(b)
				n := objects(s.n)
				r := rand.NewChaCha8([32]byte{9})
				buf := make([]byte, s.n)
				for i := range n {
					content(r, "random", buf)
					h.do(b, "POST", fmt.Sprintf("/public/1/f%d", i), buf, 201)
				}
				var next atomic.Uint64
				b.SetBytes(int64(s.n))
				b.ReportAllocs()
				b.SetParallelism((clients + 1) / 2)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						h.do(b, "GET", fmt.Sprintf("/public/1/f%d", next.Add(1)%uint64(n)), nil, 200)
					}
				})
			})
		}
	}
}

// BenchmarkHTTPList lists a whole section of 10^4 media through the cloud
// storage API over loopback (streamed from the index a batch at a time),
// beside a baseline: a plain net/http handler answering the same JSON
// array from memory, the ceiling of any listing.
func BenchmarkHTTPList(b *testing.B) {
	const n = 10_000
	b.Run("api=cloudstorage/entries=1e4", func(b *testing.B) {
		h := newHTTPEnv(b)
		e := h.e
		ctx := context.Background()
		id, _, err := e.Put(ctx, bytes.NewReader([]byte("listed")))
		if err != nil {
			b.Fatal(err)
		}
		err = e.Update(ctx, func(tx *engine.Tx) error {
			for i := range n {
				k := engine.Key{Namespace: "cloudstorage", Tenant: "public/1", Name: listName(i)}
				if _, err := tx.Put(k, engine.Record{Blob: id}, nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			h.do(b, "GET", "/public/1"+listQuery, nil, 200)
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	})
	b.Run("api=baseline/entries=1e4", func(b *testing.B) {
		paths := make([]string, n)
		for i := range paths {
			paths[i] = "public/1/" + listName(i)
		}
		body, _ := json.Marshal(paths)
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}))
		b.Cleanup(ts.Close)
		h := &httpEnv{url: ts.URL, client: &http.Client{}}
		b.ReportAllocs()
		for b.Loop() {
			h.do(b, "GET", "/", nil, 200)
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
	})
}

var listQuery = ""

func listName(i int) string { return fmt.Sprintf("images/2026/%05d-a-longish-file-name.jpeg", i) }
