package engine_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/testtool"
	"github.com/cairnstore/cairn/objstore"
)

// bucket starts a MinIO server for t and returns the store's place in it.
func bucket(t *testing.T, m *testtool.MinIO, prefix string) *objstore.Bucket {
	t.Helper()
	cfg, err := objstore.FromEnv("s3://"+m.Bucket+"/"+prefix, "", m.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	b, err := objstore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func segmentObjects(t *testing.T, b *objstore.Bucket) []objstore.Object {
	t.Helper()
	objs, err := b.List(ctx, "segments/")
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestObjects runs a store whose segments are objects in a real MinIO:
// concurrent uploads share objects, every byte reads back, also once the
// local copies are evicted or lost with the folder's segments, and GC
// deletes the objects it compacted.
func TestObjects(t *testing.T) {
	m := testtool.StartMinIO(t)
	b := bucket(t, m, "store")
	dir := filepath.Join(t.TempDir(), "data")
	opts := engine.Options{Objects: b, CacheSize: 4 << 20, SegmentSize: 8 << 20, InlineMax: -1, GCGrace: -1}
	e := enginetest.OpenDir(t, dir, opts)

	const uploads = 48
	bodies := map[string][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range uploads {
		body := random(uint64(i), 1000+i*(3<<20)/uploads) // 1 KB to 3 MB
		bodies[fmt.Sprint(i)] = body
		wg.Go(func() {
			if _, err := e.PutRecord(ctx, key(fmt.Sprint(i)), bytes.NewReader(body), engine.Write{}); err != nil {
				mu.Lock()
				t.Errorf("upload %d: %v", i, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	objs := segmentObjects(t, b)
	st, _ := e.Stats()
	t.Logf("%d uploads in %d objects (%d puts, %d bytes); local copies %d bytes, %d evicted", uploads, len(objs), st.ObjectPuts, st.ObjectPutBytes, st.CacheBytes, st.CacheEvictions)
	if len(objs) == 0 || len(objs) >= uploads {
		t.Errorf("%d objects for %d concurrent uploads: none shared", len(objs), uploads)
	}
	if st.CacheBytes > opts.CacheSize || st.CacheEvictions == 0 {
		t.Errorf("local copies: %d bytes, %d evicted; want at most %d, some evicted", st.CacheBytes, st.CacheEvictions, opts.CacheSize)
	}
	check := func(e *engine.Engine) {
		t.Helper()
		for name, body := range bodies {
			rec, err := e.GetRecord(key(name))
			if err != nil {
				t.Fatalf("record %s: %v", name, err)
			}
			if got := readAll(t, e, rec.Blob); !bytes.Equal(got, body) {
				t.Fatalf("record %s reads back wrong", name)
			}
		}
	}
	check(e)
	st, _ = e.Stats()
	if st.ObjectGets == 0 {
		t.Errorf("no ranged GETs, though local copies were evicted")
	}
	if rep, err := e.Scrub(ctx, 1); err != nil || len(rep.Corrupt) > 0 || len(rep.BadSegments) > 0 || rep.LogRecords < uploads {
		t.Fatalf("scrub: %+v, %v; want every log record (one per upload) verified", rep, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	// The folder's segment copies lost: the store reads from the bucket.
	if err := os.RemoveAll(filepath.Join(dir, "segments")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "segments"), 0o700); err != nil {
		t.Fatal(err)
	}
	e = enginetest.OpenDir(t, dir, opts)
	check(e)

	// Deletes, then GC: compacted segments' objects go.
	for i := range uploads {
		if i%4 != 0 {
			if err := e.DeleteRecord(ctx, key(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
			delete(bodies, fmt.Sprint(i))
		}
	}
	before := segmentObjects(t, b)
	rep, err := e.GC(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Compacted == 0 {
		t.Fatalf("GC compacted nothing: %+v", rep)
	}
	check(e)
	if err := e.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil { // deletes the objects still in their grace period
		t.Fatal(err)
	}
	after := segmentObjects(t, b)
	left := 0
	for _, o := range after {
		for _, p := range before {
			if o.Name == p.Name {
				left++
			}
		}
	}
	t.Logf("GC compacted %d segments: %d objects before, %d after, %d of them from before", rep.Compacted, len(before), len(after), left)
	if left > len(before)-rep.Compacted {
		t.Errorf("%d objects of %d left after GC compacted %d", left, len(before), rep.Compacted)
	}
	e = enginetest.OpenDir(t, dir, opts)
	check(e)
	if rep, err := e.Reindex(ctx); err != nil || len(rep.Missing) > 0 {
		t.Fatalf("reindex from the bucket: %+v, %v", rep, err)
	}
	check(e)
}

// TestObjectsOutage: with the object store down, uploads fail with
// ErrUnavailable and leave nothing visible, the store is not writable
// (readiness), reads of local copies go on, and all works again once the
// service is back.
func TestObjectsOutage(t *testing.T) {
	m := testtool.StartMinIO(t)
	b := bucket(t, m, "")
	e := enginetest.Open(t, engine.Options{Objects: b, InlineMax: -1})
	kept := random(1, 300<<10)
	if _, err := e.PutRecord(ctx, key("kept"), bytes.NewReader(kept), engine.Write{}); err != nil {
		t.Fatal(err)
	}
	m.Stop()
	if _, err := e.PutRecord(ctx, key("lost"), bytes.NewReader(random(2, 300<<10)), engine.Write{}); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("upload with the object store down: %v, want ErrUnavailable", err)
	}
	if _, err := e.GetRecord(key("lost")); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("a failed upload is visible: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.Writable() == nil && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if err := e.Writable(); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("Writable with the object store down: %v", err)
	}
	rec, err := e.GetRecord(key("kept"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, e, rec.Blob), kept) {
		t.Fatal("a local copy reads wrong during the outage")
	}
	m.Start()
	deadline = time.Now().Add(10 * time.Second)
	for e.Writable() != nil && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if err := e.Writable(); err != nil {
		t.Fatalf("still not writable with the object store back: %v", err)
	}
	again := random(3, 300<<10)
	if _, err := e.PutRecord(ctx, key("again"), bytes.NewReader(again), engine.Write{}); err != nil {
		t.Fatalf("upload after the outage: %v", err)
	}
	rec, _ = e.GetRecord(key("again"))
	if !bytes.Equal(readAll(t, e, rec.Blob), again) {
		t.Fatal("reads wrong after the outage")
	}
}

// TestObjectsFolderMode: a folder made in one mode is not opened in the
// other, nor with another bucket.
func TestObjectsFolderMode(t *testing.T) {
	m := testtool.StartMinIO(t)
	dir := filepath.Join(t.TempDir(), "data")
	e, err := engine.Open(dir, engine.Options{Objects: bucket(t, m, "a")})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if got, err := engine.StoreObjects(dir); err != nil || !strings.HasSuffix(got, "/a/") {
		t.Fatalf("StoreObjects = %q, %v", got, err)
	}
	for name, opts := range map[string]engine.Options{"local": {}, "another prefix": {Objects: bucket(t, m, "b")}} {
		if _, err := engine.Open(dir, opts); !errors.Is(err, engine.ErrInvalid) {
			t.Errorf("opened with %s: %v", name, err)
		}
	}
	local := filepath.Join(t.TempDir(), "local")
	e, err = engine.Open(local, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if _, err := engine.Open(local, engine.Options{Objects: bucket(t, m, "c")}); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("a local store opened in object mode: %v", err)
	}
}

// TestObjectsMergeSmall: uploads one at a time make an object each; GC
// merges those small objects into fewer.
func TestObjectsMergeSmall(t *testing.T) {
	m := testtool.StartMinIO(t)
	b := bucket(t, m, "")
	// No grace: with several nodes (the index in PostgreSQL), segments
	// sealed less than a grace period ago are not compacted.
	e := enginetest.Open(t, engine.Options{Objects: b, InlineMax: -1, SegmentSize: 64 << 20, GCGrace: -1})
	for i := range 10 {
		if _, err := e.PutRecord(ctx, key(fmt.Sprint(i)), bytes.NewReader(random(uint64(i), 20<<10)), engine.Write{}); err != nil {
			t.Fatal(err)
		}
	}
	before := len(segmentObjects(t, b))
	rep, err := e.GC(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if e.Shared() {
		// Several nodes: compacted segments' objects go a pass later.
		if _, err := e.GC(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	after := len(segmentObjects(t, b))
	t.Logf("10 sequential uploads: %d objects; GC merged %d, %d objects after", before, rep.Compacted, after)
	if before < 10 || after > 2 {
		t.Errorf("%d objects before GC, %d after; want 10 merged into 1 or 2", before, after)
	}
}

// TestObjectsStream: a large upload's segment goes up in parts while it is
// written, and reads back whole, also from the bucket alone.
func TestObjectsStream(t *testing.T) {
	m := testtool.StartMinIO(t)
	b := bucket(t, m, "")
	dir := filepath.Join(t.TempDir(), "data")
	opts := engine.Options{Objects: b, CacheSize: 1}
	e := enginetest.OpenDir(t, dir, opts)
	big := random(9, 70<<20)
	rec, err := e.PutRecord(ctx, key("big"), bytes.NewReader(big), engine.Write{})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := e.Stats()
	if st.ObjectStreamed == 0 {
		t.Errorf("a 70 MiB upload's segment was not put in parts: %+v", st)
	}
	if !bytes.Equal(readAll(t, e, rec.Blob), big) {
		t.Fatal("reads back wrong")
	}
	objs := segmentObjects(t, b)
	if len(objs) != 1 || objs[0].Size < int64(len(big)) {
		t.Fatalf("objects: %+v; want one, with the upload and its log record", objs)
	}
	if n, err := b.AbortIncomplete(ctx, "", time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("multipart puts left incomplete: %d, %v", n, err)
	}
}

// TestObjectsRangeCache: chunks fetched by ranged GETs are kept on local
// disk, bounded by CacheSize, across a restart: reading them again makes
// no GET.
func TestObjectsRangeCache(t *testing.T) {
	m := testtool.StartMinIO(t)
	b := bucket(t, m, "")
	dir := filepath.Join(t.TempDir(), "data")
	opts := engine.Options{Objects: b, CacheSize: 48 << 20, ReadCache: 1 << 20, InlineMax: -1}
	e := enginetest.OpenDir(t, dir, opts)
	bodies := map[string][]byte{}
	for i := range 16 {
		body := random(uint64(100+i), 1<<20+i)
		bodies[fmt.Sprint(i)] = body
		if _, err := e.PutRecord(ctx, key(fmt.Sprint(i)), bytes.NewReader(body), engine.Write{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// Lose the segment copies: every read is a GET, then a cached range.
	if err := os.RemoveAll(filepath.Join(dir, "segments")); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "segments"), 0o700)
	readAllOf := func(e *engine.Engine) uint64 {
		t.Helper()
		for name, body := range bodies {
			rec, err := e.GetRecord(key(name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readAll(t, e, rec.Blob), body) {
				t.Fatalf("%s reads back wrong", name)
			}
		}
		st, _ := e.Stats()
		if st.CacheBytes > opts.CacheSize {
			t.Errorf("local copies %d bytes, over %d", st.CacheBytes, opts.CacheSize)
		}
		return st.ObjectGets
	}
	e = enginetest.OpenDir(t, dir, opts)
	first := readAllOf(e)
	if first == 0 {
		t.Fatal("no GETs with no local copies")
	}
	if again := readAllOf(e); again != first {
		t.Errorf("reading again made %d more GETs; the ranges should be cached", again-first)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = enginetest.OpenDir(t, dir, opts)
	if n := readAllOf(e); n != 0 {
		t.Errorf("after a restart, %d GETs: the cached ranges were not kept", n)
	}
}

// TestObjectsRestore loses the data folder of a store in object mode and
// rebuilds it from the bucket alone: every acknowledged upload, overwrite
// and delete is there, through a GC that compacted and merged the objects
// holding the log, with the same totals, and Check passes.
func TestObjectsRestore(t *testing.T) {
	m := testtool.StartMinIO(t)
	b := bucket(t, m, "store")
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	opts := engine.Options{Objects: b, SegmentSize: 8 << 20, GCGrace: -1, Logger: enginetest.Logger(t)}
	e, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{}
	var mu sync.Mutex
	put := func(name string, body []byte) {
		if _, err := e.PutRecord(ctx, key(name), bytes.NewReader(body), engine.Write{ContentType: "application/x-test", Meta: []byte("m-" + name)}); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		want[name] = body
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := range 12 {
				size := 100 + (w*12+i)*40<<10 // small (inline) to ~3 MB
				put(fmt.Sprintf("w%d/%d", w, i), random(uint64(w*100+i), size))
			}
		})
	}
	wg.Wait()
	// Overwrites, deletes, a sealed secret, then GC (it compacts segments
	// holding log records, and merges small objects).
	for i := range 12 {
		name := fmt.Sprintf("w0/%d", i)
		if i%2 == 0 {
			if err := e.DeleteRecord(ctx, key(name)); err != nil {
				t.Fatal(err)
			}
			delete(want, name)
		} else {
			put(name, text(uint64(i), 50<<10))
		}
	}
	sealed := e.Seal("test", []byte("a signing secret"))
	put("secret", sealed)
	if gc, err := e.GC(ctx, false); err != nil || gc.Compacted == 0 {
		t.Fatalf("GC compacted nothing: %+v, %v", gc, err)
	}
	for i := range 5 {
		put(fmt.Sprintf("after-gc/%d", i), random(uint64(900+i), 200<<10))
	}
	// A second pass: a second checkpoint, and the log records the first
	// covers are dropped as their segments are compacted.
	for i := range 12 {
		name := fmt.Sprintf("w1/%d", i)
		if err := e.DeleteRecord(ctx, key(name)); err != nil {
			t.Fatal(err)
		}
		delete(want, name)
	}
	if _, err := e.GC(ctx, false); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		put(fmt.Sprintf("after-gc2/%d", i), random(uint64(950+i), 100<<10))
	}
	cps, err := b.List(ctx, "checkpoints/")
	if err != nil {
		t.Fatal(err)
	}
	manifests := 0
	for _, o := range cps {
		if strings.HasSuffix(o.Name, ".json") {
			manifests++
		}
	}
	if manifests != 2 {
		t.Errorf("%d checkpoint manifests in the bucket after two GC passes, want 2", manifests)
	}
	before, _ := e.Stats()
	key0, err := os.ReadFile(filepath.Join(dir, engine.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// The node's disk is lost; the key file was kept apart.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(base, "kept.key")
	if err := os.WriteFile(keyFile, key0, 0o600); err != nil {
		t.Fatal(err)
	}

	restored := filepath.Join(base, "restored")
	rep, err := engine.RestoreObjects(ctx, b, restored, engine.Options{KeyFile: keyFile, Logger: enginetest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("restored from %d objects (%d bytes): checkpoint %x, %d transactions replayed after it", rep.Segments, rep.Bytes, rep.Checkpoint, rep.Transactions)
	if rep.Checkpoint == 0 || rep.Transactions == 0 || rep.Transactions > 20 {
		t.Errorf("restore from checkpoint %x replayed %d transactions; want the newest checkpoint and the few after it", rep.Checkpoint, rep.Transactions)
	}
	r := enginetest.OpenDir(t, restored, engine.Options{Objects: b, KeyFile: keyFile})
	after, _ := r.Stats()
	if after.Totals != before.Totals {
		t.Errorf("totals before %+v, after restore %+v", before.Totals, after.Totals)
	}
	n := 0
	for rec, err := range r.Records("test", "t1", "", "") {
		if err != nil {
			t.Fatal(err)
		}
		n++
		body, ok := want[rec.Key.Name]
		if !ok {
			t.Errorf("%s is back, though it was deleted", rec.Key.Name)
			continue
		}
		if !bytes.Equal(readAll(t, r, rec.Blob), body) || rec.ContentType != "application/x-test" || string(rec.Meta) != "m-"+rec.Key.Name {
			t.Errorf("%s restored wrong", rec.Key.Name)
		}
	}
	if n != len(want) {
		t.Errorf("%d records restored, %d acknowledged", n, len(want))
	}
	if plain, ok, err := r.Unseal("test", want["secret"]); err != nil || !ok || string(plain) != "a signing secret" {
		t.Errorf("the sealed secret does not open after restore: %q, %v, %v", plain, ok, err)
	}
	if _, err := r.PutRecord(ctx, key("new"), bytes.NewReader(random(5, 1<<20)), engine.Write{}); err != nil {
		t.Fatalf("the restored store takes uploads: %v", err)
	}
}

// TestObjectsScrubLog: a full scrub in object mode reads every segment
// whole, so a damaged log record (what a restore would replay) is found,
// not only damaged chunks.
func TestObjectsScrubLog(t *testing.T) {
	m := testtool.StartMinIO(t)
	b := bucket(t, m, "")
	dir := filepath.Join(t.TempDir(), "data")
	opts := engine.Options{Objects: b, InlineMax: -1}
	e := enginetest.OpenDir(t, dir, opts)
	if _, err := e.PutRecord(ctx, key("a"), bytes.NewReader(random(1, 100<<10)), engine.Write{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// Opened once more, the store has reconciled the segment's log: the
	// damage below is for scrub to find.
	e, err := engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// The last bytes of the object are its log record's: flip one.
	objs := segmentObjects(t, b)
	if len(objs) != 1 {
		t.Fatalf("objects: %+v", objs)
	}
	body := make([]byte, objs[0].Size)
	if err := b.ReadAt(ctx, objs[0].Name, body, 0); err != nil {
		t.Fatal(err)
	}
	body[len(body)-1] ^= 1
	if err := b.Put(ctx, objs[0].Name, bytes.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "segments"))
	os.Mkdir(filepath.Join(dir, "segments"), 0o700)
	e, err = engine.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rep, err := e.Scrub(ctx, 1)
	if err != nil || len(rep.BadSegments) != 1 || len(rep.Corrupt) != 0 {
		t.Errorf("scrub of a segment with a damaged log record: %+v, %v; want that segment bad, no chunk corrupt", rep, err)
	}
}
