package crashtest

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/testtool"
)

// TestCrashNodes: three nodes serve one store (the index in PostgreSQL,
// the segments in MinIO), 16 uploaders spread over them. Each cycle one
// node, chosen at random, is SIGKILLed under load while the others go
// on taking uploads, then started again; once, PostgreSQL is restarted
// under all three. Every upload and delete acknowledged by any node is
// then what every node serves, and the store checks clean.
func TestCrashNodes(t *testing.T) {
	mio := minioEnv(t)
	pg := testtool.StartPostgres(t)
	t.Setenv("CAIRN_INDEX", pg.NewDatabase(t))
	t.Setenv("CAIRN_CACHE_SIZE", fmt.Sprint(64<<20))
	cycles := 5
	if testing.Short() {
		cycles = 3
	}
	store := "s3://" + mio.Bucket + "/nodes"
	dirs := []string{t.TempDir(), filepath.Join(t.TempDir(), "n1"), filepath.Join(t.TempDir(), "n2")}
	mustCairn(t, "init", "--data", dirs[0], "--store", store)
	key := keepKey(t, dirs[0])
	token := setupUser(t, dirs[0])
	args := []string{"--store", store, "--key-file", key, "--segment-size", fmt.Sprint(8 << 20), "--min-free-bytes", "-1", "--gc-interval", "300ms", "--gc-grace", "2s"}
	procs := make([]*proc, len(dirs))
	for i, d := range dirs {
		procs[i] = serve(t, d, nil, args...)
	}
	clients := func() []*client {
		cs := make([]*client, len(procs))
		for i, p := range procs {
			cs[i] = newClient(p.url, token)
		}
		return cs
	}
	m := newModel()
	m.data = dirs[0]
	r := rand.New(rand.NewPCG(11, uint64(cycles)))
	var ops, afterKill int
	for cycle := range cycles {
		stop := make(chan struct{})
		done := make(chan int)
		go func() { done <- load(clients(), m, 16, cycle, stop) }()
		time.Sleep(time.Duration(300+r.IntN(1000)) * time.Millisecond)
		victim := r.IntN(len(procs))
		m.mu.Lock()
		m.crashAt = time.Now()
		before := len(m.acked) + len(m.deleted)
		m.mu.Unlock()
		procs[victim].kill()
		m.lastLogs = procs[victim].logs.String()
		if cycle == 1 {
			// PostgreSQL restarted under the nodes left: they answer 503
			// meanwhile, and serve again once it is back.
			pg.Stop()
			pg.Start()
		}
		// The other nodes go on taking uploads.
		time.Sleep(time.Second)
		m.mu.Lock()
		afterKill += len(m.acked) + len(m.deleted) - before
		m.crashed = time.Now()
		m.mu.Unlock()
		close(stop)
		ops += <-done
		procs[victim] = serve(t, dirs[victim], nil, args...)
		cs := clients()
		verify(t, cs[r.IntN(len(cs))], m, cycle)
	}
	if afterKill == 0 {
		t.Error("no upload or delete was acknowledged by the other nodes while one was down")
	}
	// Every acknowledged file on every node.
	for i, c := range clients() {
		for name, e := range m.acked {
			code, sum, _, err := c.get(name)
			if err != nil || code != 200 || sum != e.sum {
				t.Fatalf("node %d: %s: %d, %v", i, name, code, err)
			}
		}
		for name := range m.deleted {
			if code, _, _, err := c.get(name); err != nil || code != 404 {
				t.Fatalf("node %d: deleted %s: %d, %v", i, name, code, err)
			}
		}
	}
	for _, p := range procs {
		p.kill()
	}
	out := mustCairn(t, "check", "--data", dirs[1], "--key-file", key)
	t.Logf("%d cycles, %d operations (%d acknowledged by the others while one node was down); %d files live, %d deleted; check: %s",
		cycles, ops, afterKill, len(m.acked), len(m.deleted), out)
}
