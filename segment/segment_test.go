package segment

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/cairnstore/cairn/internal/blob"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

var comp = NewCompressor()

// content returns deterministic bytes: random (incompressible) or text-like.
func content(seed uint64, n int, text bool) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	b := make([]byte, n)
	if !text {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	words := []string{"cairn ", "segment ", "chunk ", "record ", "stone ", "path ", "\n"}
	var buf bytes.Buffer
	for buf.Len() < n {
		buf.WriteString(words[r.IntN(len(words))])
	}
	return buf.Bytes()[:n]
}

func record(b []byte) Record {
	c, payload := comp.Compress(nil, b)
	return Record{ID: blob.Sum(b), Compression: c, Raw: uint32(len(b)), Payload: payload}
}

type written struct {
	loc     Location
	rec     Record
	content []byte
}

func newWriter(t *testing.T, fs vfs.FS, opts WriterOptions) *Writer {
	t.Helper()
	if err := fs.MkdirAll("seg", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(fs, ""); err != nil { // the new directory's entry
		t.Fatal(err)
	}
	w, err := OpenWriter(fs, "seg", 1, 0, opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func appendAll(t *testing.T, w *Writer, contents ...[]byte) []written {
	t.Helper()
	var out []written
	for _, b := range contents {
		rec := record(b)
		loc, err := w.Append(rec)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, written{loc, rec, b})
	}
	if err := w.Sync(out[len(out)-1].loc.End()); err != nil {
		t.Fatal(err)
	}
	return out
}

func readBack(t *testing.T, fs vfs.FS, ws []written) {
	t.Helper()
	var scratch []byte
	for i, wr := range ws {
		path := fs.PathJoin("seg", FileName(wr.loc.Segment))
		f, err := fs.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		got, err := NewReader(f, path, comp).ReadChunk(wr.loc.Offset, len(wr.rec.Payload), wr.rec.ID, &scratch)
		f.Close()
		if err != nil {
			t.Fatalf("record %d at %+v: %v", i, wr.loc, err)
		}
		if !bytes.Equal(got, wr.content) {
			t.Fatalf("record %d: content differs", i)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	fs := vfs.NewMem()
	w := newWriter(t, fs, WriterOptions{})
	ws := appendAll(t, w,
		[]byte("x"),
		content(1, 1000, false),
		content(2, 200<<10, true),
		content(3, 1<<20, false),
		content(4, MaxPayload, true),
	)
	if ws[2].rec.Compression != Zstd || ws[3].rec.Compression != Raw {
		t.Errorf("compression: text %v, random %v; want zstd, raw", ws[2].rec.Compression, ws[3].rec.Compression)
	}
	readBack(t, fs, ws)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append(record([]byte("late"))); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	f, _ := fs.Open("seg/" + FileName(1))
	info, _ := f.Stat()
	sc := NewScanner(f, info.Size(), "seg", FileHeaderSize, comp)
	n := 0
	for sc.Next() {
		if sc.Record().ID != ws[n].rec.ID || sc.Record().Offset != ws[n].loc.Offset {
			t.Fatalf("scan record %d = %v at %d", n, sc.Record().ID, sc.Record().Offset)
		}
		n++
	}
	if sc.Err() != nil || n != len(ws) {
		t.Fatalf("scan: %d records, err %v", n, sc.Err())
	}
}

func TestTooLarge(t *testing.T) {
	w := newWriter(t, vfs.NewMem(), WriterOptions{})
	_, err := w.Append(Record{Raw: MaxPayload + 1, Payload: make([]byte, MaxPayload+1)})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Append(MaxPayload+1) = %v, want ErrTooLarge", err)
	}
}

// TestGroupCommit runs concurrent appenders (under -race in CI) and checks
// that they share fdatasyncs: the first sync is held until every appender
// has written, so one more sync must cover them all.
func TestGroupCommit(t *testing.T) {
	const writers = 32
	mem := vfs.NewCrashableMem()
	var (
		appended sync.WaitGroup
		armed    = make(chan struct{})
		once     sync.Once
		syncs    int
		mu       sync.Mutex
	)
	appended.Add(writers)
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFileSyncData && filepath.Ext(op.Path) == ".seg" {
			select {
			case <-armed:
				once.Do(appended.Wait) // hold the first record sync until all appended
				mu.Lock()
				syncs++
				mu.Unlock()
			default:
			}
		}
		return nil
	}))
	w := newWriter(t, fs, WriterOptions{})
	close(armed)

	ws := make([]written, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := content(uint64(i), 100+i, false)
			rec := record(b)
			loc, err := w.Append(rec)
			appended.Done()
			if err != nil {
				t.Error(err)
				return
			}
			if err := w.Sync(loc.End()); err != nil {
				t.Error(err)
			}
			ws[i] = written{loc, rec, b}
		}()
	}
	wg.Wait()
	if syncs > 2 {
		t.Errorf("%d fdatasyncs for %d concurrent appends, want ≤ 2", syncs, writers)
	}
	// Everything acknowledged survives a crash that keeps only synced data.
	crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	readBack(t, crashed, ws)
}

