package chunker

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"testing/iotest"

	cdc "github.com/PlakarKorp/go-cdc-chunkers"

	"github.com/cairnstore/cairn/internal/blob"
)

// data returns n deterministic pseudo-random bytes. ChaCha8's output is
// specified, so the pinned cut points below are stable across Go releases.
func data(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0] = byte(seed)
	r := rand.NewChaCha8(s)
	r.Read(b)
	return b
}

func lengths(t testing.TB, r io.Reader, p Params) []int {
	t.Helper()
	c := New(r, p)
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

// TestPinnedCutPoints pins the chunk boundaries of the default parameters: a
// change here means stored data would stop deduplicating against new uploads.
func TestPinnedCutPoints(t *testing.T) {
	got := lengths(t, bytes.NewReader(data(1, 16<<20)), Params{})
	want := []int{1372156, 1285071, 1377263, 1559641, 1584075, 1535136, 1290724, 1079489, 1007954, 1297787, 1157611, 1303565, 926744}
	if !slices.Equal(got, want) {
		t.Fatalf("cut points changed:\n got %#v\nwant %#v", got, want)
	}
}

func TestBounds(t *testing.T) {
	p := Params{}.WithDefaults()
	for _, size := range []int{0, 1, p.MinSize - 1, p.MinSize, p.MinSize + 1, p.MaxSize - 1, p.MaxSize, p.MaxSize + 1, 3*p.MaxSize + 7} {
		in := data(2, size)
		got := lengths(t, bytes.NewReader(in), p)
		total := 0
		for i, n := range got {
			total += n
			if n > p.MaxSize {
				t.Errorf("size %d: chunk %d has %d bytes > MaxSize", size, i, n)
			}
			if n < p.MinSize && i != len(got)-1 {
				t.Errorf("size %d: chunk %d has %d bytes < MinSize and is not last", size, i, n)
			}
			if n == 0 {
				t.Errorf("size %d: empty chunk %d", size, i)
			}
		}
		if total != size {
			t.Errorf("size %d: chunks sum to %d", size, total)
		}
		if size == 0 && len(got) != 0 {
			t.Errorf("empty stream gave %d chunks", len(got))
		}
		if size > 0 && size <= p.MinSize && len(got) != 1 {
			t.Errorf("size %d ≤ MinSize gave %d chunks, want 1", size, len(got))
		}
	}
}

// TestReaderIndependence checks that cut points depend on the content only,
// not on how the reader splits its reads.
func TestReaderIndependence(t *testing.T) {
	in := data(3, 9<<20)
	for _, tc := range []struct {
		name string
		in   []byte
		wrap func(io.Reader) io.Reader
	}{
		{"onebyte", in[:3<<20], iotest.OneByteReader},
		{"halfread", in, iotest.HalfReader},
		{"dataerr", in, iotest.DataErrReader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := lengths(t, bytes.NewReader(tc.in), Params{})
			got := lengths(t, tc.wrap(bytes.NewReader(tc.in)), Params{})
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

// TestShiftedContent measures the property dedup relies on: bytes inserted
// at the front leave most chunks of the rest unchanged.
func TestShiftedContent(t *testing.T) {
	in := data(4, 16<<20)
	for _, insert := range []int{1, 100, 4096} {
		shifted := append(bytes.Repeat([]byte{0x5a}, insert), in...)
		a := chunkSet(t, in)
		shared := 0
		for id, n := range chunkSet(t, shifted) {
			if _, ok := a[id]; ok {
				shared += n
			}
		}
		frac := float64(shared) / float64(len(shifted))
		t.Logf("insert %d bytes: %.1f%% of the shifted content in shared chunks", insert, 100*frac)
		if frac < 0.8 {
			t.Errorf("insert %d bytes: only %.1f%% shared, want ≥ 80%%", insert, 100*frac)
		}
	}
}

func chunkSet(t *testing.T, b []byte) map[blob.ID]int {
	c := New(bytes.NewReader(b), Params{})
	defer c.Close()
	m := map[blob.ID]int{}
	for {
		chunk, err := c.Next()
		if errors.Is(err, io.EOF) {
			return m
		}
		if err != nil {
			t.Fatal(err)
		}
		m[blob.Sum(chunk)] = len(chunk)
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	c := New(io.MultiReader(bytes.NewReader(data(5, 100)), iotest.ErrReader(boom)), Params{})
	defer c.Close()
	if _, err := c.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next error = %v, want boom", err)
	}
	if _, err := c.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after error = %v, want EOF", err)
	}
}

func TestValidate(t *testing.T) {
	for _, p := range []Params{
		{MinSize: 10},
		{NormalSize: 3 << 20},
		{MinSize: 2 << 20, NormalSize: 1 << 20},
		{MaxSize: 512 << 10},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want error", p)
		}
	}
	if err := (Params{}).Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}

func BenchmarkChunker(b *testing.B) {
	in := data(6, 64<<20)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		c := New(bytes.NewReader(in), Params{})
		for {
			if _, err := c.Next(); err != nil {
				break
			}
		}
		c.Close()
	}
}

// TestLast: Last is never true before the last chunk, and is true after
// it whenever the source's end was seen (one read at a time or not).
func TestLast(t *testing.T) {
	for _, n := range []int{0, 1, 100 << 10, 300 << 10, 1 << 20, 3<<20 + 17, 9 << 20} {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(data(uint64(n), n))
			if oneByte {
				r = iotest.HalfReader(r)
			}
			c := New(r, Params{})
			var chunks [][]byte
			var lastSeen []bool
			for {
				b, err := c.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				chunks = append(chunks, b)
				lastSeen = append(lastSeen, c.Last())
			}
			c.Close()
			for i, l := range lastSeen {
				if l && i != len(lastSeen)-1 {
					t.Fatalf("n=%d: Last after chunk %d of %d", n, i, len(lastSeen))
				}
			}
			if n > 0 && n <= DefaultMaxSize && !lastSeen[len(lastSeen)-1] {
				t.Errorf("n=%d (half reads %v): the last of %d chunks not known to be last", n, oneByte, len(chunks))
			}
		}
	}
}

