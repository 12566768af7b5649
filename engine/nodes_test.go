package engine_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/testtool"
)

// nodes opens n engines, each with a folder of its own, on one store: an
// index in a PostgreSQL database and segments in a MinIO bucket.
func nodes(t *testing.T, n int, opts engine.Options) []*engine.Engine {
	t.Helper()
	m := testtool.StartMinIO(t)
	pg := testtool.SharedPostgres(t)
	opts.Index = pg.NewDatabase(t)
	opts.Objects = bucket(t, m, "")
	opts.KeyFile = filepath.Join(t.TempDir(), "secret.key")
	var out []*engine.Engine
	for i := range n {
		o := opts
		o.Node = fmt.Sprintf("node%d", i)
		e := enginetest.OpenDir(t, filepath.Join(t.TempDir(), o.Node), o)
		if !e.Shared() {
			t.Fatal("a store with its index in PostgreSQL and segments in a bucket is not shared")
		}
		out = append(out, e)
	}
	return out
}

// TestNodesCounter: 16 writers on two nodes each add one to a counter
// kept in a record, read and written in one transaction: no increment is
// lost, as none is on one node (the stripes), because a commit over
// which another node committed is redone.
func TestNodesCounter(t *testing.T) {
	ns := nodes(t, 2, engine.Options{})
	k := engine.Key{Namespace: "test", Tenant: "t", Name: "counter"}
	const writers, each = 16, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := ns[w%2]
			for range each {
				err := e.Update(ctx, func(tx *engine.Tx) error {
					var n uint64
					if r, err := tx.Get(k); err == nil {
						n = binary.BigEndian.Uint64(r.Meta)
					} else if !errors.Is(err, engine.ErrNotFound) {
						return err
					}
					_, err := tx.Put(k, engine.Record{Meta: binary.BigEndian.AppendUint64(nil, n+1)}, nil)
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, e := range ns {
		r, err := e.GetRecord(k)
		if err != nil {
			t.Fatal(err)
		}
		if n := binary.BigEndian.Uint64(r.Meta); n != writers*each || r.Version != writers*each {
			t.Fatalf("node %d: counter %d, version %d; want %d", i, n, r.Version, writers*each)
		}
	}
	st0, _ := ns[0].Stats()
	st1, _ := ns[1].Stats()
	t.Logf("%d increments, %d transactions redone after another node's commit", writers*each, st0.Conflicts+st1.Conflicts)
}

// TestNodesShareContent: uploads of shared and distinct contents on three
// nodes, deletes and overwrites, while every node runs GC passes (one at
// a time, by the lease) with no grace period, so that releases,
// compaction and deduplication onto chunks being released meet across
// nodes. Every record acknowledged and not deleted then reads back
// byte-exact on every node, and the store checks clean.
func TestNodesShareContent(t *testing.T) {
	const grace = 300 * time.Millisecond
	ns := nodes(t, 3, engine.Options{GCGrace: grace, SegmentSize: 1 << 20, InlineMax: -1})
	contents := make([][]byte, 6)
	for i := range contents {
		contents[i] = random(uint64(100+i), 200<<10+i*1000)
	}
	type put struct {
		content int
		deleted bool
	}
	var mu sync.Mutex
	acked := map[engine.Key]put{}
	stop := make(chan struct{})
	var gcs, elsewhere, refused atomic.Int64
	var bg sync.WaitGroup
	for _, e := range ns {
		bg.Add(1)
		go func() {
			defer bg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				rep, err := e.GC(ctx, false)
				if err != nil {
					t.Errorf("GC on %s: %v", e.Node(), err)
					return
				}
				gcs.Add(1)
				if rep.Elsewhere {
					elsewhere.Add(1)
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				e := ns[(w+i)%3]
				k := engine.Key{Namespace: "test", Tenant: "t", Name: fmt.Sprintf("w%d-%d", w, i%8)}
				if i%5 == 4 {
					err := e.DeleteRecord(ctx, k)
					if err == nil || errors.Is(err, engine.ErrNotFound) {
						mu.Lock()
						acked[k] = put{deleted: true}
						mu.Unlock()
						continue
					}
					t.Errorf("delete %s on %s: %v", k, e.Node(), err)
					return
				}
				c := (w + i) % 6 // the shared ones
				mu.Lock()
				data := contents[c]
				mu.Unlock()
				if i%3 == 0 {
					data = random(uint64(w*1000+i), 100<<10) // one of its own
					c = -1
				}
				_, err := e.PutRecord(ctx, k, bytes.NewReader(data), engine.Write{})
				if errors.Is(err, engine.ErrUnavailable) {
					// Slower than the grace period (its segment compacted
					// away, or a chunk it found released): refused, not
					// stored; the client would upload again.
					refused.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("put %s on %s: %v", k, e.Node(), err)
					return
				}
				if c < 0 {
					mu.Lock()
					contents = append(contents, data)
					c = len(contents) - 1
					acked[k] = put{content: c}
					mu.Unlock()
					continue
				}
				mu.Lock()
				acked[k] = put{content: c}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	bg.Wait()
	if t.Failed() {
		return
	}
	var compacted, conflicts uint64
	for _, e := range ns {
		st, _ := e.Stats()
		compacted += st.Compacted
		conflicts += st.Conflicts
	}
	t.Logf("%d GC calls, %d found another node's pass running; %d segments compacted; %d transactions redone after another node's commit; %d uploads refused as slower than the grace period",
		gcs.Load(), elsewhere.Load(), compacted, conflicts, refused.Load())
	for _, e := range ns {
		for k, p := range acked {
			rec, err := e.GetRecord(k)
			if p.deleted {
				if !errors.Is(err, engine.ErrNotFound) {
					t.Fatalf("%s, deleted, on %s: %v", k, e.Node(), err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s on %s: %v", k, e.Node(), err)
			}
			if !bytes.Equal(readAll(t, e, rec.Blob), contents[p.content]) {
				t.Fatalf("%s on %s reads other bytes", k, e.Node())
			}
		}
	}
	// Everything deleted: after passes past the grace period, nothing
	// stays but what the records hold.
	for k, p := range acked {
		if !p.deleted {
			if err := ns[0].DeleteRecord(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 3 {
		time.Sleep(grace)
		for _, e := range ns {
			if err := e.Heartbeat(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ns[1].GC(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := ns[2].Stats()
	if st.Records != 0 || st.Blobs != 0 || st.Chunks != 0 {
		t.Fatalf("after deleting everything and GC: %+v", st.Totals)
	}
}

// TestNodesLease: a lease is one node's at a time, and another's once
// its holder stops.
func TestNodesLease(t *testing.T) {
	ns := nodes(t, 2, engine.Options{})
	inside := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error)
	go func() {
		held, err := ns[0].WithLease(ctx, engine.LeaseScrub, func(context.Context) error {
			close(inside)
			<-release
			return nil
		})
		if err == nil && !held {
			err = errors.New("the first node did not get the lease")
		}
		done <- err
	}()
	<-inside
	ran := false
	held, err := ns[1].WithLease(ctx, engine.LeaseScrub, func(context.Context) error { ran = true; return nil })
	if err != nil || held || ran {
		t.Fatalf("a second node while the first holds the lease: held %v, ran %v, %v", held, ran, err)
	}
	if h, ok, err := ns[1].LeaseHolder(engine.LeaseScrub); err != nil || !ok || h != "node0" {
		t.Fatalf("LeaseHolder = %q, %v, %v", h, ok, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	held, err = ns[1].WithLease(ctx, engine.LeaseScrub, func(context.Context) error { ran = true; return nil })
	if err != nil || !held || !ran {
		t.Fatalf("the second node once the first let go: held %v, ran %v, %v", held, ran, err)
	}
}

// TestNodesLongOperations: an upload on one node that relies on chunks
// it found stored, and a download on it, both lasting well past the GC
// grace period, while another node deletes the content's record and runs
// GC pass after pass: neither loses anything, because GC takes nothing
// unreferenced since after the first node's horizon (the start of its
// oldest operation in flight). Once they are done, the space comes back.
func TestNodesLongOperations(t *testing.T) {
	const grace = 100 * time.Millisecond
	ns := nodes(t, 2, engine.Options{GCGrace: grace, InlineMax: -1})
	a, b := ns[0], ns[1]
	content := random(7, 12<<20) // past the chunker's 8 MiB buffer: the first chunks are looked up while the rest is still coming
	k1 := engine.Key{Namespace: "test", Tenant: "t", Name: "one"}
	k2 := engine.Key{Namespace: "test", Tenant: "t", Name: "two"}
	if _, err := a.PutRecord(ctx, k1, bytes.NewReader(content), engine.Write{}); err != nil {
		t.Fatal(err)
	}
	collect := func() {
		t.Helper()
		for range 3 {
			time.Sleep(2 * grace)
			if err := b.Heartbeat(); err != nil {
				t.Fatal(err)
			}
			if _, err := a.GC(ctx, false); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The same bytes uploaded on b, slowly: its first chunks are found
	// stored (and relied on) before k1 goes.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := b.PutRecord(ctx, k2, pr, engine.Write{})
		done <- err
	}()
	if _, err := pw.Write(content[:10<<20]); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteRecord(ctx, k1); err != nil {
		t.Fatal(err)
	}
	collect()
	if _, err := pw.Write(content[10<<20:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatalf("the upload that outlasted the grace period: %v", err)
	}

	// A download on b, half read when a deletes the record and collects.
	rec, err := b.GetRecord(k2)
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.OpenRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(content))
	if _, err := io.ReadFull(r, got[:6<<20]); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteRecord(ctx, k2); err != nil {
		t.Fatal(err)
	}
	collect()
	if _, err := io.ReadFull(r, got[6<<20:]); err != nil {
		t.Fatalf("the download that outlasted the grace period: %v", err)
	}
	r.Close()
	if !bytes.Equal(got, content) {
		t.Fatal("the download read other bytes")
	}
	collect()
	if st, _ := a.Stats(); st.Blobs != 0 || st.Chunks != 0 {
		t.Fatalf("once both are done: %d blobs, %d chunks left", st.Blobs, st.Chunks)
	}
}
