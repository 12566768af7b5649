package crashtest

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/cairnstore/cairn/internal/testtool"
)

var (
	crashCycles = flag.Int("crash.cycles", 30, "SIGKILL cycles of TestCrash")
	powerCycles = flag.Int("power.cycles", 20, "power-loss cycles of TestPowerLoss")
)

// model is what the loaders were told. A name is uploaded once; its
// content is one of a small pool (duplicates) or its own.
type model struct {
	mu       sync.Mutex
	acked    map[string]entry // acknowledged and not deleted
	deleted  map[string]entry // acknowledged deletes: the file, and when the delete was acknowledged
	inflight map[string]entry // uploads with no answer: there or not, never half
	unsure   map[string]entry // deletes with no answer
	order    []string         // acked names, oldest first (for trimming)

	// For the failure message: when the last crash came, and the
	// crashed server's log.
	data             string // the store's folder
	racyAcks         bool   // crashes are power losses: see verify
	crashAt, crashed time.Time
	lastLogs         string
}

type entry struct {
	sum   [32]byte
	size  int
	acked time.Time // when the acknowledgement arrived
}

func newModel() *model {
	return &model{acked: map[string]entry{}, deleted: map[string]entry{}, inflight: map[string]entry{}, unsure: map[string]entry{}}
}

// liveBytes is the distinct content the store may hold: acknowledged and
// possibly-stored files, each content counted once.
func (m *model) liveBytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[[32]byte]bool{}
	var n int64
	for _, set := range []map[string]entry{m.acked, m.inflight, m.unsure} {
		for _, e := range set {
			if !seen[e.sum] {
				seen[e.sum] = true
				n += int64(e.size)
			}
		}
	}
	return n
}

// load runs uploaders until stop closes: sizes 1 KiB to 8 MiB, 20% of
// uploads a content already used, 5% of operations a delete. Worker w
// talks to cs[w%len(cs)] (several nodes).
func load(cs []*client, m *model, workers int, cycle int, stop <-chan struct{}) (ops int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := range workers {
		c := cs[w%len(cs)]
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(cycle), uint64(w)))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if r.IntN(100) < 5 {
					deleteOne(c, m, r)
					continue
				}
				var seed uint64
				var size int
				if r.IntN(100) < 20 {
					seed = uint64(r.IntN(8)) // the duplicate pool
					size = 4096 + int(seed)*300_000
				} else {
					seed = uint64(cycle)<<32 | uint64(w)<<20 | uint64(i) + 1000
					size = logSize(r, 1<<10, 8<<20)
				}
				body := content(seed, size)
				name := fmt.Sprintf("c%03d/w%02d/%05d", cycle, w, i)
				e := entry{sum: blake3.Sum256(body), size: size}
				m.mu.Lock()
				m.inflight[name] = e
				m.mu.Unlock()
				code, err := c.put(name, body)
				m.mu.Lock()
				switch {
				case err == nil && code < 300:
					delete(m.inflight, name)
					e.acked = time.Now()
					m.acked[name] = e
					m.order = append(m.order, name)
				case err == nil && code < 500:
					delete(m.inflight, name) // refused: nothing stored
				}
				// No answer or a 5xx (the disk failing under the server):
				// not acknowledged, so it may or may not have happened.
				m.mu.Unlock()
				mu.Lock()
				ops++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return ops
}

func deleteOne(c *client, m *model, r *rand.Rand) {
	m.mu.Lock()
	if len(m.order) == 0 {
		m.mu.Unlock()
		return
	}
	i := r.IntN(len(m.order))
	name := m.order[i]
	e, ok := m.acked[name]
	if !ok {
		m.mu.Unlock()
		return
	}
	m.order = slices.Delete(m.order, i, i+1)
	delete(m.acked, name)
	m.unsure[name] = e
	m.mu.Unlock()
	code, err := c.del(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err == nil && code == 204:
		delete(m.unsure, name)
		m.deleted[name] = entry{sum: e.sum, size: e.size, acked: time.Now()}
	case err == nil && code < 500: // refused: still there
		delete(m.unsure, name)
		m.acked[name] = e
		m.order = append(m.order, name)
	}
	// No answer or a 5xx: a failed sync does not undo a write that the
	// kernel had already put on disk, so the delete may have happened.
}

