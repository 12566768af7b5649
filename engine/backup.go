package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/segment"
)

// BackupReport says what Backup copied.
type BackupReport struct {
	// Segments copied whole or hard-linked (Linked of them), and the
	// bytes of the active one copied up to what was synced.
	Segments, Linked int
	Bytes            int64
	// KeyFile is set when the store's key file was in its data folder and
	// was copied too; otherwise it is to be kept (and restored) apart.
	KeyFile bool
}

// Backup writes a consistent copy of the store to dir, a new folder,
// while it keeps serving: a checkpoint of the index, then the segments it
// needs. Every upload acknowledged before Backup began is in the copy
// (its index entry is committed, so in the checkpoint, and its bytes were
// synced, so before the synced end read after it). Sealed segments never
// change and are hard-linked where dir is on the same file system; the
// active one is copied up to that synced end. GC waits meanwhile, so that
// no segment the checkpoint points into is removed. The copy is a data
// folder: Open it, or copy it back with Restore.
//
// In object mode the segments are in the object store, and Backup is
// refused: back up the bucket with the service's own tools.
func (e *Engine) Backup(ctx context.Context, dir string) (BackupReport, error) {
	var rep BackupReport
	if err := e.begin(); err != nil {
		return rep, err
	}
	defer e.end()
	if e.opts.Objects != nil {
		return rep, fmt.Errorf("%w: the segments are in %s: back up the bucket with its own tools", ErrInvalid, e.opts.Objects)
	}
	if e.opts.Index != "" {
		return rep, fmt.Errorf("%w: the index is in PostgreSQL: back it up with PostgreSQL's tools (pg_dump), then the folder", ErrInvalid)
	}
	if _, err := e.fs.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		return rep, fmt.Errorf("%w: backup folder %s exists already", ErrInvalid, dir)
	}
	e.gcMu.Lock()
	defer e.gcMu.Unlock()
	segDir := e.fs.PathJoin(dir, segmentsDir)
	if err := e.fs.MkdirAll(segDir, DirMode); err != nil {
		return rep, fmt.Errorf("engine: backup: %w", err)
	}
	if err := e.idx.Checkpoint(e.fs.PathJoin(dir, indexDir)); err != nil {
		return rep, err
	}
	synced := e.w.Synced()
	ids, _, err := e.segmentIDs(ctx)
	if err != nil {
		return rep, fmt.Errorf("engine: backup: %w", err)
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if id > synced.Segment {
			break // begun after the checkpoint: nothing in it points there
		}
		from := e.fs.PathJoin(e.segDir, segment.FileName(id))
		to := e.fs.PathJoin(segDir, segment.FileName(id))
		if id < synced.Segment {
			// Sealed: it never changes again.
			if err := e.fs.Link(from, to); err == nil {
				rep.Segments++
				rep.Linked++
				continue
			}
		}
		n := int64(-1) // whole
		if id == synced.Segment {
			n = synced.Offset
		}
		copied, err := copyFile(e.fs, from, to, n)
		if err != nil {
			return rep, fmt.Errorf("engine: backup: %w", err)
		}
		rep.Segments++
		rep.Bytes += copied
	}
	if err := segment.SyncDir(e.fs, segDir); err != nil {
		return rep, err
	}
	if filepath.Dir(e.keyFile) == filepath.Clean(e.dir) {
		if _, err := copyFile(e.fs, e.keyFile, e.fs.PathJoin(dir, filepath.Base(e.keyFile)), -1); err != nil {
			return rep, fmt.Errorf("engine: backup: %w", err)
		}
		rep.KeyFile = true
	}
	if err := segment.SyncDir(e.fs, dir); err != nil {
		return rep, err
	}
	return rep, nil
}

// Restore copies a backup (a folder Backup wrote) to dir, a new data
// folder, and checks it opens: Open runs recovery on it as after a crash.
// The backup is left as it was.
func Restore(backup, dir string, opts Options) error {
	fs := vfs.FS(privateFS{vfs.Default})
	if opts.FS != nil {
		fs = opts.FS
	}
	if _, err := fs.Stat(fs.PathJoin(backup, indexDir)); err != nil {
		return fmt.Errorf("%w: %s is not a backup: %w", ErrInvalid, backup, err)
	}
	if _, err := fs.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s exists already; restore into a new folder", ErrInvalid, dir)
	}
	if err := copyTree(fs, backup, dir); err != nil {
		return fmt.Errorf("engine: restore: %w", err)
	}
	opts.MustExist = true
	e, err := Open(dir, opts)
	if err != nil {
		return fmt.Errorf("engine: restore: the copy does not open: %w", err)
	}
	return e.Close()
}

// copyTree copies the files of src into dst, folders included, synced.
func copyTree(fs vfs.FS, src, dst string) error {
	if err := fs.MkdirAll(dst, DirMode); err != nil {
		return err
	}
	names, err := fs.List(src)
	if err != nil {
		return err
	}
	for _, n := range names {
		from, to := fs.PathJoin(src, n), fs.PathJoin(dst, n)
		st, err := fs.Stat(from)
		if err != nil {
			return err
		}
		if st.IsDir() {
			if err := copyTree(fs, from, to); err != nil {
				return err
			}
			continue
		}
		if _, err := copyFile(fs, from, to, -1); err != nil {
			return err
		}
	}
	return segment.SyncDir(fs, dst)
}

// copyFile copies the first n bytes of from (all, with n < 0) to a new
// file to, synced, and returns how many it copied.
func copyFile(fs vfs.FS, from, to string, n int64) (int64, error) {
	in, err := fs.Open(from)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := fs.Create(to, vfs.WriteCategoryUnspecified)
	if err != nil {
		return 0, err
	}
	var r io.Reader = in
	if n >= 0 {
		r = io.LimitReader(in, n)
	}
	copied, err := io.Copy(out, r)
	if err == nil && n >= 0 && copied != n {
		err = fmt.Errorf("%s: %d bytes, want %d", from, copied, n)
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return copied, err
}
