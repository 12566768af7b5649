package engine_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"

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
	pg.Start()
	if err := put("after"); err != nil {
		t.Fatalf("a write once the database is back: %v", err)
	}
	for _, name := range []string{"before", "after"} {
		if _, err := e.GetRecord(engine.Key{Namespace: "ns", Tenant: "t", Name: name}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
