package engine_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/segment"
)

// TestWriteFaults injects an I/O error into each kind of write the engine
// depends on. The write that meets it fails; the engine then refuses writes
// (ErrReadOnly) but keeps serving reads; a restart (a crash image holding
// only what was synced) recovers every acknowledged record and accepts
// writes again.
func TestWriteFaults(t *testing.T) {
	eio := errorfs.ErrInjected
	cases := []struct {
		name string
		fail func(op errorfs.Op) bool
		// want is what the failed write's error wraps besides ErrReadOnly.
		want error
	}{
		{"segment-write", func(op errorfs.Op) bool {
			return strings.HasSuffix(op.Path, ".seg") && op.Kind == errorfs.OpFileWriteAt
		}, eio},
		{"segment-sync", func(op errorfs.Op) bool {
			return strings.HasSuffix(op.Path, ".seg") && (op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSync)
		}, eio},
		{"index-wal-write", func(op errorfs.Op) bool {
			return strings.HasSuffix(op.Path, ".log") && op.Kind == errorfs.OpFileWrite
		}, index.ErrFatal},
		{"index-wal-sync", func(op errorfs.Op) bool {
			return strings.HasSuffix(op.Path, ".log") && (op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSync)
		}, index.ErrFatal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			toggle := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
				if tc.fail(op) {
					return eio
				}
				return nil
			})}
			opts := smallOptions(errorfs.Wrap(mem, toggle))
			opts.Logger = enginetest.Logger(t)
			e, err := engine.Open("data", opts)
			if err != nil {
				t.Fatal(err)
			}
			before := random(1, 50<<10)
			k1 := engine.Key{Namespace: "f", Tenant: "t", Name: "before"}
			rec, err := e.PutRecord(ctx, k1, bytes.NewReader(before), engine.Write{})
			if err != nil {
				t.Fatal(err)
			}

			toggle.On()
			k2 := engine.Key{Namespace: "f", Tenant: "t", Name: "during"}
			_, err = e.PutRecord(ctx, k2, bytes.NewReader(random(2, 50<<10)), engine.Write{})
			if !errors.Is(err, engine.ErrReadOnly) || !errors.Is(err, tc.want) {
				t.Fatalf("write meeting the fault = %v; want ErrReadOnly wrapping the I/O error", err)
			}
			toggle.Off()

			// Writes stay refused, reads keep working.
			_, err = e.PutRecord(ctx, engine.Key{Namespace: "f", Tenant: "t", Name: "after"}, bytes.NewReader([]byte("x")), engine.Write{})
			if !errors.Is(err, engine.ErrReadOnly) {
				t.Fatalf("write after the fault = %v; want ErrReadOnly", err)
			}
			if err := e.Writable(); !errors.Is(err, engine.ErrReadOnly) {
				t.Fatalf("Writable = %v; want ErrReadOnly", err)
			}
			if got := readAll(t, e, rec.Blob); !bytes.Equal(got, before) {
				t.Fatal("read after the fault differs")
			}
			e.Close() // may report the failure again; the restart is what counts

			image := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
			re := enginetest.OpenDir(t, "data", smallOptions(image))
			got, err := re.GetRecord(k1)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readAll(t, re, got.Blob), before) {
				t.Fatal("acknowledged record differs after restart")
			}
			if _, err := re.GetRecord(k2); err == nil {
				// It may be there only if everything it needed reached disk.
				r, _ := re.GetRecord(k2)
				readAll(t, re, r.Blob)
			}
			if _, err := re.PutRecord(ctx, k2, bytes.NewReader(random(3, 20<<10)), engine.Write{}); err != nil {
				t.Fatalf("write after restart: %v", err)
			}
		})
	}
}

