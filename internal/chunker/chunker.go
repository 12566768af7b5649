// Package chunker cuts a byte stream into content-defined chunks, so that an
// insertion near the front of a file moves only the chunk boundaries around
// it and most chunks of the edited file are still stored ones.
//
// Its cut points are those of the FastCDC implementation of
// github.com/PlakarKorp/go-cdc-chunkers, registered there under the versioned
// name "fastcdc-v1.0.0", whose cut points do not change across releases: the
// same Gear table (the library's) and masks. This package drives the
// algorithm over its own buffer, so that a stream short enough to be in it
// whole can be seen whole before any of it is cut (Whole). Its tests pin the
// cut points for cairn's parameters and check, also by fuzzing, that they
// are the library's for any bytes and parameters.
//
// A Chunker is not safe for concurrent use; use one per stream. Buffers are
// pooled, so many concurrent chunkers cost MaxSize bytes each, not more.
//
//	c := chunker.New(r, chunker.Params{})
//	defer c.Close()
//	for {
//		chunk, err := c.Next()
//		if err == io.EOF {
//			break
//		}
//		...
//	}
package chunker

import (
	"errors"
	"fmt"
	"io"
	stdbits "math/bits"
	"sync"

	"github.com/PlakarKorp/go-cdc-chunkers/chunkers/fastcdc"
)

// Algorithm is the registered name of the chunking algorithm. Its cut points
// are part of cairn's dedup behaviour (not of the on-disk format: a blob's
// chunk list is stored, so a change would cost dedup, never correctness).
const Algorithm = "fastcdc-v1.0.0"

// Defaults: FastCDC with normalized chunking around a 1 MiB target.
const (
	DefaultMinSize    = 256 << 10
	DefaultNormalSize = 1 << 20
	DefaultMaxSize    = 4 << 20
)

// Params bounds chunk sizes. The zero value means the defaults.
type Params struct {
	// MinSize is the smallest chunk but the last; a stream shorter than
	// MinSize is one chunk.
	MinSize int
	// NormalSize is the target size; it must be a power of two.
	NormalSize int
	// MaxSize is the largest chunk.
	MaxSize int
}

// WithDefaults returns p with zero fields set to the defaults.
func (p Params) WithDefaults() Params {
	if p.MinSize == 0 {
		p.MinSize = DefaultMinSize
	}
	if p.NormalSize == 0 {
		p.NormalSize = DefaultNormalSize
	}
	if p.MaxSize == 0 {
		p.MaxSize = DefaultMaxSize
	}
	return p
}

// Validate reports parameters the algorithm cannot use.
func (p Params) Validate() error {
	p = p.WithDefaults()
	switch {
	case p.MinSize < 64:
		return fmt.Errorf("chunker: MinSize %d below 64", p.MinSize)
	case p.NormalSize&(p.NormalSize-1) != 0:
		return fmt.Errorf("chunker: NormalSize %d is not a power of two", p.NormalSize)
	case p.MinSize >= p.NormalSize || p.NormalSize >= p.MaxSize:
		return fmt.Errorf("chunker: want MinSize < NormalSize < MaxSize, have %d, %d, %d", p.MinSize, p.NormalSize, p.MaxSize)
	case p.MaxSize > 1<<30:
		return fmt.Errorf("chunker: MaxSize %d above 1 GiB", p.MaxSize)
	}
	return nil
}

// bufFactor sizes the scan buffer at twice MaxSize: the reader then refills
// in large strides instead of compacting after nearly every chunk (measured
// ~30% faster than a MaxSize buffer).
const bufFactor = 2

var pools sync.Map // MaxSize -> *sync.Pool of []byte

func pool(maxSize int) *sync.Pool {
	if p, ok := pools.Load(maxSize); ok {
		return p.(*sync.Pool)
	}
	p, _ := pools.LoadOrStore(maxSize, &sync.Pool{New: func() any {
		b := make([]byte, bufFactor*maxSize)
		return &b
	}})
	return p.(*sync.Pool)
}

// maxEmptyReads bounds the (0, nil) reads tolerated from the source in a
// row before io.ErrNoProgress, as bufio.Reader does.
const maxEmptyReads = 100

// Chunker yields the chunks of one stream.
type Chunker struct {
	p            Params
	maskS, maskL uint64
	src          io.Reader
	buf          *[]byte
	pool         *sync.Pool
	// The unconsumed bytes are (*buf)[r:w]; the first cut of them is the
	// chunk Next last returned, consumed at the next call.
	r, w, cut int
	// err is the source's error (io.EOF at its end), once it gave one.
	err  error
	done bool
	// pos is the stream offset of (*buf)[r]; known, from Expect, the
	// chunks known to be at offsets not yet passed; took, the index in
	// Expect's list of the chunk Next last returned, -1 if it was cut.
	pos   int64
	known []Known
	next  int
	took  int
}

// Known is a chunk a stream is known to have: Size bytes at Offset from
// its start, which Next would cut there if it came to Offset at a cut.
// A chunk of another stream that has the same bytes from Offset on, not
// its last (which that stream's end cut), is one: with the same Params,
// where a chunk ends depends only on its bytes and the one after it (or
// on MaxSize), so once two streams' chunkings meet at an offset they
// agree until one of the streams ends.
type Known struct {
	Offset int64
	Size   int
}

// Expect tells the chunker chunks the stream is known to have, in order
// of Offset. Next returns one of them when it comes to its Offset at a
// cut, as it would have cut it, but without scanning it for the cut
// (KnownIndex says which); a chunk not at a cut, or longer than MaxSize
// or than the rest of the stream, is passed over.
func (c *Chunker) Expect(known []Known) {
	c.known, c.next = known, 0
}