func TestSeal(t *testing.T) {
	fs := vfs.NewCrashableMem()
	var sealed []string
	w := newWriter(t, fs, WriterOptions{
		SegmentSize: 3000,
		OnSeal: func(id uint64, size int64) error {
			sealed = append(sealed, fmt.Sprintf("%d@%d", id, size))
			return nil
		},
	})
	var ws []written
	for i := range 10 {
		ws = append(ws, appendAll(t, w, content(uint64(i), 1000, false))...)
	}
	// 32 + 2×1052 = 2136 fits in 3000; a third record would not.
	for i, wr := range ws {
		if want := uint64(i/2 + 1); wr.loc.Segment != want {
			t.Errorf("record %d in segment %d, want %d", i, wr.loc.Segment, want)
		}
	}
	if len(sealed) != 4 || sealed[0] != "1@2136" {
		t.Errorf("sealed = %v, want 4 seals, the first 1@2136", sealed)
	}
	// The new files' directory entries were synced: a crash that keeps
	// nothing unsynced still has every record.
	readBack(t, fs.CrashClone(vfs.CrashCloneCfg{}), ws)

	// A record larger than the limit still gets a segment of its own.
	big := appendAll(t, w, content(99, 5000, false))
	if big[0].loc.Offset != FileHeaderSize {
		t.Errorf("oversized record at offset %d, want %d", big[0].loc.Offset, FileHeaderSize)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSealCallbackFailureIsSticky(t *testing.T) {
	boom := errors.New("index down")
	w := newWriter(t, vfs.NewMem(), WriterOptions{SegmentSize: 1100, OnSeal: func(uint64, int64) error { return boom }})
	appendAll(t, w, content(1, 1000, false))
	if _, err := w.Append(record(content(2, 1000, false))); !errors.Is(err, boom) {
		t.Fatalf("Append across a failed seal = %v, want %v", err, boom)
	}
	if _, err := w.Append(record([]byte("small"))); !errors.Is(err, boom) {
		t.Fatalf("Append after failure = %v, want sticky %v", err, boom)
	}
}

// TestStickyErrors: after a failed write or sync every later call fails,
// and a sync is never retried and trusted.
func TestStickyErrors(t *testing.T) {
	for _, kind := range []errorfs.OpKind{errorfs.OpFileWriteAt, errorfs.OpFileSyncData} {
		t.Run(fmt.Sprint(kind), func(t *testing.T) {
			var on bool
			fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
				if on && op.Kind == kind {
					return errorfs.ErrInjected
				}
				return nil
			}))
			w := newWriter(t, fs, WriterOptions{})
			appendAll(t, w, []byte("before"))
			on = true
			loc, err := w.Append(record([]byte("during")))
			if err == nil {
				err = w.Sync(loc.End())
			}
			if !errors.Is(err, errorfs.ErrInjected) {
				t.Fatalf("first failure = %v, want injected", err)
			}
			on = false
			if _, err := w.Append(record([]byte("after"))); !errors.Is(err, errorfs.ErrInjected) {
				t.Errorf("Append after failure = %v, want the sticky error", err)
			}
			if err := w.Sync(Pos{1, 1 << 20}); !errors.Is(err, errorfs.ErrInjected) {
				t.Errorf("Sync after failure = %v, want the sticky error", err)
			}
			if err := w.Err(); !errors.Is(err, errorfs.ErrInjected) {
				t.Errorf("Err() = %v", err)
			}
		})
	}
}