// TestNoSpace: a full disk fails the upload with ErrNoSpace, stores nothing
// visible, does not make the engine read-only, and writes work again once
// there is room.
func TestNoSpace(t *testing.T) {
	mem := vfs.NewMem()
	full := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".seg") && (op.Kind == errorfs.OpFileWriteAt || op.Kind == errorfs.OpFilePreallocate) {
			return fmt.Errorf("write %s: %w", op.Path, syscall.ENOSPC)
		}
		return nil
	})}
	opts := smallOptions(errorfs.Wrap(mem, full))
	e := enginetest.Open(t, opts)
	k := engine.Key{Namespace: "f", Tenant: "t", Name: "a"}
	full.On()
	_, err := e.PutRecord(ctx, k, bytes.NewReader(random(1, 30<<10)), engine.Write{})
	if !errors.Is(err, engine.ErrNoSpace) {
		t.Fatalf("PutRecord on a full disk = %v; want ErrNoSpace", err)
	}
	if _, err := e.GetRecord(k); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("GetRecord after a failed upload = %v; want ErrNotFound", err)
	}
	full.Off()
	if err := e.Writable(); err != nil {
		t.Fatalf("Writable after space came back = %v", err)
	}
	data := random(2, 30<<10)
	rec, err := e.PutRecord(ctx, k, bytes.NewReader(data), engine.Write{})
	if err != nil {
		t.Fatalf("PutRecord after space came back: %v", err)
	}
	if !bytes.Equal(readAll(t, e, rec.Blob), data) {
		t.Fatal("content differs")
	}
}

// TestBitFlips flips single bits across the segment files of a real data
// folder. Every read afterwards returns the right bytes or ErrCorrupt, never
// wrong bytes, and Check reports the damage.
func TestBitFlips(t *testing.T) {
	dir := t.TempDir()
	opts := engine.Options{MinChunk: 1 << 10, AvgChunk: 4 << 10, MaxChunk: 16 << 10, MinFreeBytes: -1, Logger: enginetest.Logger(t)}
	e, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	contents := map[blob.ID][]byte{}
	for i, data := range [][]byte{random(1, 40<<10), text(2, 60<<10), random(3, 5)} {
		id, _, err := e.Put(ctx, bytes.NewReader(data))
		if err != nil {
			t.Fatal(i, err)
		}
		contents[id] = data
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	segPath := filepath.Join(dir, "segments", segment.FileName(1))
	orig, err := os.ReadFile(segPath)
	if err != nil {
		t.Fatal(err)
	}
	end := len(orig)
	for end > segment.FileHeaderSize && orig[end-1] == 0 { // preallocated tail
		end--
	}
	for i := range 40 {
		pos := segment.FileHeaderSize + (i*7919)%(end-segment.FileHeaderSize)
		t.Run(fmt.Sprintf("offset=%d", pos), func(t *testing.T) {
			flipped := bytes.Clone(orig)
			flipped[pos] ^= 1 << (i % 8)
			if err := os.WriteFile(segPath, flipped, 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.WriteFile(segPath, orig, 0o644)
			e, err := engine.Open(dir, opts)
			if err != nil {
				if !errors.Is(err, engine.ErrCorrupt) {
					t.Fatalf("Open = %v; want success or ErrCorrupt", err)
				}
				return
			}
			defer e.Close()
			bad := 0
			for id, want := range contents {
				r, err := e.Open(id)
				if err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				_, err = got.ReadFrom(r)
				r.Close()
				switch {
				case errors.Is(err, engine.ErrCorrupt):
					bad++
				case err != nil:
					t.Fatalf("read %s: %v; want nil or ErrCorrupt", id, err)
				case !bytes.Equal(got.Bytes(), want):
					t.Fatalf("read %s returned wrong bytes without an error", id)
				}
			}
			if bad == 0 {
				t.Fatalf("no read noticed the flipped bit at %d", pos)
			}
			if err := e.Check(ctx); !errors.Is(err, engine.ErrCorrupt) {
				t.Fatalf("Check = %v; want ErrCorrupt", err)
			}
		})
	}
}

// TestSealedSegmentsNotScanned: reopening reads sealed segments not at all
// and only the active segment's tail beyond the last indexed record.
func TestSealedSegmentsNotScanned(t *testing.T) {
	mem := vfs.NewMem()
	opts := smallOptions(mem)
	e := enginetest.OpenDir(t, "data", opts)
	for i := range 12 {
		if _, _, err := e.Put(ctx, bytes.NewReader(random(uint64(i), 40<<10))); err != nil {
			t.Fatal(err)
		}
	}
	st, err := e.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Segments < 3 {
		t.Fatalf("%d segments; the test wants several sealed ones", st.Segments)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	var sealedReads, activeReads int
	counted := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !strings.HasSuffix(op.Path, ".seg") || (op.Kind != errorfs.OpFileReadAt && op.Kind != errorfs.OpFileRead) {
			return nil
		}
		if strings.HasSuffix(op.Path, segment.FileName(uint64(st.Segments))) {
			activeReads++
		} else {
			sealedReads++
		}
		return nil
	}))
	opts.FS = counted
	re, err := engine.Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := re.Close(); err != nil {
		t.Fatal(err)
	}
	if sealedReads != 0 {
		t.Errorf("reopening read sealed segments %d times; want 0", sealedReads)
	}
	if activeReads > 2 {
		t.Errorf("reopening read the active segment %d times; want the header and the tail only", activeReads)
	}
}

