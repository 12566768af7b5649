package segment

import (
	"fmt"
	"runtime"

	"github.com/klauspost/compress"
	"github.com/klauspost/compress/zstd"
)

// Compressor decides, per chunk, whether zstd pays, and encodes and decodes
// payloads. It holds one zstd encoder and one decoder, shared by all
// goroutines; it is safe for concurrent use.
type Compressor struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

// Compression policy. Not part of the format: a reader decodes whatever the
// compression byte says.
const (
	// minCompressible: below this, a zstd frame's overhead eats any gain.
	minCompressible = 256
	// estimateSample bytes, taken from the middle of a chunk, are what the
	// cheap estimate looks at. The middle: media files often begin with a
	// compressible header and continue with incompressible data.
	estimateSample = 32 << 10
	// estimateThreshold: compress.Estimate says values under 0.1 are likely
	// incompressible.
	estimateThreshold = 0.1
)

// NewCompressor returns a Compressor.
func NewCompressor() *Compressor {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest), // a third faster than the default, a few percent larger
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithEncoderCRC(false), // the payload CRC and the chunk's BLAKE3 cover it
		zstd.WithLowerEncoderMem(true),
	)
	if err != nil {
		panic(fmt.Sprintf("segment: zstd encoder: %v", err)) // fixed, valid options
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(0),
		zstd.WithDecoderMaxMemory(MaxPayload),
		zstd.WithDecoderMaxWindow(MaxPayload),
		zstd.WithDecodeAllCapLimit(true),
	)
	if err != nil {
		panic(fmt.Sprintf("segment: zstd decoder: %v", err))
	}
	return &Compressor{enc: enc, dec: dec}
}

// Compress returns the payload to store for content: zstd-encoded into dst
// when that is estimated to pay and saves at least 10%, else content itself
// (not copied).
func (c *Compressor) Compress(dst, content []byte) (Compression, []byte) {
	if len(content) < minCompressible {
		return Raw, content
	}
	sample := content
	if len(sample) > estimateSample {
		mid := len(sample)/2 - estimateSample/2
		sample = sample[mid : mid+estimateSample]
	}
	if compress.Estimate(sample) < estimateThreshold {
		return Raw, content
	}
	out := c.enc.EncodeAll(content, dst[:0])
	if len(out) > len(content)-len(content)/10 {
		return Raw, content
	}
	return Zstd, out
}

// Decompress decodes payload into dst[:0], which it grows to rawLen; a frame
// that decodes to anything but exactly rawLen bytes is an error.
func (c *Compressor) Decompress(dst, payload []byte, rawLen int) ([]byte, error) {
	if cap(dst) < rawLen {
		dst = make([]byte, 0, rawLen)
	}
	// The cap limit bounds the output to rawLen (≤ MaxPayload) bytes, however
	// the frame claims otherwise.
	out, err := c.dec.DecodeAll(payload, dst[:0:rawLen])
	if err != nil {
		return nil, err
	}
	if len(out) != rawLen {
		return nil, fmt.Errorf("decoded %d bytes, want %d", len(out), rawLen)
	}
	return out, nil
}

// Close releases the encoder's and decoder's goroutines.
func (c *Compressor) Close() {
	c.enc.Close()
	c.dec.Close()
}
