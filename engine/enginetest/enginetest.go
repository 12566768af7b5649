// Package enginetest opens real engines for tests: a real Pebble and real
// segment files on a test's temporary directory (or a given vfs.FS), with
// engine.Check run when the test ends, so that every test also proves the
// store it leaves behind is consistent.
//
//	e := enginetest.Open(t, engine.Options{})
//	... use e ...
//	// at cleanup: e.Check, then e.Close
package enginetest

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/testtool"
	"github.com/cairnstore/cairn/objstore"
)

// Open opens an engine on a new temporary directory (or, with opts.FS set,
// on "data" in that file system). At cleanup, unless the test closed it,
// Check must pass and Close must succeed.
//
// With CAIRN_TEST_STORE=s3 (StoreEnv) an engine on the real disk keeps its
// segments in a bucket of a MinIO server of its own instead, so that the
// same tests run on both kinds of store (.ci/run runs the API packages'
// tests so too).
//
// With CAIRN_TEST_INDEX=postgres (IndexEnv) such an engine keeps its index
// in a database of its own in a PostgreSQL cluster the test binary shares
// (testtool.SharedPostgres), so that the engine's tests run on both
// kinds of index; OpenDir opens the same folder with the same database
// again.
func Open(t testing.TB, opts engine.Options) *engine.Engine {
	t.Helper()
	nodes := os.Getenv(NodesEnv) == "2" && opts.FS == nil
	if (nodes || os.Getenv(StoreEnv) == "s3") && opts.FS == nil && opts.Objects == nil {
		opts.Objects = Bucket(t)
	}
	dir := "data"
	if opts.FS == nil {
		// A folder the engine makes, private from the start (the test's
		// own temporary folder is open to all).
		dir = filepath.Join(t.TempDir(), "data")
	}
	if (nodes || os.Getenv(IndexEnv) == "postgres") && opts.FS == nil && opts.Index == "" {
		databases.Store(dir, testtool.SharedPostgres(t).NewDatabase(t))
	}
	e := OpenDir(t, dir, opts)
	if opts.KeyFile == "" {
		opts.KeyFile = filepath.Join(dir, engine.KeyFileName)
	}
	opened.Store(e, IndexOf(dir, opts))
	return e
}

// NodesEnv names the environment variable that makes the engines Open
// makes stores several nodes may share (as StoreEnv=s3 and
// IndexEnv=postgres together), and has SecondNode open a second node of
// each: "2". The API packages' tests then serve each store from two
// nodes, requests alternating between them (.ci/run runs them so).
const NodesEnv = "CAIRN_TEST_NODES"

// opened are the options of the engines Open made, by engine.
var opened sync.Map

// SecondNode returns, under NodesEnv=2, a second node of the store of e
// (which Open made): an engine with a folder of its own on the same
// database, bucket and key, closed when t ends. Otherwise nil.
func SecondNode(t testing.TB, e *engine.Engine) *engine.Engine {
	t.Helper()
	o, ok := opened.Load(e)
	if !ok || os.Getenv(NodesEnv) != "2" || !e.Shared() {
		return nil
	}
	opts := o.(engine.Options)
	opts.Node = "second"
	e2 := OpenDir(t, filepath.Join(t.TempDir(), "second"), opts)
	others.Store(e, e2)
	return e2
}

// others are the second nodes SecondNode opened, by the first.
var others sync.Map

// IndexEnv names the environment variable that moves the index of the
// engines Open makes to PostgreSQL: "postgres".
const IndexEnv = "CAIRN_TEST_INDEX"

// databases are the PostgreSQL databases of the folders Open made, by
// folder, under IndexEnv.
var databases sync.Map

// IndexOf returns the options to open dir again with: with its database,
// under IndexEnv, if Open gave it one.
func IndexOf(dir string, opts engine.Options) engine.Options {
	if dsn, ok := databases.Load(dir); ok && opts.Index == "" {
		opts.Index = dsn.(string)
	}
	return opts
}

// OpenDir is Open on a given directory.
func OpenDir(t testing.TB, dir string, opts engine.Options) *engine.Engine {
	t.Helper()
	opts = IndexOf(dir, opts)
	if opts.Logger == nil {
		opts.Logger = Logger(t)
	}
	e, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatalf("engine.Open(%s): %v", dir, err)
	}
	t.Cleanup(func() {
		if err := e.Check(context.Background()); err != nil {
			if errors.Is(err, engine.ErrClosed) {
				return
			}
			t.Errorf("engine.Check at cleanup: %v", err)
		}
		if err := e.Close(); err != nil && !errors.Is(err, engine.ErrClosed) && !errors.Is(err, engine.ErrReadOnly) {
			t.Errorf("engine.Close at cleanup: %v", err)
		}
	})
	return e
}

// Logger logs warnings and errors to the test's output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// StoreEnv names the environment variable that moves the segments of the
// engines Open makes to an object store: "s3".
const StoreEnv = "CAIRN_TEST_STORE"

// Bucket starts a MinIO server for t (stopped when t ends) and returns
// an empty place in its bucket, for engine.Options.Objects.
func Bucket(t testing.TB) *objstore.Bucket {
	t.Helper()
	m := testtool.StartMinIO(t)
	cfg, err := objstore.FromEnv("s3://"+m.Bucket+"/store", "", m.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := objstore.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Collect gives back, on a store several nodes share, the space of what
// lost its last reference: there GC releases blobs and chunks only once
// they have been unreferenced for the grace period and since before
// every node's horizon (engine/nodes.go), so Collect moves the test's
// clock on with advance (asked for 2 h; a store with no grace period
// needs only a moment) and runs the passes that release the blobs, then
// their chunks. On other stores, where that happens at once, it does
// nothing.
func Collect(t testing.TB, e *engine.Engine, advance func(time.Duration)) {
	t.Helper()
	if !e.Shared() {
		return
	}
	for range 2 {
		if advance != nil {
			advance(2 * time.Hour)
		}
		// The other node's horizon, as of the new time (engine/nodes.go);
		// GC publishes its own.
		if o, ok := others.Load(e); ok {
			if err := o.(*engine.Engine).Heartbeat(); err != nil {
				t.Fatalf("Heartbeat: %v", err)
			}
		}
		if _, err := e.GC(context.Background(), false); err != nil {
			t.Fatalf("GC: %v", err)
		}
	}
}