// TestNoSpaceIsNotSticky: a full disk fails the append that hit it, and
// appending works again once there is space.
func TestNoSpaceIsNotSticky(t *testing.T) {
	enospc := &os.PathError{Op: "fallocate", Path: "seg", Err: syscall.ENOSPC}
	var full bool
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if full && op.Kind == errorfs.OpFilePreallocate {
			return enospc
		}
		return nil
	}))
	w := newWriter(t, fs, WriterOptions{Preallocate: 4096})
	appendAll(t, w, content(1, 3000, false))
	full = true
	if _, err := w.Append(record(content(2, 3000, false))); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Append on a full disk = %v, want ErrNoSpace", err)
	}
	full = false
	ws := appendAll(t, w, content(3, 3000, false))
	readBack(t, fs, ws)
}

// TestTornTail cuts the segment at every byte of its last two records and
// checks that scanning stops at the first damaged one, recovery keeps every
// earlier record, and appending continues.
func TestTornTail(t *testing.T) {
	fs := vfs.NewMem()
	w := newWriter(t, fs, WriterOptions{})
	ws := appendAll(t, w,
		content(1, 700, false), content(2, 300, true), content(3, 64, false),
		content(4, 500, false), content(5, 2000, true))
	w.Close()
	full := readFile(t, fs, "seg/"+FileName(1))
	n := len(ws)
	first := ws[n-2].loc.Offset
	for cut := first; cut <= int64(len(full)); cut++ {
		dir := fmt.Sprintf("cut%d", cut)
		tfs := vfs.NewMem()
		tfs.MkdirAll(dir, 0o755)
		writeFile(t, tfs, dir+"/"+FileName(1), full[:cut])

		// Records wholly before the cut survive.
		keep := 0
		for _, wr := range ws {
			if wr.loc.Offset+wr.loc.Size <= cut {
				keep++
			}
		}
		wantEnd := FileHeaderSize + int64(0)
		if keep > 0 {
			wantEnd = ws[keep-1].loc.Offset + ws[keep-1].loc.Size
		}
		res, err := Recover(tfs, dir, 1, FileHeaderSize)
		if err != nil {
			t.Fatalf("cut %d: Recover: %v", cut, err)
		}
		if res.End != wantEnd {
			t.Fatalf("cut %d: recovered end %d, want %d", cut, res.End, wantEnd)
		}
		if torn := cut != wantEnd; torn != (res.Torn != nil) {
			t.Fatalf("cut %d: torn = %v, want %v", cut, res.Torn, torn)
		}
		w2, err := OpenWriter(tfs, dir, 1, res.End, WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		extra := record(content(9, 100, false))
		loc, err := w2.Append(extra)
		if err != nil {
			t.Fatal(err)
		}
		w2.Sync(loc.End())
		w2.Close()

		// A full scan sees exactly the kept records, then the new one.
		data := readFile(t, tfs, dir+"/"+FileName(1))
		sc := NewScanner(bytes.NewReader(data), int64(len(data)), dir, FileHeaderSize, comp)
		var got []blob.ID
		for sc.Next() {
			got = append(got, sc.Record().ID)
		}
		if sc.Err() != nil {
			t.Fatalf("cut %d: scan after recovery: %v", cut, sc.Err())
		}
		if len(got) != keep+1 || got[keep] != extra.ID {
			t.Fatalf("cut %d: %d records after recovery, want %d then the new one", cut, len(got), keep)
		}
		for i := range keep {
			if got[i] != ws[i].rec.ID {
				t.Fatalf("cut %d: record %d changed", cut, i)
			}
		}
	}
}

// TestBitFlips flips bits in the header, the length fields and the payload
// of a record: reading it is ErrCorrupt, never wrong bytes.
func TestBitFlips(t *testing.T) {
	for _, text := range []bool{false, true} {
		fs := vfs.NewMem()
		w := newWriter(t, fs, WriterOptions{})
		ws := appendAll(t, w, content(1, 4000, text))
		w.Close()
		full := readFile(t, fs, "seg/"+FileName(1))
		wr := ws[0]
		for _, pos := range []int64{0, 1, 4, 5, 8, 11, 12, 30, 44, 48, 51, 52, 60, wr.loc.Size / 2, wr.loc.Size - 1} {
			for _, bit := range []byte{0x01, 0x80} {
				b := bytes.Clone(full)
				b[wr.loc.Offset+pos] ^= bit
				var scratch []byte
				_, err := NewReader(bytes.NewReader(b), "flip", comp).ReadChunk(wr.loc.Offset, len(wr.rec.Payload), wr.rec.ID, &scratch)
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("text=%v flip %#x at record byte %d: ReadChunk error = %v, want ErrCorrupt", text, bit, pos, err)
				}
				sc := NewScanner(bytes.NewReader(b), int64(len(b)), "flip", FileHeaderSize, comp)
				for sc.Next() {
				}
				if !errors.Is(sc.Err(), ErrCorrupt) {
					t.Errorf("text=%v flip %#x at record byte %d: scanner error = %v, want ErrCorrupt", text, bit, pos, sc.Err())
				}
			}
		}
	}
}

