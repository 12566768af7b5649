package engine_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/testtool"
)

// TestIndexInPostgres: a store whose index is in PostgreSQL keeps what it
// was given across reopening, and folder and database stay paired: the
// folder is refused without its database or with another, the database
// from another folder, and a second open while the first has it (from
// another process: ErrInUse, as with Pebble's lock).
func TestIndexInPostgres(t *testing.T) {
	pg := testtool.SharedPostgres(t)
	dsn := pg.NewDatabase(t)
	dir := filepath.Join(t.TempDir(), "data")
	opts := engine.Options{Index: dsn, Logger: enginetest.Logger(t)}
	e, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := engine.Key{Namespace: "ns", Tenant: "t", Name: "a.bin"}
	content := bytes.Repeat([]byte("cairn in postgres "), 50_000) // segments, not inline
	if _, err := e.PutRecord(ctx, k, bytes.NewReader(content), engine.Write{}); err != nil {
		t.Fatal(err)
	}
	if e2, err := engine.Open(dir, opts); err == nil {
		e2.Close()
		t.Error("a second open of the folder while the first has it succeeded")
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	for name, o := range map[string]struct {
		dir  string
		opts engine.Options
	}{
		"the folder without its database":  {dir, engine.Options{}},
		"the folder with another database": {dir, engine.Options{Index: pg.NewDatabase(t)}},
		"the database from another folder": {filepath.Join(t.TempDir(), "other"), opts},
	} {
		if e, err := engine.Open(o.dir, o.opts); !errors.Is(err, engine.ErrInvalid) {
			if err == nil {
				e.Close()
			}
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}

	opts.MustExist = true
	e = enginetest.OpenDir(t, dir, opts)
	rec, err := e.GetRecord(k)
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.OpenRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("after reopening: %d bytes, %v", len(got), err)
	}
}

// TestIndexOutage: while the index's PostgreSQL is down, writes and reads
// fail with ErrUnavailable (503 to clients), not as corruption and not
// for good; once it is back they work again, without reopening, and
// nothing acknowledged before is lost.
func TestIndexOutage(t *testing.T) {
	pg := testtool.StartPostgres(t)
	dir := filepath.Join(t.TempDir(), "data")
	e := enginetest.OpenDir(t, dir, engine.Options{Index: pg.NewDatabase(t)})
	ctx := context.Background()
	put := func(name string) error {
		_, err := e.PutRecord(ctx, engine.Key{Namespace: "ns", Tenant: "t", Name: name}, bytes.NewReader(bytes.Repeat([]byte(name), 40_000)), engine.Write{})
		return err
	}
	if err := put("before"); err != nil {
		t.Fatal(err)
	}
	pg.Stop()
	if err := put("during"); !errors.Is(err, engine.ErrUnavailable) || errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("a write while the database is down: %v, want ErrUnavailable", err)
	}
	if _, err := e.GetRecord(engine.Key{Namespace: "ns", Tenant: "t", Name: "before"}); !errors.Is(err, engine.ErrUnavailable) || errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("a read while the database is down: %v, want ErrUnavailable", err)
	}
	time.Sleep(2100 * time.Millisecond) // past the last answer Writable keeps
	if err := e.Writable(); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("Writable (readiness) while the database is down: %v, want ErrUnavailable", err)
	}
	pg.Start()
	if err := put("after"); err != nil {
		t.Fatalf("a write once the database is back: %v", err)
	}
	time.Sleep(2100 * time.Millisecond)
	if err := e.Writable(); err != nil {
		t.Fatalf("Writable once the database is back: %v", err)
	}
	for _, name := range []string{"before", "after"} {
		if _, err := e.GetRecord(engine.Key{Namespace: "ns", Tenant: "t", Name: name}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestIndexAndBucket: a store with its index in PostgreSQL and its
// segments in a bucket is all in those two: a new, empty folder given
// both (and the store's key) takes it on and reads everything, one
// process at a time has it, and a folder given another key or another
// bucket is refused.
func TestIndexAndBucket(t *testing.T) {
	m := testtool.StartMinIO(t)
	pg := testtool.SharedPostgres(t)
	keys := t.TempDir()
	opts := engine.Options{Index: pg.NewDatabase(t), Objects: bucket(t, m, ""), KeyFile: filepath.Join(keys, "secret.key"), Logger: enginetest.Logger(t)}
	first := filepath.Join(t.TempDir(), "first")
	e, err := engine.Open(first, opts)
	if err != nil {
		t.Fatal(err)
	}
	big, small := random(1, 300<<10), random(2, 3000)
	for name, b := range map[string][]byte{"big": big, "small": small} {
		if _, err := e.PutRecord(ctx, key(name), bytes.NewReader(b), engine.Write{}); err != nil {
			t.Fatal(err)
		}
	}
	sealed := e.Seal("test", []byte("a secret"))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(first) // the node's disk, lost

	// Another key, or another bucket: refused.
	other := opts
	other.KeyFile = filepath.Join(keys, "other.key")
	if e, err := engine.Open(filepath.Join(t.TempDir(), "x"), other); !errors.Is(err, engine.ErrInvalid) {
		if err == nil {
			e.Close()
		}
		t.Errorf("a new folder with another key: %v, want ErrInvalid", err)
	}
	other = opts
	other.Objects = bucket(t, m, "elsewhere")
	if e, err := engine.Open(filepath.Join(t.TempDir(), "y"), other); !errors.Is(err, engine.ErrInvalid) {
		if err == nil {
			e.Close()
		}
		t.Errorf("a new folder with another bucket: %v, want ErrInvalid", err)
	}

	second := filepath.Join(t.TempDir(), "second")
	e = enginetest.OpenDir(t, second, opts)
	for name, want := range map[string][]byte{"big": big, "small": small} {
		rec, err := e.GetRecord(key(name))
		if err != nil {
			t.Fatalf("%s in the new folder: %v", name, err)
		}
		if !bytes.Equal(readAll(t, e, rec.Blob), want) {
			t.Fatalf("%s reads other bytes in the new folder", name)
		}
	}
	if got, ok, err := e.Unseal("test", sealed); err != nil || !ok || string(got) != "a secret" {
		t.Fatalf("a secret sealed before: %q, %v, %v", got, ok, err)
	}
	// The store is all in its database and bucket: a third folder is a
	// second node, serving it at the same time.
	third := enginetest.OpenDir(t, filepath.Join(t.TempDir(), "third"), opts)
	rec, err := third.GetRecord(key("big"))
	if err != nil || !bytes.Equal(readAll(t, third, rec.Blob), big) {
		t.Fatalf("big on a second node: %v", err)
	}
}

// TestIndexLockAfterRestart: a PostgreSQL restart ends the session that
// held the lock of a store whose segments are on one machine's disk; the
// next commit takes it again, so that a second process is still refused.
func TestIndexLockAfterRestart(t *testing.T) {
	pg := testtool.StartPostgres(t)
	opts := engine.Options{Index: pg.NewDatabase(t), KeyFile: filepath.Join(t.TempDir(), "secret.key"), Logger: enginetest.Logger(t)}
	e := enginetest.OpenDir(t, filepath.Join(t.TempDir(), "first"), opts)
	if _, err := e.PutRecord(ctx, key("before"), bytes.NewReader(random(1, 1000)), engine.Write{}); err != nil {
		t.Fatal(err)
	}
	pg.Stop()
	pg.Start()
	if _, err := e.PutRecord(ctx, key("after"), bytes.NewReader(random(2, 1000)), engine.Write{}); err != nil {
		t.Fatalf("the first write after the restart: %v", err)
	}
	if e2, err := engine.Open(filepath.Join(t.TempDir(), "second"), opts); !errors.Is(err, engine.ErrInUse) {
		if err == nil {
			e2.Close()
		}
		t.Fatalf("a second process after the restart: %v, want ErrInUse", err)
	}
}
