package fuzz

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/segment"
)

func golden(f *testing.F) []byte {
	b, err := os.ReadFile("../segment/testdata/v1.seg")
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzSegmentScan scans arbitrary bytes as a segment: no panic, no
// allocation beyond the format's maximum, and every record it yields
// verified (its content hashes to its ID); a stop is a clean end or a
// CorruptionError at the offset where the good records end.
func FuzzSegmentScan(f *testing.F) {
	g := golden(f)
	f.Add(g)
	f.Add(g[:len(g)/2])
	f.Add(g[:segment.FileHeaderSize+segment.RecordHeaderSize+3])
	f.Add([]byte{})
	f.Add(withLog(f))
	comp := segment.NewCompressor()
	f.Cleanup(comp.Close)
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := segment.ParseFileHeader(data, "fuzz"); err != nil && !errors.Is(err, segment.ErrCorrupt) &&
			!errors.Is(err, segment.ErrBadMagic) && !errors.Is(err, segment.ErrUnknownVersion) {
			t.Fatalf("ParseFileHeader: unexpected error kind: %v", err)
		}
		start := int64(min(len(data), segment.FileHeaderSize))
		s := segment.NewScanner(bytes.NewReader(data), int64(len(data)), "fuzz", start, comp)
		off := start
		for s.Next() {
			rec := s.Record()
			if rec.Offset != off {
				t.Fatalf("record at %d, expected %d", rec.Offset, off)
			}
			if int64(len(rec.Payload)) != int64(rec.Header.Stored) || rec.Header.Stored > segment.MaxPayload {
				t.Fatalf("payload of %d bytes, header says %d", len(rec.Payload), rec.Header.Stored)
			}
			if rec.Header.Kind != segment.KindChunk {
				if rec.Header.Compression != segment.Raw || blob.Sum(rec.Payload) != rec.Header.ID {
					t.Fatalf("a log record that is not raw, or does not hash to its ID: %+v", rec.Header)
				}
				off += rec.Header.Size()
				continue
			}
			// Reading it back by offset gives the same verified content.
			var scratch []byte
			r := segment.NewReader(bytes.NewReader(data), "fuzz", comp)
			content, err := r.ReadChunk(rec.Offset, int(rec.Header.Stored), rec.Header.ID, &scratch)
			if err != nil {
				t.Fatalf("ReadChunk of a scanned record: %v", err)
			}
			if blob.Sum(content) != rec.Header.ID {
				t.Fatal("ReadChunk returned content that does not hash to its ID")
			}
			off += rec.Header.Size()
		}
		if s.End() != off {
			t.Fatalf("End = %d, records end at %d", s.End(), off)
		}
		if err := s.Err(); err != nil {
			var ce *segment.CorruptionError
			if !errors.As(err, &ce) || ce.Offset != off {
				t.Fatalf("scan stopped with %v; want a CorruptionError at %d", err, off)
			}
		}
	})
}

// withLog is a segment of a chunk, a log record and a voided one, as a
// store in object mode writes them.
func withLog(f *testing.F) []byte {
	dir := f.TempDir()
	w, err := segment.OpenWriter(vfs.Default, dir, 1, 0, segment.WriterOptions{})
	if err != nil {
		f.Fatal(err)
	}
	chunk := []byte("a chunk of content")
	if _, err := w.Append(segment.Record{ID: blob.Sum(chunk), Raw: uint32(len(chunk)), Payload: chunk}); err != nil {
		f.Fatal(err)
	}
	if _, err := w.AppendLog([]byte("\x00\x00\x00\x00\x00\x00\x00\x01a batch")); err != nil {
		f.Fatal(err)
	}
	loc, err := w.AppendLog([]byte("withdrawn"))
	if err != nil {
		f.Fatal(err)
	}
	if err := w.Void(loc); err != nil {
		f.Fatal(err)
	}
	if err := w.Sync(loc.End()); err != nil {
		f.Fatal(err)
	}
	w.Close()
	b, err := os.ReadFile(filepath.Join(dir, segment.FileName(1)))
	if err != nil {
		f.Fatal(err)
	}
	return b[:loc.End().Offset]
}

// FuzzReadChunk reads a record at an arbitrary offset and length with an
// arbitrary expected ID: it never panics and never returns content that
// does not hash to that ID.
func FuzzReadChunk(f *testing.F) {
	g := golden(f)
	comp := segment.NewCompressor()
	f.Cleanup(comp.Close)
	s := segment.NewScanner(bytes.NewReader(g), int64(len(g)), "golden", segment.FileHeaderSize, nil)
	for s.Next() {
		rec := s.Record()
		f.Add(g, rec.Offset, int(rec.Header.Stored), rec.Header.ID[:])
	}
	f.Add(g, int64(segment.FileHeaderSize), 100, make([]byte, 32))
	f.Add(g, int64(0), 1<<30, make([]byte, 32))
	f.Add([]byte{}, int64(-1), -1, []byte{})
	f.Fuzz(func(t *testing.T, data []byte, off int64, stored int, id []byte) {
		want, err := blob.FromBytes(id)
		if err != nil {
			return
		}
		var scratch []byte
		r := segment.NewReader(bytes.NewReader(data), "fuzz", comp)
		content, err := r.ReadChunk(off, stored, want, &scratch)
		if err != nil {
			return
		}
		if blob.Sum(content) != want {
			t.Fatal("ReadChunk returned content that does not hash to the ID asked for")
		}
	})
}
