package engine

import (
	"errors"
	"fmt"

	"github.com/cairnstore/cairn/segment"
)

// Errors callers branch on, with errors.Is.
var (
	// ErrNotFound: no such blob or record.
	ErrNotFound = errors.New("engine: not found")
	// ErrCorrupt: stored bytes or index entries fail verification. Data is
	// never returned wrong; this is returned instead.
	ErrCorrupt = errors.New("engine: corrupt data")
	// ErrExists: a record a transaction was to create exists already
	// (for the APIs to return from their transactions).
	ErrExists = errors.New("engine: record exists")
	// ErrNoSpace: the disk is full (or below the configured reserve).
	// Nothing was stored; reads and deletes keep working, and writes work
	// again once space is freed.
	ErrNoSpace = errors.New("engine: no space left")
	// ErrReadOnly: a write or sync failed earlier, so the engine refuses
	// writes until it is reopened. Reads keep working.
	ErrReadOnly = errors.New("engine: read-only after a write failure")
	// ErrClosed: the engine was closed.
	ErrClosed = errors.New("engine: closed")
	// ErrInvalid: an argument is not acceptable (an empty namespace, say).
	ErrInvalid = errors.New("engine: invalid argument")
	// ErrNoStore: Options.MustExist, and the folder holds no store.
	ErrNoStore = errors.New("engine: no store")
	// ErrInUse: another process has the store open.
	ErrInUse = errors.New("engine: store in use")
	// ErrBusy: every upload slot stayed taken for Options.UploadWait.
	// Nothing was stored; the client may retry later.
	ErrBusy = errors.New("engine: too many uploads at once")
)

// corrupt wraps an error so that it matches ErrCorrupt and keeps its cause.
func corrupt(err error) error {
	if errors.Is(err, ErrCorrupt) {
		return err
	}
	if errors.Is(err, ErrUnavailable) {
		return err // not bad bytes: a database away
	}
	return fmt.Errorf("%w: %w", ErrCorrupt, err)
}

// corruptf reports an index inconsistency.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// isCorrupt reports whether err came from bad bytes on disk.
func isCorrupt(err error) bool {
	return errors.Is(err, segment.ErrCorrupt) || errors.Is(err, ErrCorrupt)
}