// verify checks the store against the model after a restart and settles
// the unanswered operations by what the store holds.
func verify(t *testing.T, c *client, m *model, cycle int) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	check := func(name string, e entry, mustExist bool) bool {
		code, sum, n, err := c.get(name)
		switch {
		case err != nil:
			t.Fatalf("cycle %d: GET %s: %v", cycle, name, err)
		case code == 200 && sum != e.sum:
			t.Fatalf("cycle %d: %s: %d bytes that are not the %d uploaded", cycle, name, n, e.size)
		case code == 404 && mustExist:
			if keep := os.Getenv("CAIRN_KEEP_LOST"); keep != "" {
				exec.Command("cp", "-a", m.data, keep).Run()
			}
			t.Fatalf("cycle %d: acknowledged upload %s (%d bytes, BLAKE3 %x) is lost; acknowledged at %s, %v after the crash began and %v before it ended; the crashed server's log:\n%s",
				cycle, name, e.size, e.sum[:8], e.acked.UTC().Format(time.RFC3339Nano), e.acked.Sub(m.crashAt), m.crashed.Sub(e.acked), m.lastLogs)
		case code != 200 && code != 404:
			t.Fatalf("cycle %d: GET %s: %d", cycle, name, code)
		}
		return code == 200
	}
	gone := map[string]bool{}
	for name, e := range m.acked {
		// An acknowledgement that raced a power loss (it arrived after the
		// shutdown began) is not a guarantee any stack can give: on XFS a
		// plain write+fsync acknowledged then can be lost too (see
		// TestPowerLoss). It must be whole or absent; earlier ones must be
		// there.
		racing := m.racyAcks && e.acked.After(m.crashAt)
		if !check(name, e, !racing) {
			delete(m.acked, name)
			gone[name] = true
		}
	}
	if len(gone) > 0 {
		m.order = slices.DeleteFunc(m.order, func(n string) bool { return gone[n] })
	}
	for name, d := range m.deleted {
		code, sum, _, err := c.get(name)
		// A delete acknowledged while a power loss was already under way
		// may be undone by it, as an upload may (see above): the file is
		// then there whole, as it was.
		racing := m.racyAcks && d.acked.After(m.crashAt)
		switch {
		case err == nil && code == 404:
		case err == nil && code == 200 && racing && sum == d.sum:
			delete(m.deleted, name)
			m.acked[name] = d
			m.order = append(m.order, name)
		default:
			t.Fatalf("cycle %d: deleted %s (acknowledged %v after the crash began) answers %d, %v", cycle, name, d.acked.Sub(m.crashAt), code, err)
		}
	}
	for name, e := range m.inflight {
		if check(name, e, false) {
			m.acked[name] = e
			m.order = append(m.order, name)
		}
		delete(m.inflight, name)
	}
	for name, e := range m.unsure {
		if check(name, e, false) {
			m.acked[name] = e
			m.order = append(m.order, name)
		} else {
			m.deleted[name] = entry{sum: e.sum, size: e.size, acked: time.Now()}
		}
		delete(m.unsure, name)
	}
}

// trim deletes the oldest files until the live set is under limit bytes,
// so that disk use can be held to a bound over many cycles.
func trim(t *testing.T, c *client, m *model, limit int64) {
	t.Helper()
	for m.liveBytes() > limit {
		m.mu.Lock()
		name := m.order[0]
		m.order = m.order[1:]
		e := m.acked[name]
		delete(m.acked, name)
		m.mu.Unlock()
		if code, err := c.del(name); err != nil || code != 204 {
			t.Fatalf("trimming %s: %d, %v", name, code, err)
		}
		m.mu.Lock()
		m.deleted[name] = entry{sum: e.sum, size: e.size, acked: time.Now()}
		m.mu.Unlock()
	}
}

// crashLoop is the body of the crash tests: cycles of load, a crash
// (crash kills the server its own way), offline checks, restart, verify.
// remount, when set, runs between the crash and the offline checks.
func crashLoop(t *testing.T, data string, cycles int, crash func(p *proc), remount func()) {
	crashLoopAcks(t, data, cycles, crash, remount, false)
}

