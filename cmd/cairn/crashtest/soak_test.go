package crashtest

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeebo/blake3"
)

var (
	soakDuration   = flag.Duration("soak.duration", 30*time.Second, "how long TestSoak's mixed load runs")
	attackDuration = flag.Duration("soak.attack", 15*time.Second, "how long TestSoak's exhaustion attack runs")
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
// error allowed; then anonymous clients attack it (see attack) while it
// must keep answering a signed-in client, and its memory stay within
// what its flags allow.
func TestSoak(t *testing.T) {
	duration, attackFor := *soakDuration, *attackDuration
	if testing.Short() {
		duration, attackFor = 5*time.Second, 8*time.Second
	}
	data := t.TempDir()
	token := setupUser(t, data)
	// Another signed-in user, whose uploads trickle during the attack.
	mustCairn(t, "user", "add", "trickler", "--data", data)
	mustCairn(t, "user", "grant", "trickler", "b", "WRITE", "--data", data)
	trickler := strings.TrimSpace(mustCairn(t, "user", "token", "trickler", "--ttl", "24h", "--data", data))
	p := serve(t, data, nil, soakFlags...)
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
	// Streaming uploads hold an 8 MiB chunking buffer each (serve
	// --max-uploads), open downloads keep --read-cache of chunks between
	// them; past that, memory must not grow with the load.
	if rssEnd > rssStart+memoryByFlags+128<<20 {
		t.Fatalf("RSS grew from %d to %d MiB under load", rssStart>>20, rssEnd>>20)
	}

	attack(t, p, c, trickler, sums[0], attackFor, rssStart)
}

// Flags the soak's server runs with, and the memory they allow.
const (
	soakMaxUploads = 32
	soakReadCache  = 32 << 20
	memoryByFlags  = soakMaxUploads*8<<20 + soakReadCache
)

// soakFlags are the soak server's: its memory bounds, and a short window
// for the minimum rate so that slow clients are cut within the run.
var soakFlags = []string{
	"--max-uploads", fmt.Sprint(soakMaxUploads), "--read-cache", fmt.Sprint(soakReadCache),
	"--body-rate-window", "3s", "--slot-wait", "2s", "--storage-public-rate", "600",
}

// dialFrom connects to the server from the loopback address from, so that
// it sees several clients.
func dialFrom(from, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	return d.Dial("tcp", addr)
}

// attack runs, for d, what a few anonymous clients could do to take the
// server down, all at once: 70 uploads trickling a byte every 2 s from 5
// addresses, 300 downloads of a 32 MiB object read 4 KiB every 8 s, bodies
// declared at 6 GB, storms of 3000 one-byte ranges, and 50 uploads of
// another signed-in user (trickler's token) trickling too. Throughout, /livez and the signed-in
// client's uploads and downloads must answer within a bound, and the
// server's memory stay within what its flags allow. Every attacker starts
// again when the server cuts it off.
func attack(t *testing.T, p *proc, c *client, trickler string, sum0 [32]byte, d time.Duration, rssStart int64) {
	addr := strings.TrimPrefix(p.url, "http://")
	var wg sync.WaitGroup
	big := content(99, 32<<20)
	if code, err := c.put("big", big); err != nil || code != 201 {
		t.Fatalf("uploading the 32 MiB object: %d, %v", code, err)
	}
	stop := make(chan struct{})
	stopAll := sync.OnceFunc(func() { close(stop) })
	defer func() { stopAll(); wg.Wait() }()
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	var answers sync.Map // what the attackers were answered: status line -> *atomic.Int64
	count := func(line string) {
		if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(line, "HTTP/") {
			line = f[1] // the status
		}
		if line == "" {
			return // cut off by the end of the attack
		}
		n, _ := answers.LoadOrStore(line, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}
	// again runs one attacker's connection over and over until stop.
	again := func(from string, one func(net.Conn)) {
		wg.Go(func() {
			for !stopped() {
				conn, err := dialFrom(from, addr)
				if err != nil {
					select { // try again soon, or stop
					case <-stop:
					case <-time.After(100 * time.Millisecond):
					}
					continue
				}
				go func() { <-stop; conn.Close() }()
				one(conn)
				conn.Close()
			}
		})
	}
	from := func(i int) string { return fmt.Sprintf("127.0.0.%d", 2+i%5) }
	const boundary = "b0undary"
	for i := range 70 {
		again(from(i), func(conn net.Conn) {
			fmt.Fprintf(conn, "POST /storage/public/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n\r\n--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t\"\r\n\r\n", boundary, 50_000_000, boundary)
			count(trickleBody(conn, 2*time.Second, []byte{'x'}))
		})
	}
	for i := range 300 {
		again(from(i), func(conn net.Conn) {
			fmt.Fprintf(conn, "GET /public/b/big HTTP/1.1\r\nHost: x\r\n\r\n")
			buf := make([]byte, 4<<10)
			for !stopped() {
				conn.SetReadDeadline(time.Now().Add(8 * time.Second))
				if _, err := io.ReadFull(conn, buf); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					count("cut")
					return
				}
			}
		})
	}
	for i := range 50 {
		again("127.0.0.1", func(conn net.Conn) {
			fmt.Fprintf(conn, "POST /public/b/trickle/%03d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", i, trickler, 50_000_000)
			count(trickleBody(conn, time.Second, []byte("xy")))
		})
	}
	for i := range 4 {
		again(from(i), func(conn net.Conn) {
			expect := ""
			if i%2 == 1 {
				expect = "Expect: 100-continue\r\n"
			}
			start := time.Now()
			fmt.Fprintf(conn, "POST /storage/public/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n%sContent-Length: 6000000000\r\n\r\n", expect)
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err == nil {
				count(line)
			}
			if !stopped() && (err != nil || !strings.Contains(line, " 413 ") && !strings.Contains(line, " 429 ")) {
				t.Errorf("a body declared at 6 GB: %q, %v after %v; want 413 at once", line, err, time.Since(start))
			}
		})
	}
	var storm []string
	for i := range int64(1500) {
		storm = append(storm, fmt.Sprintf("%d-%d", 2*i, 2*i), fmt.Sprintf("%d-%d", int64(len(big))-1-2*i, int64(len(big))-1-2*i))
	}
	for i := range 2 {
		again(from(i), func(conn net.Conn) {
			fmt.Fprintf(conn, "GET /public/b/big HTTP/1.1\r\nHost: x\r\nRange: bytes=%s\r\n\r\n", strings.Join(storm, ","))
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				return
			}
			n, _ := io.Copy(io.Discard, res.Body)
			res.Body.Close()
			count(fmt.Sprintf("range storm %d (%d bytes)", res.StatusCode, n))
		})
	}

	// The signed-in client and /livez, meanwhile.
	lat := &latencies{by: map[string][]time.Duration{}}
	probe := &http.Client{Timeout: 10 * time.Second}
	var maxRSS int64
	var slow []string
	end := time.Now().Add(d)
	for n := 0; time.Now().Before(end); n++ {
		start := time.Now()
		res, err := probe.Get(p.url + "/livez")
		if err != nil {
			t.Fatalf("/livez under attack: %v", err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if l := time.Since(start); l > 2*time.Second {
			slow = append(slow, fmt.Sprintf("/livez %v", l))
		}
		lat.add("livez", time.Since(start))

		start = time.Now()
		if code, err := c.put(fmt.Sprintf("probe/%04d", n), content(uint64(7000+n), 64<<10)); err != nil || code != 201 {
			t.Fatalf("a signed-in upload under attack: %d, %v; logs:\n%s", code, err, p.logs)
		}
		if l := time.Since(start); l > 5*time.Second {
			slow = append(slow, fmt.Sprintf("upload %v", l))
		}
		lat.add("upload", time.Since(start))

		start = time.Now()
		if code, sum, _, err := c.get("shared/00"); err != nil || code != 200 || sum != sum0 {
			t.Fatalf("a download under attack: %d, %v", code, err)
		}
		if l := time.Since(start); l > 5*time.Second {
			slow = append(slow, fmt.Sprintf("download %v", l))
		}
		lat.add("get", time.Since(start))
		maxRSS = max(maxRSS, rss(t, p.pid()))
		<-time.After(200 * time.Millisecond)
	}
	stopAll()
	wg.Wait()

	lat.report(t)
	var got []string
	answers.Range(func(k, v any) bool {
		got = append(got, fmt.Sprintf("%s: %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(got)
	t.Logf("attackers were answered: %s", strings.Join(got, "; "))
	t.Logf("RSS at most %d MiB under attack (%d MiB before the load; flags allow %d MiB more)", maxRSS>>20, rssStart>>20, memoryByFlags>>20)
	if len(slow) > 0 {
		t.Errorf("slow answers under attack: %s", strings.Join(slow, ", "))
	}
	// Over what the flags allow: the attackers' connections and goroutines
	// (some 400 at once), and the Go runtime's slack. Measured: 484–501
	// MiB at most on the reference machine alone, 466–585 MiB with another
	// test loading its second core (the garbage collector runs later when
	// it gets less CPU); the bound is the same whatever the attack's
	// length, which is the point.
	if maxRSS > rssStart+memoryByFlags+320<<20 {
		t.Errorf("RSS reached %d MiB under attack, %d MiB before", maxRSS>>20, rssStart>>20)
	}
	for _, want := range []string{"408", "cut"} {
		if _, ok := answers.Load(want); !ok {
			t.Errorf("no attacker was answered %s: %s", want, strings.Join(got, "; "))
		}
	}
	for i := range 3 {
		if code, _, _, err := c.get(fmt.Sprintf("trickle/%03d", i)); err != nil || code != 404 {
			t.Fatalf("a cut-off upload is visible: %d, %v", code, err)
		}
	}
}

// trickleBody sends piece on conn every gap, as the body of a request
// already begun, until the server answers; it returns the status line.
func trickleBody(conn net.Conn, gap time.Duration, piece []byte) string {
	answered := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(conn).ReadString('\n')
		answered <- line
	}()
	tick := time.NewTicker(gap)
	defer tick.Stop()
	for {
		select {
		case line := <-answered:
			return line
		case <-tick.C:
			conn.Write(piece)
		}
	}
}
