package engine_test

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/blob"
)

// TestUploadOf: a record's content, taken as an upload without reading
// it and put under another key in the transaction that deletes the
// record, is the same content (b3sum's ID, whole and partial reads) and
// writes nothing; GC keeps all of it while the new record lives and
// takes all of it after. A content kept in the index is not taken so
// (ok false: the caller uploads its bytes).
func TestUploadOf(t *testing.T) {
	var skew atomic.Int64
	e := enginetest.Open(t, engine.Options{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	from := engine.Key{Namespace: "ns", Tenant: "t", Name: "part"}
	to := engine.Key{Namespace: "ns", Tenant: "t", Name: "file"}
	for i, size := range []int{1, 16 << 10, 16<<10 + 1, engine.MinOutboard, 300 << 10, 3<<20 + 5, 9 << 20} {
		data := random(uint64(200+i), size)
		rec, err := e.PutRecord(ctx, from, bytes.NewReader(data), engine.Write{})
		if err != nil {
			t.Fatal(err)
		}
		before, _ := e.Stats()
		up, ok, err := e.UploadOf(rec)
		if err != nil {
			t.Fatal(err)
		}
		if ok != (size > 16<<10) {
			t.Fatalf("size %d: UploadOf ok=%v", size, ok)
		}
		if !ok {
			if err := e.DeleteRecord(ctx, from); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if up.ID() != blob.Sum(data) || up.Size() != int64(size) {
			t.Fatalf("size %d: upload of %s, %d bytes; b3sum %s", size, up.ID(), up.Size(), blob.Sum(data))
		}
		err = e.Update(ctx, func(tx *engine.Tx) error {
			if err := tx.Delete(from); err != nil {
				return err
			}
			_, err := tx.Put(to, engine.Record{ContentType: "application/octet-stream"}, up)
			return err
		})
		up.Close()
		if err != nil {
			t.Fatal(err)
		}
		after, _ := e.Stats()
		if after.WrittenBytes != before.WrittenBytes || after.Uploads != before.Uploads || after.Blobs != before.Blobs || after.Chunks != before.Chunks {
			t.Errorf("size %d: written %d bytes, %d uploads, blobs %d→%d, chunks %d→%d", size, after.WrittenBytes-before.WrittenBytes,
				after.Uploads-before.Uploads, before.Blobs, after.Blobs, before.Chunks, after.Chunks)
		}
		if _, err := e.GC(ctx, false); err != nil {
			t.Fatal(err)
		}
		enginetest.Collect(t, e, func(d time.Duration) { skew.Add(int64(d)) })
		got, err := e.GetRecord(to)
		if err != nil || got.Blob != rec.Blob || got.Size != int64(size) {
			t.Fatalf("size %d: the new record is %+v (%v)", size, got, err)
		}
		readsBack(t, e, got, data)
		if err := e.Check(ctx); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		if err := e.DeleteRecord(ctx, to); err != nil {
			t.Fatal(err)
		}
	}

	// A content released since its record was read is not there to take.
	rec, err := e.PutRecord(ctx, from, bytes.NewReader(random(300, 1<<20)), engine.Write{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteRecord(ctx, from); err != nil {
		t.Fatal(err)
	}
	if _, err := e.GC(ctx, false); err != nil {
		t.Fatal(err)
	}
	enginetest.Collect(t, e, func(d time.Duration) { skew.Add(int64(d)) })
	if up, ok, err := e.UploadOf(rec); ok || err != nil {
		up.Close()
		t.Fatalf("UploadOf a released content: ok=%v, %v", ok, err)
	}

	st, _ := e.Stats()
	if st.Blobs != 0 || st.Chunks != 0 || st.LiveBytes != 0 {
		t.Errorf("everything deleted: %d blobs, %d chunks, %d live bytes left", st.Blobs, st.Chunks, st.LiveBytes)
	}
}
