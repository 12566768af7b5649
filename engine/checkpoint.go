package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Checkpoints bound the log of object mode (log.go). A checkpoint is a
// copy of the index put into the object store, under
// checkpoints/<number>/, with a manifest, checkpoints/<number>.json,
// put last: the index as it was when every logged transaction up to
// that number, and none after, was committed. Once one is in the bucket,
// compaction drops the log records it covers instead of carrying them
// forward, and a restore starts from it and replays only the rest.

// checkpointMeta is the meta key of the number of the last checkpoint put.
const checkpointMeta = "checkpointed"

// checkpointManifest lists a checkpoint's files, for restore.
type checkpointManifest struct {
	Seq   uint64   `json:"seq"`
	Files []string `json:"files"`
}

func checkpointName(seq uint64) string { return fmt.Sprintf("checkpoints/%016x", seq) }

// checkpointed is the number of the last checkpoint put (0: none).
func (e *Engine) checkpointed() (uint64, error) {
	v, ok, err := e.idx.Meta(checkpointMeta)
	if err != nil || !ok || len(v) != 8 {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// checkpoint puts a copy of the index into the object store when
// transactions were logged since the last one; it keeps the last two and
// deletes older ones. Every stripe is held while the copy is taken (a
// few hard links): no transaction is then between its number and its
// commit, so the copy holds exactly those numbered up to seq.
func (e *Engine) checkpoint(ctx context.Context) error {
	last, err := e.checkpointed()
	if err != nil {
		return err
	}
	all := newLockSet(e.locks)
	everything := make([]int, numStripes)
	for i := range everything {
		everything[i] = i
	}
	all.lockAll(everything)
	seq := e.logSeq.Load()
	tmp := e.fs.PathJoin(e.dir, "checkpoint.tmp")
	e.fs.RemoveAll(tmp)
	var cerr error
	if seq > last {
		cerr = e.idx.Checkpoint(tmp)
	}
	all.unlockAll()
	defer e.fs.RemoveAll(tmp)
	if cerr != nil || seq <= last {
		return cerr
	}
	names, err := e.fs.List(tmp)
	if err != nil {
		return fmt.Errorf("engine: checkpoint: %w", err)
	}
	slices.Sort(names)
	m := checkpointManifest{Seq: seq}
	base := checkpointName(seq)
	for _, n := range names {
		path := e.fs.PathJoin(tmp, n)
		st, err := e.fs.Stat(path)
		if err != nil || st.IsDir() {
			continue
		}
		f, err := e.fs.Open(path)
		if err != nil {
			return fmt.Errorf("engine: checkpoint: %w", err)
		}
		err = e.opts.Objects.Put(ctx, base+"/"+n, f, st.Size())
		f.Close()
		if err != nil {
			return fmt.Errorf("%w: checkpoint: %w", ErrUnavailable, err)
		}
		m.Files = append(m.Files, n)
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := e.opts.Objects.Put(ctx, base+".json", bytes.NewReader(body), int64(len(body))); err != nil {
		return fmt.Errorf("%w: checkpoint: %w", ErrUnavailable, err)
	}
	b := e.idx.NewBatch()
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], seq)
	b.SetMeta(checkpointMeta, v[:])
	if err := b.Commit(); err != nil {
		return e.fail(err)
	}
	e.log.Info("index checkpoint put into the object store", "checkpoint", base, "files", len(m.Files))
	return e.pruneCheckpoints(ctx, 2)
}

// pruneCheckpoints deletes all but the newest keep checkpoints, manifest
// first, and any files left by a checkpoint whose manifest was never put.
func (e *Engine) pruneCheckpoints(ctx context.Context, keep int) error {
	objs, err := e.opts.Objects.List(ctx, "checkpoints/")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var manifests []string
	for _, o := range objs {
		if strings.HasSuffix(o.Name, ".json") {
			manifests = append(manifests, strings.TrimSuffix(o.Name, ".json"))
		}
	}
	slices.Sort(manifests) // fixed-width hex: by number
	kept := manifests[max(0, len(manifests)-keep):]
	for _, old := range manifests[:len(manifests)-len(kept)] {
		if err := e.opts.Objects.Delete(ctx, old+".json"); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	for _, o := range objs {
		dir, _, ok := strings.Cut(strings.TrimPrefix(o.Name, "checkpoints/"), "/")
		if !ok || slices.Contains(kept, "checkpoints/"+dir) {
			continue
		}
		// Files of a pruned checkpoint, or of one still being put: only
		// those older than a day are deleted.
		if slices.Contains(manifests, "checkpoints/"+dir) || o.Modified.Before(time.Now().Add(-24*time.Hour)) {
			if err := e.opts.Objects.Delete(ctx, o.Name); err != nil {
				return fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
		}
	}
	return nil
}

// restoreCheckpoint fetches the newest checkpoint into dir (a new index
// folder) and returns its number; 0 when the bucket has none.
func restoreCheckpoint(ctx context.Context, e *restoreEnv, dir string) (uint64, error) {
	objs, err := e.objs.List(ctx, "checkpoints/")
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var newest string
	for _, o := range objs {
		if strings.HasSuffix(o.Name, ".json") && o.Name > newest {
			newest = o.Name
		}
	}
	if newest == "" {
		return 0, nil
	}
	var size int64
	sizes := map[string]int64{}
	for _, o := range objs {
		sizes[o.Name] = o.Size
		if o.Name == newest {
			size = o.Size
		}
	}
	body := make([]byte, size)
	if err := e.objs.ReadAt(ctx, newest, body, 0); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	var m checkpointManifest
	if err := json.Unmarshal(body, &m); err != nil {
		return 0, corruptf("checkpoint manifest %s: %v", newest, err)
	}
	if err := e.fs.MkdirAll(dir, DirMode); err != nil {
		return 0, err
	}
	base := strings.TrimSuffix(newest, ".json")
	for _, n := range m.Files {
		name := base + "/" + n
		sz, ok := sizes[name]
		if !ok {
			return 0, corruptf("checkpoint %s lists %s, which is not in the bucket", newest, n)
		}
		if err := fetch(ctx, e.fs, e.objs, name, e.fs.PathJoin(dir, n), sz); err != nil {
			return 0, err
		}
	}
	return m.Seq, nil
}

// restoreEnv is what a restore works with.
type restoreEnv struct {
	fs   vfs.FS
	objs Objects
}