// KnownIndex is the index in Expect's list of the chunk Next last
// returned, if it was one of them.
func (c *Chunker) KnownIndex() (int, bool) {
	return c.took, c.took >= 0
}

// New returns a chunker over r. Params must be valid (see Validate); New
// panics otherwise, as that is a programming error.
func New(r io.Reader, p Params) *Chunker {
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		panic(err)
	}
	pl := pool(p.MaxSize)
	c := &Chunker{p: p, src: r, buf: pl.Get().(*[]byte), pool: pl, took: -1}
	c.maskS, c.maskL = masks(p)
	return c
}

// masks are the Gear fingerprint masks of go-cdc-chunkers' fastcdc-v1.0.0
// (its Setup) for p: normalized chunking of level 2, a mask of two bits
// more than log2(NormalSize) before NormalSize and two fewer after, the
// bits spread over the word; its legacy masks for its own defaults.
func masks(p Params) (maskS, maskL uint64) {
	if p.MinSize == 2<<10 && p.MaxSize == 64<<10 && p.NormalSize == 8<<10 {
		return 0x0003590703530000, 0x0000d90003530000
	}
	const level = 2
	bits := stdbits.Len(uint(p.NormalSize)) - 1 // NormalSize is a power of two
	return spacedMask(bits + level), spacedMask(bits - level)
}

// spacedMask is a mask of ones bits spread evenly from the top of the word.
func spacedMask(ones int) uint64 {
	if ones >= 64 {
		return ^uint64(0)
	}
	if ones <= 0 {
		return 0
	}
	var m uint64
	step := 64 / ones
	for i := range ones {
		m |= 1 << (63 - i*step)
	}
	return m
}

// cutPoint returns the length of the chunk that begins data, the bytes
// available (all of the rest of the stream, or at least MaxSize of it).
func (c *Chunker) cutPoint(data []byte) int {
	n, normal := len(data), c.p.NormalSize
	switch {
	case n <= c.p.MinSize:
		return n
	case n >= c.p.MaxSize:
		n = c.p.MaxSize
	case n <= normal:
		normal = n
	}
	g, maskS, maskL := &fastcdc.G, c.maskS, c.maskL
	var fp uint64
	i := c.p.MinSize
	for _, b := range data[i:normal] {
		if fp = fp<<1 + g[b]; fp&maskS == 0 {
			return i
		}
		i++
	}
	for _, b := range data[normal:n] {
		if fp = fp<<1 + g[b]; fp&maskL == 0 {
			return i
		}
		i++
	}
	return n
}

// fill reads until n bytes are unconsumed or the source has ended (or
// failed), and returns up to n of them.
func (c *Chunker) fill(n int) []byte {
	buf := *c.buf
	for c.w-c.r < n && c.err == nil {
		if c.w == len(buf) && c.r > 0 {
			c.w = copy(buf, buf[c.r:c.w])
			c.r = 0
		}
		for tries := maxEmptyReads; ; tries-- {
			m, err := c.src.Read(buf[c.w:])
			c.w += m
			if err != nil {
				c.err = err
				break
			}
			if m > 0 {
				break
			}
			if tries <= 1 {
				c.err = io.ErrNoProgress
				break
			}
		}
	}
	return buf[c.r : c.r+min(n, c.w-c.r)]
}

// Whole returns the stream's whole content, if it is at most MaxSize
// bytes (and nothing has been read from it with Next), without consuming
// it: Next then returns its chunks. The slice is valid until Next or Close.
// ok is false for a longer stream, or one whose read failed (Next returns
// the error).
func (c *Chunker) Whole() (content []byte, ok bool) {
	if c.done || c.cut != 0 || c.buf == nil {
		return nil, false
	}
	data := c.fill(c.p.MaxSize)
	if !errors.Is(c.err, io.EOF) || len(data) != c.w-c.r {
		return nil, false
	}
	return data, true
}

// Last reports whether the chunk Next last returned is known to be the
// stream's last: the source has ended and every byte it gave is in a
// chunk returned. (It may not be known: then the next Next says io.EOF.)
func (c *Chunker) Last() bool {
	return errors.Is(c.err, io.EOF) && c.cut > 0 && c.w-c.r == c.cut
}

// Next returns the next chunk, or io.EOF after the last one. An empty stream
// has no chunks. The returned slice is valid until the next call to Next or
// Close. A read error from the stream is returned as is.
func (c *Chunker) Next() ([]byte, error) {
	if c.done || c.buf == nil {
		return nil, io.EOF
	}
	c.r += c.cut
	c.pos += int64(c.cut)
	c.cut, c.took = 0, -1
	if c.r == c.w {
		c.r, c.w = 0, 0
	}
	data := c.fill(c.p.MaxSize)
	if c.err != nil && !errors.Is(c.err, io.EOF) {
		c.done = true
		return nil, c.err
	}
	if len(data) == 0 {
		c.done = true
		return nil, io.EOF
	}
	for c.next < len(c.known) && c.known[c.next].Offset < c.pos {
		c.next++
	}
	if c.next < len(c.known) {
		if k := c.known[c.next]; k.Offset == c.pos && k.Size > 0 && k.Size <= len(data) && k.Size <= c.p.MaxSize {
			c.cut, c.took = k.Size, c.next
			c.next++
			return data[:c.cut], nil
		}
	}
	c.cut = c.cutPoint(data)
	return data[:c.cut], nil
}

// Close returns the buffer to the pool; the chunker must not be used after.
func (c *Chunker) Close() {
	if c.buf != nil {
		c.pool.Put(c.buf)
		c.buf = nil
		c.done = true
	}
}
