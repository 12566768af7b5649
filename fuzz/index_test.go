package fuzz

import (
	"bytes"
	"slices"
	"testing"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/internal/blob"
)

// FuzzRecordKey: encoding is a bijection that keeps order. Decoding
// arbitrary bytes never panics, and what decodes re-encodes to the same
// bytes.
func FuzzRecordKey(f *testing.F) {
	f.Add("cloudstorage", "public/photos", "a/b.jpg", "cloudstorage", "public/photos", "a/b.jpg\x00")
	f.Add("m", "t\x00", "", "m", "t", "\x00")
	f.Add("", "\x00\xff", "\xff", "\x00", "", "")
	f.Fuzz(func(t *testing.T, ns1, t1, n1, ns2, t2, n2 string) {
		a := index.RecordKey{Namespace: ns1, Tenant: t1, Name: n1}
		b := index.RecordKey{Namespace: ns2, Tenant: t2, Name: n2}
		ea, eb := index.EncodeRecordKey(a), index.EncodeRecordKey(b)
		da, err := index.DecodeRecordKey(ea)
		if err != nil || da != a {
			t.Fatalf("round trip of %+v = %+v, %v", a, da, err)
		}
		if got, want := bytes.Compare(ea, eb), a.Compare(b); got != want {
			t.Fatalf("encoded order %d, key order %d for %+v and %+v", got, want, a, b)
		}
		// The same bytes read as arbitrary input.
		for _, in := range [][]byte{[]byte(ns1 + t1 + n1), ea[:len(ea)/2]} {
			if k, err := index.DecodeRecordKey(in); err == nil && !bytes.Equal(index.EncodeRecordKey(k), in) {
				t.Fatalf("%q decodes to %+v, which encodes differently", in, k)
			}
		}
		at, k, err := index.DecodeExpiryKey(index.ExpiryKey(int64(len(n1))-5, a))
		if err != nil || k != a || at != int64(len(n1))-5 {
			t.Fatalf("expiry key round trip = %d %+v %v", at, k, err)
		}
	})
}

// FuzzIndexValues decodes arbitrary bytes as each kind of index value: no
// panic, no huge allocation, and what decodes re-encodes to the same bytes;
// as a chunk's outboard, it verifies no bytes but the chunk's own.
func FuzzIndexValues(f *testing.F) {
	id := blob.Sum([]byte("seed"))
	content := bytes.Repeat([]byte("outboard seed "), 3000) // 42,000 bytes: 3 groups
	contentID, outboard := blob.Outboard(content)
	changed := bytes.Clone(content[blob.OutboardGroup : 2*blob.OutboardGroup])
	changed[100] ^= 1
	f.Add(outboard)
	f.Add(index.EncodeInline(index.Inline{Compression: 1, Raw: 4096, Payload: []byte("zstd frame")}))
	f.Add(index.EncodeChunk(index.Chunk{Location: index.Location{Segment: 3, Offset: 4096, Stored: 100, Raw: 200, Compression: 1}, Refs: 2}))
	f.Add(index.EncodeBlob(index.Blob{Size: 300, Refs: 1, Created: 1e18, Chunks: []index.ChunkRef{{ID: id, Size: 100}, {ID: id, Size: 200}}}))
	f.Add(index.EncodeRecord(index.Record{Blob: id, Size: 300, ContentType: "image/png", Meta: []byte(`{"a":1}`), Created: 1, Modified: 2, Expires: 3, Version: 4}))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := index.DecodeChunk(b); err == nil && !bytes.Equal(index.EncodeChunk(c), b) {
			t.Fatalf("chunk %x decodes to %+v, which encodes differently", b, c)
		}
		if v, err := index.DecodeBlob(b); err == nil {
			if !bytes.Equal(index.EncodeBlob(v), b) {
				t.Fatalf("blob %x decodes to %+v, which encodes differently", b, v)
			}
			if len(v.Chunks) > len(b) {
				t.Fatalf("%d chunk refs from %d bytes", len(v.Chunks), len(b))
			}
		}
		if v, err := index.DecodeInline(b); err == nil && !bytes.Equal(index.EncodeInline(v), b) {
			t.Fatalf("inline payload %x decodes to %+v, which encodes differently", b, v)
		}
		blob.VerifyPart(content[blob.OutboardGroup:2*blob.OutboardGroup], b, blob.OutboardGroup, contentID) // no panic
		if blob.VerifyPart(changed, b, blob.OutboardGroup, contentID) {
			t.Fatalf("outboard %x verifies a part that is not the content's", b)
		}
		if r, err := index.DecodeRecord(b); err == nil {
			again, err := index.DecodeRecord(index.EncodeRecord(r))
			if err != nil || !slices.Equal(again.Meta, r.Meta) || again.Blob != r.Blob || again.Version != r.Version {
				t.Fatalf("record %x decodes to %+v, which does not round trip", b, r)
			}
		}
	})
}
