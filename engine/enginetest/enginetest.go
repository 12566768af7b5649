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
	"path/filepath"
	"testing"

	"github.com/cairnstore/cairn/engine"
)

// Open opens an engine on a new temporary directory (or, with opts.FS set,
// on "data" in that file system). At cleanup, unless the test closed it,
// Check must pass and Close must succeed.
func Open(t testing.TB, opts engine.Options) *engine.Engine {
	t.Helper()
	dir := "data"
	if opts.FS == nil {
		// A folder the engine makes, private from the start (the test's
		// own temporary folder is open to all).
		dir = filepath.Join(t.TempDir(), "data")
	}
	return OpenDir(t, dir, opts)
}

// OpenDir is Open on a given directory.
func OpenDir(t testing.TB, dir string, opts engine.Options) *engine.Engine {
	t.Helper()
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