// TestReindex rebuilds the derived index entries from the segments: on a
// healthy store it finds every chunk and changes nothing Check can see.
// A store whose segment file is gone refuses to open rather than serve
// holes.
func TestReindex(t *testing.T) {
	mem := vfs.NewMem()
	e := enginetest.OpenDir(t, "data", smallOptions(mem))
	want := map[string][]byte{}
	for i := range 10 {
		data := random(uint64(i%7), 30<<10) // some duplicates
		name := fmt.Sprintf("r%d", i)
		if _, err := e.PutRecord(ctx, engine.Key{Namespace: "x", Tenant: "t", Name: name}, bytes.NewReader(data), engine.Write{}); err != nil {
			t.Fatal(err)
		}
		want[name] = data
	}
	before, err := e.Stats()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.Reindex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Chunks != int(before.Chunks) || len(rep.Missing) != 0 || len(rep.Damaged) != 0 || rep.Orphans != 0 {
		t.Fatalf("Reindex on a healthy store = %+v; stats had %d chunks", rep, before.Chunks)
	}
	if err := e.Check(ctx); err != nil {
		t.Fatalf("Check after Reindex: %v", err)
	}
	for name, data := range want {
		rec, err := e.GetRecord(engine.Key{Namespace: "x", Tenant: "t", Name: name})
		if err != nil || !bytes.Equal(readAll(t, e, rec.Blob), data) {
			t.Fatalf("%s after Reindex: %v", name, err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// Lose the first segment.
	if err := mem.Remove("data/segments/" + segment.FileName(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Open("data", smallOptions(mem)); !errors.Is(err, engine.ErrCorrupt) {
		t.Fatalf("Open with a segment missing = %v; want ErrCorrupt", err)
	}
}

// TestGCOnFullDisk: with no room to copy live chunks, GC skips the
// segments that need copying, still removes the wholly dead ones, and
// compacts the rest once there is room again.
func TestGCOnFullDisk(t *testing.T) {
	mem := vfs.NewMem()
	full := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".seg") && (op.Kind == errorfs.OpFileWriteAt || op.Kind == errorfs.OpFilePreallocate) {
			return fmt.Errorf("write %s: %w", op.Path, syscall.ENOSPC)
		}
		return nil
	})}
	e := enginetest.Open(t, smallOptions(errorfs.Wrap(mem, full)))
	// 40 records of 20 KiB fill about ten 96 KiB segments; deleting all
	// but every eighth leaves some segments wholly dead and some sparse.
	keep := map[engine.Key][]byte{}
	for i := range 40 {
		k := engine.Key{Namespace: "f", Tenant: "t", Name: fmt.Sprint("r", i)}
		data := random(uint64(100+i), 20<<10)
		if _, err := e.PutRecord(ctx, k, bytes.NewReader(data), engine.Write{}); err != nil {
			t.Fatal(err)
		}
		if i%8 == 0 {
			keep[k] = data
		} else if err := e.DeleteRecord(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	full.On()
	rep, err := e.GC(ctx, false)
	if err != nil {
		t.Fatalf("GC on a full disk = %v; want skipped segments, not a failure", err)
	}
	if rep.Compacted == 0 || len(rep.Skipped) == 0 {
		t.Fatalf("GC on a full disk: %+v; want wholly dead segments removed and sparse ones skipped", rep)
	}
	full.Off()
	rep2, err := e.GC(ctx, false)
	if err != nil || rep2.Compacted == 0 || len(rep2.Skipped) != 0 {
		t.Fatalf("GC once there is room: %+v, %v", rep2, err)
	}
	for k, data := range keep {
		rec, err := e.GetRecord(k)
		if err != nil || !bytes.Equal(readAll(t, e, rec.Blob), data) {
			t.Fatalf("%s after GC: %v", k.Name, err)
		}
	}
	if err := e.Check(ctx); err != nil {
		t.Fatal(err)
	}
}