// libraryLengths are the chunk lengths go-cdc-chunkers' fastcdc-v1.0.0
// cuts r into: the reference this package's own driver must equal.
func libraryLengths(t testing.TB, in []byte, p Params) []int {
	t.Helper()
	p = p.WithDefaults()
	c, err := cdc.NewChunker(Algorithm, bytes.NewReader(in), &cdc.ChunkerOpts{MinSize: p.MinSize, NormalSize: p.NormalSize, MaxSize: p.MaxSize})
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for {
		chunk, err := c.Next()
		if len(chunk) > 0 {
			out = append(out, len(chunk))
		}
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestSameAsLibrary: the cut points are the library's, for cairn's
// parameters, small ones (many chunks, both masks used often) and the
// library's own defaults (its legacy masks), whatever the reads' sizes.
func TestSameAsLibrary(t *testing.T) {
	for _, p := range []Params{
		{},
		{MinSize: 2 << 10, NormalSize: 8 << 10, MaxSize: 64 << 10},
		{MinSize: 64, NormalSize: 256, MaxSize: 1024},
		{MinSize: 4 << 10, NormalSize: 16 << 10, MaxSize: 32 << 10},
		{MinSize: 100 << 10, NormalSize: 128 << 10, MaxSize: 1 << 20},
	} {
		for seed := range uint64(3) {
			in := data(10+seed, 8<<20+int(seed)*4099)
			want := libraryLengths(t, in, p)
			if got := lengths(t, bytes.NewReader(in), p); !slices.Equal(got, want) {
				t.Fatalf("%+v seed %d: %d chunks, the library's %d\n got %v\nwant %v", p, seed, len(got), len(want), got[:min(8, len(got))], want[:min(8, len(want))])
			}
			if got := lengths(t, iotest.HalfReader(bytes.NewReader(in)), p); !slices.Equal(got, want) {
				t.Fatalf("%+v seed %d, half reads: not the library's chunks", p, seed)
			}
		}
	}
}

// TestWhole: a stream of at most MaxSize bytes is given whole, and then
// cut as if Whole had not been called; a longer one is not.
func TestWhole(t *testing.T) {
	p := Params{}.WithDefaults()
	for _, n := range []int{0, 1, 100 << 10, p.MinSize + 1, 1 << 20, p.MaxSize - 1, p.MaxSize, p.MaxSize + 1, 9 << 20} {
		for _, half := range []bool{false, true} {
			in := data(uint64(n), n)
			var r io.Reader = bytes.NewReader(in)
			if half {
				r = iotest.HalfReader(r)
			}
			c := New(r, p)
			whole, ok := c.Whole()
			if wantOK := n < p.MaxSize; ok != wantOK || ok && !bytes.Equal(whole, in) {
				t.Fatalf("n=%d half=%v: Whole gave %d bytes, ok %v; want ok %v", n, half, len(whole), ok, wantOK)
			}
			var got []byte
			for {
				chunk, err := c.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, chunk...)
			}
			c.Close()
			if !bytes.Equal(got, in) {
				t.Fatalf("n=%d: the chunks after Whole are not the stream", n)
			}
			if want, have := lengths(t, bytes.NewReader(in), p), libraryLengths(t, in, p); !slices.Equal(want, have) {
				t.Fatalf("n=%d: not the library's chunks", n)
			}
		}
	}
	// (Exactly MaxSize bytes are not known to be whole: Whole reads no
	// further, so it says no.) A read error: no, and Next returns it.
	boom := errors.New("boom")
	c := New(io.MultiReader(bytes.NewReader(data(1, 10)), iotest.ErrReader(boom)), p)
	defer c.Close()
	if _, ok := c.Whole(); ok {
		t.Fatal("Whole of a failing stream: ok")
	}
	if _, err := c.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next after Whole = %v, want boom", err)
	}
}