// crashLoopAcks is crashLoop; racyAcks says acknowledgements that arrive
// after a crash began are not guaranteed (a power loss, not a kill).
func crashLoopAcks(t *testing.T, data string, cycles int, crash func(p *proc), remount func(), racyAcks bool, serveArgs ...string) (*model, string) {
	token := setupUser(t, data)
	m := newModel()
	m.data, m.racyAcks = data, racyAcks
	const liveLimit = 192 << 20
	const segment = 32 << 20
	args := append([]string{"--segment-size", fmt.Sprint(segment), "--min-free-bytes", "-1"}, serveArgs...)
	p := serve(t, data, nil, args...)
	r := rand.New(rand.NewPCG(7, uint64(cycles)))
	var totalOps, rolled int
	var maxDisk int64
	for cycle := range cycles {
		c := newClient(p.url, token)
		stop := make(chan struct{})
		done := make(chan int)
		go func() { done <- load([]*client{c}, m, 16, cycle, stop) }()
		// Crash at a random moment of the load.
		select {
		case <-time.After(time.Duration(200+r.IntN(1000)) * time.Millisecond):
			m.mu.Lock()
			m.crashAt = time.Now()
			m.mu.Unlock()
			crash(p)
			m.mu.Lock()
			m.crashed = time.Now()
			m.mu.Unlock()
			m.lastLogs = p.logs.String()
			close(stop)
			totalOps += <-done
		case n := <-done:
			t.Fatalf("cycle %d: the loaders stopped after %d operations before the crash; server logs:\n%s", cycle, n, p.logs)
		}
		if remount != nil {
			remount()
		}

		// Offline: the store checks and scrubs clean, and GC returns
		// the space of deletes and of uploads the crash cut off.
		if out := mustCairn(t, "check", "--data", data); strings.Contains(out, "rolled forward") {
			rolled++ // object mode: transactions logged but cut off by the crash
		}
		if out, err := cairn(t, "scrub", "--data", data); err != nil {
			t.Fatalf("cycle %d: scrub: %v\n%s", cycle, err, out)
		}
		gc := mustCairn(t, "gc", "--data", data)
		disk, live := du(t, data), m.liveBytes()
		if testing.Verbose() {
			t.Logf("cycle %d: %d MiB on disk, %d MiB live; gc: %s", cycle, disk>>20, live>>20, gc)
		}
		maxDisk = max(maxDisk, disk)
		// Live bytes, plus up to half of each segment dead below the
		// compaction threshold, plus the index and the open segment.
		if bound := live*2 + 2*segment + 64<<20; disk > bound {
			t.Fatalf("cycle %d: %d bytes on disk for %d live bytes (bound %d): space leaks", cycle, disk, live, bound)
		}

		p = serve(t, data, nil, args...)
		c = newClient(p.url, token)
		verify(t, c, m, cycle)
		trim(t, c, m, liveLimit)
	}
	p.kill()
	t.Logf("%d cycles, %d operations; %d files live, %d deleted; disk at most %d MiB for a live set capped at %d MiB",
		cycles, totalOps, len(m.acked), len(m.deleted), maxDisk>>20, liveLimit>>20)
	if rolled > 0 {
		t.Logf("%d crashes cut off transactions whose log was in the object store; they were rolled forward", rolled)
	}
	return m, token
}

// TestCrash: SIGKILL at random moments under 16 concurrent uploaders.
func TestCrash(t *testing.T) {
	cycles := *crashCycles
	if testing.Short() {
		cycles = 3
	}
	crashLoop(t, t.TempDir(), cycles, func(p *proc) { p.kill() }, nil)
}

