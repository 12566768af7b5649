package bench

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/testtool"
)

func TestMain(m *testing.M) { testtool.Main(m) }

// BenchmarkIndexStore is the per-request cost of the index in PostgreSQL
// beside Pebble's, through the cloud storage API over loopback (8
// clients): PUT and GET of 4 KiB (a 4 KiB upload is kept in the index
// itself), and a listing of 100 names. cpu-µs/op is this process's CPU
// (client and cairn); pg-cpu-µs/op is PostgreSQL's (its server
// processes), so the database's whole cost is their sum.
func BenchmarkIndexStore(b *testing.B) {
	for _, store := range []string{"pebble", "postgres"} {
		var pg *testtool.Postgres
		newEnv := func(b *testing.B) *httpEnv {
			var opts engine.Options
			if store == "postgres" {
				pg = testtool.SharedPostgres(b)
				opts.Index = pg.NewDatabase(b)
			}
			return newHTTPEnvWith(b, opts)
		}
		pgCPU := func() time.Duration {
			if pg == nil {
				return 0
			}
			return pg.CPU()
		}
		// measure runs op from 8 clients and reports both processes' CPU.
		measure := func(b *testing.B, op func()) {
			b.SetParallelism(4)
			start, pgStart := cpuTime(), pgCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					op()
				}
			})
			b.StopTimer()
			reportCPU(b, start)
			b.ReportMetric(float64((pgCPU()-pgStart).Microseconds())/float64(b.N), "pg-cpu-µs/op")
		}
		body := make([]byte, 4<<10)
		b.Run(fmt.Sprintf("op=PUT-4KiB/index=%s", store), func(b *testing.B) {
			h := newEnv(b)
			var n atomic.Uint64
			measure(b, func() { h.do(b, "POST", fmt.Sprintf("/public/1/p%d", n.Add(1)), body, 201) })
		})
		b.Run(fmt.Sprintf("op=GET-4KiB/index=%s", store), func(b *testing.B) {
			h := newEnv(b)
			for i := range 64 {
				h.do(b, "POST", fmt.Sprintf("/public/1/g%d", i), body, 201)
			}
			var n atomic.Uint64
			measure(b, func() { h.do(b, "GET", fmt.Sprintf("/public/1/g%d", n.Add(1)%64), nil, 200) })
		})
		b.Run(fmt.Sprintf("op=list-100/index=%s", store), func(b *testing.B) {
			h := newEnv(b)
			for i := range 100 {
				h.do(b, "POST", fmt.Sprintf("/public/1/l%03d", i), body[:16], 201)
			}
			measure(b, func() { h.do(b, "GET", "/public/1?limit=100", nil, 200) })
		})
	}
}
