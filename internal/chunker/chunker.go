// Package chunker cuts a byte stream into content-defined chunks, so that an
// insertion near the front of a file moves only the chunk boundaries around
// it and most chunks of the edited file are still stored ones.
//
// It is a thin layer over the FastCDC implementation of
// github.com/PlakarKorp/go-cdc-chunkers, registered there under the versioned
// name "fastcdc-v1.0.0", whose cut points do not change across releases. The
// cut points for cairn's parameters are pinned by this package's tests.
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
	"sync"

	cdc "github.com/PlakarKorp/go-cdc-chunkers"
	_ "github.com/PlakarKorp/go-cdc-chunkers/chunkers/fastcdc" // registers "fastcdc-v1.0.0"
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

// bufFactor sizes the scan buffer at twice MaxSize: the library then refills
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

// Chunker yields the chunks of one stream.
type Chunker struct {
	c    *cdc.Chunker
	buf  *[]byte
	pool *sync.Pool
	done bool
	src  *sourceReader
	// emitted counts the bytes of the chunks returned so far.
	emitted int64
}

// sourceReader counts what the source gave and notes its end.
type sourceReader struct {
	r    io.Reader
	read int64
	eof  bool
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.read += int64(n)
	if errors.Is(err, io.EOF) {
		s.eof = true
	}
	return n, err
}

// Last reports whether the chunk Next last returned is known to be the
// stream's last: the source has ended and every byte it gave is in a
// chunk returned. (It may not be known: then the next Next says io.EOF.)
func (c *Chunker) Last() bool {
	return c.src.eof && c.emitted == c.src.read
}

// New returns a chunker over r. Params must be valid (see Validate); New
// panics otherwise, as that is a programming error.
func New(r io.Reader, p Params) *Chunker {
	p = p.WithDefaults()
	if err := p.Validate(); err != nil {
		panic(err)
	}
	pl := pool(p.MaxSize)
	buf := pl.Get().(*[]byte)
	src := &sourceReader{r: r}
	c, err := cdc.NewChunkerBuffer(Algorithm, src, &cdc.ChunkerOpts{
		MinSize: p.MinSize, NormalSize: p.NormalSize, MaxSize: p.MaxSize,
	}, *buf)
	if err != nil {
		panic(fmt.Sprintf("chunker: %v", err)) // validated above
	}
	return &Chunker{c: c, buf: buf, pool: pl, src: src}
}

// Next returns the next chunk, or io.EOF after the last one. An empty stream
// has no chunks. The returned slice is valid until the next call to Next or
// Close. A read error from the stream is returned as is.
func (c *Chunker) Next() ([]byte, error) {
	if c.done {
		return nil, io.EOF
	}
	chunk, err := c.c.Next()
	if err != nil && !errors.Is(err, io.EOF) {
		c.done = true
		return nil, err
	}
	if err != nil { // io.EOF: chunk, if any, is the last one
		c.done = true
		if len(chunk) == 0 {
			return nil, io.EOF
		}
	}
	c.emitted += int64(len(chunk))
	return chunk, nil
}

// Close returns the buffer to the pool; the chunker must not be used after.
func (c *Chunker) Close() {
	if c.buf != nil {
		c.pool.Put(c.buf)
		c.buf = nil
		c.done = true
	}
}