// TestContentMismatch: a record whose checksums are right but whose content
// is not the chunk the index asked for is corrupt.
func TestContentMismatch(t *testing.T) {
	fs := vfs.NewMem()
	w := newWriter(t, fs, WriterOptions{})
	// A record that claims an ID its content does not hash to.
	b := []byte("the content")
	loc, err := w.Append(Record{ID: blob.Sum([]byte("other")), Raw: uint32(len(b)), Payload: b})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	data := readFile(t, fs, "seg/"+FileName(1))
	var scratch []byte
	_, err = NewReader(bytes.NewReader(data), "x", comp).ReadChunk(loc.Offset, len(b), blob.Sum([]byte("other")), &scratch)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadChunk = %v, want ErrCorrupt", err)
	}
	_, err = NewReader(bytes.NewReader(data), "x", comp).ReadChunk(loc.Offset, len(b), blob.Sum(b), &scratch)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadChunk with another want = %v, want ErrCorrupt", err)
	}
	sc := NewScanner(bytes.NewReader(data), int64(len(data)), "x", FileHeaderSize, comp)
	if sc.Next() || !errors.Is(sc.Err(), ErrCorrupt) {
		t.Fatalf("verifying scan accepted a record whose content does not match its ID: %v", sc.Err())
	}
	sc = NewScanner(bytes.NewReader(data), int64(len(data)), "x", FileHeaderSize, nil)
	if !sc.Next() {
		t.Fatalf("checksum-only scan rejected a record with good checksums: %v", sc.Err())
	}
}

func TestFileHeader(t *testing.T) {
	h := AppendFileHeader(nil, 42)
	got, err := ParseFileHeader(h, "x")
	if err != nil || got.Segment != 42 || got.Version != Version {
		t.Fatalf("ParseFileHeader = %+v, %v", got, err)
	}
	bad := bytes.Clone(h)
	bad[0] = 'X'
	if _, err := ParseFileHeader(bad, "x"); !errors.Is(err, ErrBadMagic) || !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad magic: %v, want ErrBadMagic and ErrCorrupt", err)
	}
	v2 := bytes.Clone(h)
	v2[8] = 2
	if _, err := ParseFileHeader(v2, "x"); !errors.Is(err, ErrUnknownVersion) || errors.Is(err, ErrBadMagic) {
		t.Errorf("version 2: %v, want ErrUnknownVersion only", err)
	}
	flip := bytes.Clone(h)
	flip[17] ^= 1
	if _, err := ParseFileHeader(flip, "x"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("flipped id: %v, want ErrCorrupt", err)
	}
	if _, err := ParseFileHeader(h[:10], "x"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short header: %v, want ErrCorrupt", err)
	}
	for _, name := range []string{"0000000000000001.seg", "00000000000000ff.seg"} {
		if id, ok := ParseFileName(name); !ok || FileName(id) != name {
			t.Errorf("ParseFileName(%q) = %d, %v", name, id, ok)
		}
	}
	for _, name := range []string{"0000000000000000.seg", "000000000000001.seg", "000000000000000G.seg", "0000000000000001.sst", "LOCK"} {
		if _, ok := ParseFileName(name); ok {
			t.Errorf("ParseFileName(%q) accepted", name)
		}
	}
}

// The golden v1 segment: written once with -update, read forever. Its
// records are the contents below, in order.
var goldenContents = [][]byte{
	[]byte("hello, cairn"),
	content(100, 3000, true),  // zstd
	content(101, 5000, false), // raw
	{},
}

var goldenCompression = []Compression{Raw, Zstd, Raw, Raw}