// TestSameAsLibraryRandom: the library's cut points for 2,000 random
// small parameters and inputs of few or many distinct bytes (so that
// both early and late cuts, and no cut, all happen).
func TestSameAsLibraryRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for k := range 2000 {
		p := Params{MinSize: 64 << r.IntN(4)}
		p.NormalSize = p.MinSize << (1 + r.IntN(3))
		p.MaxSize = p.NormalSize * (2 + r.IntN(3))
		in := make([]byte, r.IntN(20000))
		for i := range in {
			in[i] = byte(r.IntN(1 + k%256))
		}
		if got, want := lengths(t, bytes.NewReader(in), p), libraryLengths(t, in, p); !slices.Equal(got, want) {
			t.Fatalf("%+v, %d bytes: chunks %v, the library's %v", p, len(in), got, want)
		}
	}
}

// TestExpect: a stream made of parts, each chunked alone, is cut with the
// parts' chunks but their last as Known exactly as it is cut without
// them, taking them where its chunking meets them; known
// chunks not at a cut, or past the stream's end, are passed over.
func TestExpect(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, p := range []Params{
		{},
		{MinSize: 2 << 10, NormalSize: 8 << 10, MaxSize: 64 << 10},
		{MinSize: 64, NormalSize: 256, MaxSize: 1024},
	} {
		p = p.WithDefaults()
		for seed := range uint64(20) {
			in := data(40+seed, 6*p.MaxSize+r.IntN(p.MaxSize))
			var known []Known
			taken := 0
			for off := 0; off < len(in); {
				// Parts from a byte to three MaxSize, many shorter than MinSize.
				n := min(len(in)-off, 1+r.IntN(3*p.MaxSize))
				if r.IntN(4) == 0 {
					n = min(len(in)-off, 1+r.IntN(p.MinSize))
				}
				at := int64(off)
				part := lengths(t, bytes.NewReader(in[off:off+n]), p)
				for _, l := range part[:len(part)-1] {
					known = append(known, Known{Offset: at, Size: l})
					at += int64(l)
				}
				off += n
			}
			want := lengths(t, bytes.NewReader(in), p)
			c := New(iotest.HalfReader(bytes.NewReader(in)), p)
			c.Expect(known)
			var got []int
			for {
				chunk, err := c.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, len(chunk))
				if i, ok := c.KnownIndex(); ok {
					if known[i].Size != len(chunk) {
						t.Fatalf("known chunk %d is %d bytes, Next gave %d", i, known[i].Size, len(chunk))
					}
					taken++
				}
			}
			c.Close()
			if !slices.Equal(got, want) {
				t.Fatalf("%+v seed %d: with the parts' chunks known, %d chunks; without, %d", p, seed, len(got), len(want))
			}
			if taken == 0 && len(known) > 0 {
				t.Errorf("%+v seed %d: %d of %d known chunks taken", p, seed, taken, len(known))
			}
		}
	}

	// Not at a cut, longer than the rest, empty: passed over.
	p := Params{MinSize: 64, NormalSize: 256, MaxSize: 1024}
	in := data(99, 10<<10)
	want := lengths(t, bytes.NewReader(in), p)
	c := New(bytes.NewReader(in), p)
	defer c.Close()
	c.Expect([]Known{{Offset: 1, Size: 100}, {Offset: int64(want[0]), Size: 0}, {Offset: int64(len(in) - want[len(want)-1]), Size: 2 * want[len(want)-1]}})
	var got []int
	for {
		chunk, err := c.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if _, ok := c.KnownIndex(); ok {
			t.Fatalf("a known chunk not to be taken was taken")
		}
		got = append(got, len(chunk))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("with known chunks to pass over: %v, want %v", got, want)
	}
}