// TestCrashObjects is TestCrash with the segments in an object store (a
// real MinIO): SIGKILL at random moments, puts of segment objects among
// them; every acknowledged upload is there after, byte for byte, and
// check and scrub pass, reading from the bucket what the folder lacks.
func TestCrashObjects(t *testing.T) {
	mio := minioEnv(t)
	cycles := 8
	if testing.Short() {
		cycles = 3
	}
	data := t.TempDir()
	store := "s3://" + mio.Bucket + "/crash"
	mustCairn(t, "init", "--data", data, "--store", store)
	t.Setenv("CAIRN_CACHE_SIZE", fmt.Sprint(64<<20)) // the admin commands' too
	m, token := crashLoopAcks(t, data, cycles, func(p *proc) { p.kill() }, nil, false, "--store", store)

	// Then the node's disk is lost, killed under load once more: the
	// bucket alone (and the key file, kept apart) rebuilds the store, with
	// every upload and delete acknowledged.
	p := serve(t, data, nil, "--store", store)
	killUnderLoad(p, newClient(p.url, token), m, cycles)
	key := keepKey(t, data)
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	t.Log(strings.TrimSpace(mustCairn(t, "restore", store, "--data", restored, "--key-file", key)))
	mustCairn(t, "check", "--data", restored, "--key-file", key)
	p = serve(t, restored, nil, "--store", store, "--key-file", key)
	verify(t, newClient(p.url, token), m, cycles)
	p.kill()
}

// TestCrashIndexInPostgres is TestCrashObjects for a node that keeps no
// state: the segments in MinIO, the index in PostgreSQL. SIGKILLed under
// load at random moments, then PostgreSQL restarted under it, then its
// disk lost: a new folder given the database, the bucket and the key
// takes the store on, with every upload and delete acknowledged.
func TestCrashIndexInPostgres(t *testing.T) {
	mio := minioEnv(t)
	pg := testtool.StartPostgres(t)
	t.Setenv("CAIRN_INDEX", pg.NewDatabase(t))
	t.Setenv("CAIRN_CACHE_SIZE", fmt.Sprint(64<<20))
	cycles := 4
	if testing.Short() {
		cycles = 2
	}
	data := t.TempDir()
	store := "s3://" + mio.Bucket + "/crash-pg"
	mustCairn(t, "init", "--data", data, "--store", store)
	key := keepKey(t, data)
	m, token := crashLoopAcks(t, data, cycles, func(p *proc) { p.kill() }, nil, false, "--store", store)

	// PostgreSQL restarted under a serving node: requests fail while it
	// is down (503), and it serves again once it is back.
	p := serve(t, data, nil, "--store", store)
	pg.Stop()
	pg.Start()
	c := newClient(p.url, token)
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, err := c.put(fmt.Sprintf("after-restart-%d", time.Now().UnixNano()), content(99, 1000))
		if err == nil && code == 201 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no upload succeeds 30 s after PostgreSQL came back: %d, %v\n%s", code, err, p.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	verify(t, c, m, cycles)

	// Killed under load once more, and the disk lost with it.
	killUnderLoad(p, c, m, cycles)
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(t.TempDir(), "fresh")
	p = serve(t, fresh, nil, "--store", store, "--key-file", key)
	verify(t, newClient(p.url, token), m, cycles)
	p.kill()
	mustCairn(t, "check", "--data", fresh, "--key-file", key)
}

// killUnderLoad SIGKILLs p under 16 uploaders once they have had some
// uploads acknowledged (or after a minute), and waits for them to stop.
func killUnderLoad(p *proc, c *client, m *model, cycle int) {
	stop := make(chan struct{})
	done := make(chan int)
	m.mu.Lock()
	acked := len(m.acked)
	m.mu.Unlock()
	go func() { done <- load([]*client{c}, m, 16, cycle, stop) }()
	for deadline := time.Now().Add(time.Minute); ; {
		m.mu.Lock()
		n := len(m.acked)
		m.mu.Unlock()
		if n >= acked+20 || time.Now().After(deadline) {
			break
		}
		runtime.Gosched()
	}
	p.kill()
	close(stop)
	<-done
}

// minioEnv starts a MinIO server for t and puts its endpoint and
// credentials in the environment the cairn processes inherit.
func minioEnv(t *testing.T) *testtool.MinIO {
	mio := testtool.StartMinIO(t)
	for _, kv := range mio.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return mio
}

// keepKey copies the store's key out of its data folder, as an operator
// keeps it apart, and returns the copy's path.
func keepKey(t *testing.T, data string) string {
	key := filepath.Join(t.TempDir(), "kept.key")
	b, err := os.ReadFile(filepath.Join(data, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return key
}
