package crashtest

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeebo/blake3"
)

var (
	soakDuration    = flag.Duration("soak.duration", 30*time.Second, "how long TestSoak's mixed load runs")
	trickleDuration = flag.Duration("soak.trickle", 10*time.Second, "how long TestSoak's 200 slow uploads trickle")
)

// latencies collects request durations per kind of operation.
type latencies struct {
	mu sync.Mutex
	by map[string][]time.Duration
}

func (l *latencies) add(op string, d time.Duration) {
	l.mu.Lock()
	l.by[op] = append(l.by[op], d)
	l.mu.Unlock()
}

func (l *latencies) report(t *testing.T) {
	for _, op := range slices.Sorted(func(yield func(string) bool) {
		for k := range l.by {
			if !yield(k) {
				return
			}
		}
	}) {
		ds := l.by[op]
		slices.Sort(ds)
		q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
		t.Logf("%-6s n=%6d p50=%v p99=%v max=%v", op, len(ds), q(0.50).Round(time.Microsecond), q(0.99).Round(time.Microsecond), ds[len(ds)-1].Round(time.Microsecond))
	}
}

// TestSoak runs a bounded mixed load on loopback against the real binary:
// 64 clients GET (a quarter of them ranged), POST and DELETE, with no
// error allowed; then 200 connections trickle 50 MB uploads while the
// server must keep answering and its memory stay bounded.
func TestSoak(t *testing.T) {
	duration, trickle := *soakDuration, *trickleDuration
	if testing.Short() {
		duration, trickle = 5*time.Second, 3*time.Second
	}
	data := t.TempDir()
	token := setupUser(t, data)
	p := serve(t, data, nil)
	c := newClient(p.url, token)
	c.hc.Transport.(*http.Transport).MaxIdleConnsPerHost = 128

	// Shared files every client reads and none deletes.
	const shared = 64
	sums := make([][32]byte, shared)
	sizes := make([]int, shared)
	r0 := rand.New(rand.NewPCG(1, 2))
	for i := range shared {
		sizes[i] = logSize(r0, 1<<10, 1<<20)
		body := content(uint64(i), sizes[i])
		sums[i] = blake3.Sum256(body)
		if code, err := c.put(fmt.Sprintf("shared/%02d", i), body); err != nil || code != 201 {
			t.Fatalf("preload: %d, %v", code, err)
		}
	}
	rssStart := rss(t, p.pid())

	lat := &latencies{by: map[string][]time.Duration{}}
	var errMu sync.Mutex
	var errs []string
	fail := func(format string, args ...any) {
		errMu.Lock()
		if len(errs) < 20 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
		errMu.Unlock()
	}
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(3, uint64(w)))
			own := map[string][32]byte{}
			var names []string
			for i := 0; time.Now().Before(deadline); i++ {
				start := time.Now()
				switch x := r.IntN(100); {
				case x < 60: // GET a shared file, a quarter of them ranged
					f := r.IntN(shared)
					name := fmt.Sprintf("shared/%02d", f)
					if r.IntN(4) == 0 {
						off := r.IntN(sizes[f])
						n := 1 + r.IntN(min(sizes[f]-off, 64<<10))
						code, sum, got, err := c.get(name, "Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
						want := blake3.Sum256(content(uint64(f), sizes[f])[off : off+n])
						if err != nil || code != 206 || got != int64(n) || sum != want {
							fail("ranged GET %s: %d, %d bytes, %v", name, code, got, err)
						}
						lat.add("range", time.Since(start))
					} else {
						code, sum, _, err := c.get(name)
						if err != nil || code != 200 || sum != sums[f] {
							fail("GET %s: %d, %v", name, code, err)
						}
						lat.add("get", time.Since(start))
					}
				case x < 90 || len(names) == 0: // POST a new file
					name := fmt.Sprintf("w%02d/%06d", w, i)
					body := content(uint64(w)<<32|uint64(i), logSize(r, 1<<10, 256<<10))
					if code, err := c.put(name, body); err != nil || code != 201 {
						fail("POST %s: %d, %v", name, code, err)
						continue
					}
					lat.add("post", time.Since(start))
					own[name] = blake3.Sum256(body)
					names = append(names, name)
				default: // DELETE one of its own, then check it is gone
					j := r.IntN(len(names))
					name := names[j]
					names = slices.Delete(names, j, j+1)
					delete(own, name)
					if code, err := c.del(name); err != nil || code != 204 {
						fail("DELETE %s: %d, %v", name, code, err)
					}
					lat.add("delete", time.Since(start))
					if code, _, _, err := c.get(name); err != nil || code != 404 {
						fail("GET deleted %s: %d, %v", name, code, err)
					}
				}
			}
			for name, sum := range own {
				if code, got, _, err := c.get(name); err != nil || code != 200 || got != sum {
					fail("GET %s after the load: %d, %v", name, code, err)
				}
			}
		})
	}
	wg.Wait()
	rssEnd := rss(t, p.pid())
	lat.report(t)
	t.Logf("RSS %d MiB after the preload, %d MiB after %v of load", rssStart>>20, rssEnd>>20, duration)
	if len(errs) > 0 {
		t.Fatalf("%d+ errors under load:\n%s\nlogs:\n%s", len(errs), strings.Join(errs, "\n"), p.logs)
	}
	// 64 streaming uploads hold an 8 MiB chunking buffer each (serve
	// --max-uploads); past that, memory must not grow with the load.
	const uploadBuffers = 64 * 8 << 20
	if rssEnd > rssStart+uploadBuffers+256<<20 {
		t.Fatalf("RSS grew from %d to %d MiB under load", rssStart>>20, rssEnd>>20)
	}

	// 200 connections each announcing 50 MB and sending 32 KiB a quarter
	// second: the server must keep answering, and its memory is bounded
	// by what it buffers per upload, not by what was announced.
	const conns = 200
	stop := make(chan struct{})
	var tw sync.WaitGroup
	for i := range conns {
		tw.Go(func() {
			conn, err := net.Dial("tcp", strings.TrimPrefix(p.url, "http://"))
			if err != nil {
				fail("trickle %d: %v", i, err)
				return
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST /public/b/trickle/%03d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", i, token, 50_000_000)
			buf := content(uint64(i), 32<<10)
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return // the upload is cut off: nothing of it may become visible
				case <-tick.C:
					if _, err := conn.Write(buf); err != nil {
						fail("trickle %d: %v", i, err)
						return
					}
				}
			}
		})
	}
	probe := &http.Client{Timeout: 5 * time.Second}
	var maxRSS int64
	end := time.Now().Add(trickle)
	for n := 0; time.Now().Before(end); n++ {
		start := time.Now()
		res, err := probe.Get(p.url + "/livez")
		if err != nil {
			t.Fatalf("/livez while 200 uploads trickle: %v", err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		lat.add("livez", time.Since(start))
		if code, sum, _, err := c.get("shared/00"); err != nil || code != 200 || sum != sums[0] {
			t.Fatalf("GET while 200 uploads trickle: %d, %v", code, err)
		}
		maxRSS = max(maxRSS, rss(t, p.pid()))
		<-time.After(100 * time.Millisecond)
	}
	close(stop)
	tw.Wait()
	t.Logf("200 trickling uploads: /livez p99 %v; RSS at most %d MiB (%d MiB before)", quantile(lat.by["livez"], 0.99), maxRSS>>20, rssEnd>>20)
	if maxRSS > rssStart+uploadBuffers+256<<20 {
		t.Fatalf("RSS reached %d MiB with 200 slow uploads", maxRSS>>20)
	}
	if len(errs) > 0 {
		t.Fatalf("errors while trickling:\n%s", strings.Join(errs, "\n"))
	}
	for i := range 3 {
		if code, _, _, err := c.get(fmt.Sprintf("trickle/%03d", i)); err != nil || code != 404 {
			t.Fatalf("a cut-off upload is visible: %d, %v", code, err)
		}
	}
}

func quantile(ds []time.Duration, p float64) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(p*float64(len(ds))))].Round(time.Microsecond)
}
