package fuzz

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"testing"

	cdc "github.com/PlakarKorp/go-cdc-chunkers"

	"github.com/cairnstore/cairn/internal/chunker"
)

// FuzzChunker cuts arbitrary bytes, with small parameters taken from the
// input, and checks that the chunks are the stream, in order, within the
// bounds, and exactly those of go-cdc-chunkers' fastcdc-v1.0.0, whose cut
// points stored data is deduplicated by; that Whole gives the stream
// whole exactly when it fits; and that the chunks of two parts of it,
// Known, change nothing.
func FuzzChunker(f *testing.F) {
	f.Add(uint8(0), uint8(0), []byte("hello, world"))
	f.Add(uint8(3), uint8(1), bytes.Repeat([]byte("abcdefghij"), 2000))
	seed := make([]byte, 40000)
	for i := range seed {
		seed[i] = byte(i*7 + i/251)
	}
	f.Add(uint8(1), uint8(2), seed)
	f.Fuzz(func(t *testing.T, minShift, spread uint8, in []byte) {
		// MinSize 64 to 512, NormalSize 2 to 8 times it, MaxSize twice that.
		p := chunker.Params{MinSize: 64 << (minShift % 4)}
		p.NormalSize = p.MinSize << (1 + spread%3)
		p.MaxSize = 2 * p.NormalSize
		c := chunker.New(bytes.NewReader(in), p)
		defer c.Close()
		whole, ok := c.Whole()
		if ok != (len(in) < p.MaxSize) || ok && !bytes.Equal(whole, in) {
			t.Fatalf("Whole: %d bytes, ok %v, of %d (MaxSize %d)", len(whole), ok, len(in), p.MaxSize)
		}
		var got []int
		var all []byte
		for {
			chunk, err := c.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(chunk) == 0 || len(chunk) > p.MaxSize {
				t.Fatalf("chunk of %d bytes, MaxSize %d", len(chunk), p.MaxSize)
			}
			got = append(got, len(chunk))
			all = append(all, chunk...)
		}
		if !bytes.Equal(all, in) {
			t.Fatal("the chunks are not the stream")
		}
		lib, err := cdc.NewChunker(chunker.Algorithm, bytes.NewReader(in), &cdc.ChunkerOpts{MinSize: p.MinSize, NormalSize: p.NormalSize, MaxSize: p.MaxSize})
		if err != nil {
			t.Fatal(err)
		}
		var want []int
		for {
			chunk, err := lib.Next()
			if len(chunk) > 0 {
				want = append(want, len(chunk))
			}
			if err != nil {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("chunks %v, the library's %v", got, want)
		}

		// Cut in two parts (where spread's high bits say), each chunked
		// alone: with their chunks but each one's last known, the
		// stream is cut as without them.
		split := len(in) * int(spread>>2) / 64
		var known []chunker.Known
		for _, part := range [][2]int{{0, split}, {split, len(in)}} {
			lens := lengths(t, in[part[0]:part[1]], p)
			at := int64(part[0])
			for i, l := range lens {
				if i < len(lens)-1 {
					known = append(known, chunker.Known{Offset: at, Size: l})
				}
				at += int64(l)
			}
		}
		kc := chunker.New(bytes.NewReader(in), p)
		defer kc.Close()
		kc.Expect(known)
		var withKnown []int
		for {
			chunk, err := kc.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if i, ok := kc.KnownIndex(); ok && known[i].Size != len(chunk) {
				t.Fatalf("known chunk %d of %d bytes given as %d", i, known[i].Size, len(chunk))
			}
			withKnown = append(withKnown, len(chunk))
		}
		if !slices.Equal(withKnown, got) {
			t.Fatalf("split at %d, with the parts' chunks known: %v, without %v", split, withKnown, got)
		}
	})
}

// lengths are the lengths of in's chunks.
func lengths(t *testing.T, in []byte, p chunker.Params) []int {
	c := chunker.New(bytes.NewReader(in), p)
	defer c.Close()
	var out []int
	for {
		chunk, err := c.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, len(chunk))
	}
}
