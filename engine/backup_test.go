package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
)

// TestBackup takes a backup while uploads go on, restores it to a new
// folder, and finds there every upload acknowledged before the backup
// began, byte for byte, in a store that passes Check and Scrub.
func TestBackup(t *testing.T) {
	e := enginetest.Open(t, engine.Options{SegmentSize: 4 << 20})
	if os.Getenv(enginetest.IndexEnv) == "postgres" || os.Getenv(enginetest.StoreEnv) == "s3" {
		// The index in PostgreSQL, or the segments in a bucket: each is
		// backed up with its service's own tools.
		if _, err := e.Backup(context.Background(), filepath.Join(t.TempDir(), "b")); !errors.Is(err, engine.ErrInvalid) {
			t.Fatalf("Backup with the index in PostgreSQL or the segments in a bucket: %v, want ErrInvalid", err)
		}
		return
	}
	var (
		mu    sync.Mutex
		acked = map[string][]byte{}
		stop  atomic.Bool
		wg    sync.WaitGroup
		n     atomic.Int64
		// filled is closed once ~20 MB are uploaded: a few segments sealed.
		filled   = make(chan struct{})
		fillOnce sync.Once
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				name := fmt.Sprintf("w%d/%d", w, i)
				body := random(uint64(w*10000+i), 1000+(i*37%200)<<10)
				if _, err := e.PutRecord(ctx, key(name), bytes.NewReader(body), engine.Write{}); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[name] = body
				mu.Unlock()
				if n.Add(1) == 200 {
					fillOnce.Do(func() { close(filled) })
				}
			}
		})
	}
	select {
	case <-filled:
	case <-time.After(time.Minute):
		stop.Store(true)
		wg.Wait()
		t.Fatalf("only %d uploads in a minute", n.Load())
	}
	mu.Lock()
	before := map[string][]byte{}
	for k, v := range acked {
		before[k] = v
	}
	mu.Unlock()
	backup := filepath.Join(t.TempDir(), "backup")
	rep, err := e.Backup(ctx, backup)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backup under load: %d segments (%d hard-linked), %d bytes copied; %d uploads acknowledged before it", rep.Segments, rep.Linked, rep.Bytes, len(before))
	if rep.Segments < 2 || rep.Linked == 0 || !rep.KeyFile {
		t.Errorf("backup report %+v: want several segments, sealed ones linked, the key file", rep)
	}
	if _, err := e.Backup(ctx, backup); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("a backup over an existing folder: %v", err)
	}
	filepath.WalkDir(backup, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		if perm := info.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s is %v: a backup is private", p, perm)
		}
		return nil
	})

	restored := filepath.Join(t.TempDir(), "restored")
	if err := engine.Restore(backup, restored, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := engine.Restore(backup, restored, engine.Options{}); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("a restore over an existing folder: %v", err)
	}
	r := enginetest.OpenDir(t, restored, engine.Options{})
	for name, body := range before {
		rec, err := r.GetRecord(key(name))
		if err != nil {
			t.Fatalf("%s, acknowledged before the backup: %v", name, err)
		}
		if !bytes.Equal(readAll(t, r, rec.Blob), body) {
			t.Fatalf("%s reads back wrong", name)
		}
	}
	if rep, err := r.Scrub(ctx, 1); err != nil || len(rep.Corrupt) > 0 {
		t.Fatalf("scrub of the restored store: %+v, %v", rep, err)
	}
	// The restored store takes uploads, and the backup is untouched.
	if _, err := r.PutRecord(ctx, key("after"), bytes.NewReader(random(99, 100<<10)), engine.Write{}); err != nil {
		t.Fatal(err)
	}
}