func TestGoldenV1(t *testing.T) {
	path := filepath.Join("testdata", "v1.seg")
	if *update {
		fs := vfs.NewMem()
		w := newWriter(t, fs, WriterOptions{})
		for _, c := range goldenContents {
			if _, err := w.Append(record(c)); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		if err := os.WriteFile(path, readFile(t, fs, "seg/"+FileName(1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseFileHeader(data, path)
	if err != nil || h.Segment != 1 || h.Version != 1 {
		t.Fatalf("golden header = %+v, %v", h, err)
	}
	sc := NewScanner(bytes.NewReader(data), int64(len(data)), path, FileHeaderSize, comp)
	i := 0
	var scratch []byte
	for sc.Next() {
		rec := sc.Record()
		if i >= len(goldenContents) {
			t.Fatalf("extra record at %d", rec.Offset)
		}
		want := goldenContents[i]
		if rec.Compression != goldenCompression[i] {
			t.Errorf("golden record %d: compression %v, want %v", i, rec.Compression, goldenCompression[i])
		}
		got, err := NewReader(bytes.NewReader(data), path, comp).ReadChunk(rec.Offset, int(rec.Stored), blob.Sum(want), &scratch)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("golden record %d: %v", i, err)
		}
		i++
	}
	if sc.Err() != nil || i != len(goldenContents) {
		t.Fatalf("golden scan: %d records, %v", i, sc.Err())
	}
}

func readFile(t *testing.T, fs vfs.FS, path string) []byte {
	t.Helper()
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, fs vfs.FS, path string, b []byte) {
	t.Helper()
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Clone(b)); err != nil { // vfs Write may modify its input
		t.Fatal(err)
	}
	f.Sync()
	f.Close()
}

// TestConcurrentRollover: appends that overflow the active segment while
// a sync runs wait for it, and the first to go on seals the segment; the
// others then append to the new one rather than each sealing another,
// nearly empty, segment (as they once did, leaving a trail of them, each
// with its preallocated space).
func TestConcurrentRollover(t *testing.T) {
	const limit, recordMax = 64 << 10, 3000
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFileSyncData && filepath.Ext(op.Path) == ".seg" {
			time.Sleep(2 * time.Millisecond) // syncs long enough for appends to pile up
		}
		return nil
	}))
	var mu sync.Mutex
	sealed := map[uint64]int64{}
	w := newWriter(t, fs, WriterOptions{SegmentSize: limit, OnSeal: func(id uint64, size int64) error {
		mu.Lock()
		sealed[id] = size
		mu.Unlock()
		return nil
	}})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 40 {
				b := content(uint64(g<<8|i), 1000+(g*40+i)%(recordMax-1000), false)
				loc, err := w.Append(record(b))
				if err == nil {
					err = w.Sync(loc.End())
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(sealed) == 0 {
		t.Fatal("nothing sealed")
	}
	for id, size := range sealed {
		if size <= limit-RecordHeaderSize-recordMax {
			t.Errorf("segment %d sealed at %d bytes, with room left for any record (limit %d)", id, size, limit)
		}
	}
}

// TestSealReleasesPreallocation: a segment sealed before its preallocated
// space is used up gives the rest back to the file system.
func TestSealReleasesPreallocation(t *testing.T) {
	dir := t.TempDir()
	fs := vfs.Default
	if err := fs.MkdirAll(filepath.Join(dir, "seg"), 0o700); err != nil {
		t.Fatal(err)
	}
	w, err := OpenWriter(fs, filepath.Join(dir, "seg"), 1, 0, WriterOptions{SegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := range 3 { // the third does not fit: the first segment is sealed at ~800 KiB
		loc, err := w.Append(record(content(uint64(i), 400<<10, false)))
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(loc.End()); err != nil {
			t.Fatal(err)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "seg", FileName(1)), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size > 900<<10 {
		t.Fatalf("sealed segment is %d bytes, want about 800 KiB", st.Size)
	}
	if alloc := st.Blocks * 512; alloc > st.Size+64<<10 {
		t.Errorf("sealed segment of %d bytes keeps %d bytes allocated", st.Size, alloc)
	}
}

// TestPersist: in Persist mode a Sync seals the segment and returns once
// Persist has taken it; concurrent Syncs share Persists; a failed Persist
// fails only the Syncs waiting on it, and the next one tries again; every
// persisted segment scans whole.
func TestPersist(t *testing.T) {
	fs := vfs.NewMem()
	var (
		mu      sync.Mutex
		objects = map[uint64][]byte{}
		sealed  []uint64
		failing bool
		calls   int
	)
	var w *Writer
	w = newWriter(t, fs, WriterOptions{
		Persist: func(id uint64, size int64) error {
			time.Sleep(2 * time.Millisecond) // a put takes a while: syncs pile up meanwhile
			mu.Lock()
			defer mu.Unlock()
			calls++
			if failing {
				return errors.New("bucket down")
			}
			f, err := fs.Open(fs.PathJoin("seg", FileName(id)))
			if err != nil {
				return err
			}
			defer f.Close()
			b := make([]byte, size)
			if _, err := f.ReadAt(b, 0); err != nil {
				return err
			}
			objects[id] = b
			return nil
		},
		OnSeal: func(id uint64, size int64) error {
			mu.Lock()
			defer mu.Unlock()
			if _, ok := objects[id]; !ok {
				t.Errorf("segment %d sealed before it was persisted", id)
			}
			sealed = append(sealed, id)
			return nil
		},
	})
	var acked sync.Map // ID -> segment
	var wg sync.WaitGroup
	const writers, each = 16, 20
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				rec := record(content(uint64(g<<8|i), 500+i, false))
				loc, err := w.Append(rec)
				if err == nil {
					err = w.Sync(loc.End())
				}
				if err != nil {
					t.Error(err)
					return
				}
				acked.Store(rec.ID, loc.Segment)
			}
		})
	}
	wg.Wait()
	if calls >= writers*each {
		t.Errorf("%d persists for %d syncs: none shared", calls, writers*each)
	}
	if !slices.IsSorted(sealed) {
		t.Errorf("sealed out of order: %v", sealed)
	}
	// Every acknowledged record is in its persisted segment, which scans
	// whole.
	found := map[blob.ID]bool{}
	for id, b := range objects {
		sc := NewScanner(bytes.NewReader(b), int64(len(b)), FileName(id), FileHeaderSize, comp)
		for sc.Next() {
			found[sc.Record().ID] = true
		}
		if sc.Err() != nil || sc.End() != int64(len(b)) {
			t.Errorf("segment %d: scan ended at %d of %d: %v", id, sc.End(), len(b), sc.Err())
		}
	}
	acked.Range(func(k, _ any) bool {
		if !found[k.(blob.ID)] {
			t.Errorf("acknowledged record %v is in no persisted segment", k)
		}
		return true
	})

	// A failing store fails the Sync, not the writer.
	mu.Lock()
	failing = true
	mu.Unlock()
	loc, err := w.Append(record([]byte("while the bucket is down")))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(loc.End()); err == nil {
		t.Fatal("Sync succeeded while Persist failed")
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	loc2, err := w.Append(record([]byte("after")))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(loc2.End()); err != nil {
		t.Fatalf("Sync after the store came back: %v", err)
	}
	if _, ok := objects[loc.Segment]; !ok {
		t.Errorf("the segment whose Persist failed was not persisted by the next Sync")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPersistRolloverNotSynced: a segment sealed by a rollover in Persist
// mode is not durable until persisted: starting the next one does not
// move Synced past it (once it did, and a Sync in the new segment then
// returned at once, acknowledging bytes never persisted).
func TestPersistRolloverNotSynced(t *testing.T) {
	var persisted []uint64
	w := newWriter(t, vfs.NewMem(), WriterOptions{SegmentSize: 3000, Persist: func(id uint64, size int64) error {
		persisted = append(persisted, id)
		return nil
	}})
	first, err := w.Append(record(content(1, 2000, false)))
	if err != nil {
		t.Fatal(err)
	}
	second, err := w.Append(record(content(2, 2000, false))) // rolls over: the first segment is pending
	if err != nil {
		t.Fatal(err)
	}
	if second.Segment == first.Segment {
		t.Fatal("no rollover")
	}
	if s := w.Synced(); !s.Less(first.End()) {
		t.Fatalf("Synced = %v after a rollover, past the unpersisted %v", s, first.End())
	}
	if err := w.Sync(second.End()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(persisted, []uint64{first.Segment, second.Segment}) {
		t.Fatalf("persisted %v, want both segments in order", persisted)
	}
}
