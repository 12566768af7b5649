package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/segment"
)

// ObjectsRestoreReport says what RestoreObjects found.
type ObjectsRestoreReport struct {
	// Segments are the segment objects read, Bytes their size.
	Segments int
	Bytes    int64
	// Transactions are the logged transactions replayed; Checkpoint the
	// number of the checkpoint they were replayed onto (0: none).
	Transactions int
	Checkpoint   uint64
}

// RestoreObjects rebuilds a store in dir, a new data folder, from its
// object store alone (the data folder lost): it fetches every segment
// object (they become the folder's local copies), replays the logged
// transactions in the order they were numbered (log.go) into a new
// index, records each segment as sealed at its object's size, and opens
// the result, which must pass Check. Every transaction acknowledged by
// the store that wrote the bucket is in it.
//
// The store's key file is not in the bucket (on purpose: the bucket alone
// grants nothing): pass the one kept apart as opts.KeyFile, or the sealed
// secrets (token keys, signing secrets) will not open; identities and
// records are restored either way.
func RestoreObjects(ctx context.Context, objs Objects, dir string, opts Options) (ObjectsRestoreReport, error) {
	var rep ObjectsRestoreReport
	opts, err := opts.withDefaults()
	if err != nil {
		return rep, err
	}
	fs := opts.FS
	if fs == vfs.Default {
		fs = privateFS{fs}
	}
	if _, err := fs.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		return rep, fmt.Errorf("%w: %s exists already; restore into a new folder", ErrInvalid, dir)
	}
	segDir := fs.PathJoin(dir, segmentsDir)
	if err := fs.MkdirAll(segDir, DirMode); err != nil {
		return rep, fmt.Errorf("engine: restore: %w", err)
	}
	list, err := objs.List(ctx, "segments/")
	if err != nil {
		return rep, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	type logged struct {
		seq  uint64
		repr []byte
	}
	var logs []logged
	seen := map[blob.ID]bool{} // compaction copies log records: once each
	sizes := map[uint64]int64{}
	comp := segment.NewCompressor()
	defer comp.Close()
	for _, o := range list {
		id, ok := segment.ParseFileName(strings.TrimPrefix(o.Name, "segments/"))
		if !ok {
			continue
		}
		path := fs.PathJoin(segDir, segment.FileName(id))
		if err := fetch(ctx, fs, objs, o.Name, path, o.Size); err != nil {
			return rep, err
		}
		f, err := fs.Open(path)
		if err != nil {
			return rep, fmt.Errorf("engine: restore: %w", err)
		}
		sc := segment.NewScanner(f, o.Size, o.Name, segment.FileHeaderSize, comp)
		for sc.Next() {
			r := sc.Record()
			if r.Kind != segment.KindLog || seen[r.ID] {
				continue
			}
			if len(r.Payload) < 8 {
				f.Close()
				return rep, corruptf("log record in %s at %d: %d bytes", o.Name, r.Offset, len(r.Payload))
			}
			seen[r.ID] = true
			logs = append(logs, logged{binary.BigEndian.Uint64(r.Payload), bytes.Clone(r.Payload[8:])})
		}
		f.Close()
		if err := sc.Err(); err != nil || sc.End() != o.Size {
			return rep, corruptf("segment object %s: scanned to %d of %d bytes: %v", o.Name, sc.End(), o.Size, err)
		}
		sizes[id] = o.Size
		rep.Segments++
		rep.Bytes += o.Size
	}
	slices.SortFunc(logs, func(a, b logged) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})

	// Start from the newest checkpoint, if there is one, and replay only
	// what was logged after it.
	covered, err := restoreCheckpoint(ctx, &restoreEnv{fs, objs}, fs.PathJoin(dir, indexDir))
	if err != nil {
		return rep, err
	}
	rep.Checkpoint = covered
	logs = slices.DeleteFunc(logs, func(l logged) bool { return l.seq <= covered })
	idx, err := index.Open(fs, fs.PathJoin(dir, indexDir), index.Options{Logger: opts.Logger, CacheSize: opts.IndexCacheSize})
	if err != nil {
		return rep, err
	}
	defer func() {
		if idx != nil {
			idx.Close()
		}
	}()
	for _, l := range logs {
		if err := idx.Apply(l.repr); err != nil {
			return rep, corrupt(err)
		}
		rep.Transactions++
	}
	// Seals are not logged (a segment is sealed by being put): each is
	// sealed at its object's size; one whose object is gone was compacted
	// away, and nothing may live in it.
	segs, err := idx.Segments()
	if err != nil {
		return rep, err
	}
	b := idx.NewBatch()
	defer b.Close()
	for _, s := range segs {
		if _, ok := sizes[s.ID]; !ok {
			if s.LiveChunks > 0 {
				return rep, corruptf("segment %s holds %d chunks by the log, but its object is missing", segment.FileName(s.ID), s.LiveChunks)
			}
			b.DeleteSegment(s.ID)
		}
	}
	for id, size := range sizes {
		b.SetSealed(id, size)
		b.RaiseEnd(id, size)
	}
	if err := b.Commit(); err != nil {
		return rep, err
	}
	if err := idx.Close(); err != nil {
		return rep, err
	}
	idx = nil

	of, err := fs.Create(fs.PathJoin(dir, objectsFile), vfs.WriteCategoryUnspecified)
	if err != nil {
		return rep, fmt.Errorf("engine: restore: %w", err)
	}
	_, err = of.Write([]byte(objs.String() + "\n"))
	if err == nil {
		err = of.Sync()
	}
	if cerr := of.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return rep, fmt.Errorf("engine: restore: %w", err)
	}
	if err := segment.SyncDir(fs, dir); err != nil {
		return rep, err
	}
	opts.Objects, opts.MustExist = objs, true
	e, err := Open(dir, opts)
	if err != nil {
		return rep, fmt.Errorf("engine: restore: the rebuilt store does not open: %w", err)
	}
	if err := e.Check(ctx); err != nil {
		e.Close()
		return rep, fmt.Errorf("engine: restore: the rebuilt store does not check: %w", err)
	}
	return rep, e.Close()
}

// fetch copies object name, of size bytes, to a new local file at path,
// in pieces of 16 MiB, synced.
func fetch(ctx context.Context, fs vfs.FS, objs Objects, name, path string, size int64) error {
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("engine: restore: %w", err)
	}
	buf := make([]byte, min(size, 16<<20))
	for off := int64(0); off < size; {
		p := buf[:min(int64(len(buf)), size-off)]
		if err := objs.ReadAt(ctx, name, p, off); err != nil {
			f.Close()
			return fmt.Errorf("%w: fetching %s: %w", ErrUnavailable, name, err)
		}
		if _, err := f.Write(p); err != nil {
			f.Close()
			return fmt.Errorf("engine: restore: %w", err)
		}
		off += int64(len(p))
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("engine: restore: %w", err)
	}
	return nil
}
