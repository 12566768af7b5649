package bench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/testtool"
	"github.com/cairnstore/cairn/objstore"
)

// BenchmarkObjectWrite measures what keeping the segments in an object
// store (--store s3://…, a real MinIO on loopback) costs an upload over
// keeping them on local disk, in the same run: server=local and
// server=objects upload through the cloud storage API (each answered once
// durable: fdatasync, or the object put), and server=s3put is the floor,
// the same bytes put straight into MinIO as one object each with
// minio-go. ms/upload is the mean latency of one upload.
func BenchmarkObjectWrite(b *testing.B) {
	m := testtool.StartMinIO(b)
	var prefix atomic.Uint64
	bucket := func(b *testing.B) *objstore.Bucket {
		cfg, err := objstore.FromEnv(fmt.Sprintf("s3://%s/bench%d", m.Bucket, prefix.Add(1)), "", m.Getenv)
		if err != nil {
			b.Fatal(err)
		}
		bk, err := objstore.Open(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		return bk
	}
	for _, c := range []struct{ size, clients int }{{64 << 10, 8}, {1 << 20, 8}, {64 << 20, 1}} {
		for _, server := range []string{"local", "objects", "s3put"} {
			b.Run(fmt.Sprintf("size=%s/clients=%d/server=%s", sizeName(c.size), c.clients, server), func(b *testing.B) {
				var upload func(name string, body []byte)
				switch server {
				case "s3put":
					bk := bucket(b)
					upload = func(name string, body []byte) {
						if err := bk.Put(context.Background(), name, bytes.NewReader(body), int64(len(body))); err != nil {
							b.Error(err)
						}
					}
				default:
					opts := engine.Options{}
					if server == "objects" {
						opts.Objects = bucket(b)
					}
					h := newHTTPEnvWith(b, opts)
					upload = func(name string, body []byte) { h.do(b, "POST", "/public/1/"+name, body, 201) }
				}
				var seed, name atomic.Uint64
				var total atomic.Int64
				b.SetBytes(int64(c.size))
				b.SetParallelism((c.clients + 1) / 2)
				start := cpuTime()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					r := rand.NewChaCha8([32]byte{byte(seed.Add(1)), 2})
					buf := make([]byte, c.size)
					for pb.Next() {
						content(r, "random", buf)
						t0 := time.Now()
						upload(fmt.Sprintf("f%d", name.Add(1)), buf)
						total.Add(int64(time.Since(t0)))
					}
				})
				b.StopTimer()
				reportCPU(b, start)
				b.ReportMetric(float64(total.Load())/float64(b.N)/1e6, "ms/upload")
			})
		}
	}
}
