package variant

import (
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"io"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// The encoders in WebAssembly (wasm/README.md says where they come from
// and how to build them again): libwebp 1.4.0, and libavif 1.1.1 with
// aom 3.10.0, each behind one exported C function,
//
//	uint8_t* encode(uint8_t *pixels, int w, int h, size_t *size, …)
//
// that encodes w×h pixels and returns the file, its length in *size.
// They are run by wazero, so the binary stays pure Go and static: the
// packages they came from (github.com/gen2brain/webp and avif) would also
// load libwebp.so or libavif.so from the system when present, through
// purego, which makes a static build dynamically linked.
var (
	//go:embed wasm/webp.wasm.gz
	webpWasm []byte
	//go:embed wasm/avif-encode.wasm.gz
	avifWasm []byte
)

// An encoder is one WebAssembly module, compiled on first use and then
// instantiated afresh for every image (an instance is not safe for
// concurrent use, and a fresh one holds no memory between images).
type encoder struct {
	name string
	gz   []byte

	once     sync.Once
	runtime  wazero.Runtime
	compiled wazero.CompiledModule
	err      error
}

var (
	webpEncoder = &encoder{name: "webp", gz: webpWasm}
	avifEncoder = &encoder{name: "avif", gz: avifWasm}
)

// wasmMemoryPages bounds one encoder instance's memory: 1 GiB (pages of
// 64 KiB), several times what the largest variant allowed needs.
const wasmMemoryPages = 16384

// errEncode: the encoder returned nothing.
var errEncode = errors.New("variant: the encoder failed")

func (e *encoder) compile() error {
	e.once.Do(func() {
		ctx := context.Background()
		// Not WithCloseOnContextDone: the checks it compiles into every
		// loop made AVIF encoding 3× slower (BenchmarkVariant); an encode
		// runs to its end, its size bounded by MaxVariantPixels.
		e.runtime = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
			WithMemoryLimitPages(wasmMemoryPages))
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, e.runtime); err != nil {
			e.err = err
			return
		}
		zr, err := gzip.NewReader(bytes.NewReader(e.gz))
		if err != nil {
			e.err = err
			return
		}
		code, err := io.ReadAll(zr)
		if err != nil {
			e.err = err
			return
		}
		e.compiled, e.err = e.runtime.CompileModule(ctx, code)
	})
	if e.err != nil {
		return fmt.Errorf("variant: compiling the %s encoder: %w", e.name, e.err)
	}
	return nil
}

// encode runs the module's encode on pixels: args are the arguments after
// (pixels, w, h, size).
func (e *encoder) encode(ctx context.Context, pixels []byte, w, h int, args ...uint64) ([]byte, error) {
	if err := e.compile(); err != nil {
		return nil, err
	}
	mod, err := e.runtime.InstantiateModule(ctx, e.compiled, wazero.NewModuleConfig().WithName("").WithStdout(io.Discard).WithStderr(io.Discard))
	if err != nil {
		return nil, fmt.Errorf("variant: starting the %s encoder: %w", e.name, err)
	}
	defer mod.Close(context.Background())
	malloc, free, enc := mod.ExportedFunction("malloc"), mod.ExportedFunction("free"), mod.ExportedFunction("encode")
	alloc := func(n int) (uint64, error) {
		res, err := malloc.Call(ctx, uint64(n))
		if err != nil || res[0] == 0 {
			return 0, fmt.Errorf("variant: %s encoder out of memory for %d bytes: %w", e.name, n, errors.Join(err, errEncode))
		}
		return res[0], nil
	}
	in, err := alloc(len(pixels))
	if err != nil {
		return nil, err
	}
	if !mod.Memory().Write(uint32(in), pixels) {
		return nil, fmt.Errorf("variant: %s encoder: writing the pixels: %w", e.name, errEncode)
	}
	sizePtr, err := alloc(8)
	if err != nil {
		return nil, err
	}
	res, err := enc.Call(ctx, append([]uint64{in, uint64(w), uint64(h), sizePtr}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("variant: %s encoder: %w", e.name, err)
	}
	out, size := res[0], uint64(0)
	if out != 0 {
		size, _ = mod.Memory().ReadUint64Le(uint32(sizePtr))
	}
	if out == 0 || size == 0 {
		return nil, fmt.Errorf("variant: %s encoder: %w", e.name, errEncode)
	}
	b, ok := mod.Memory().Read(uint32(out), uint32(size))
	if !ok {
		return nil, fmt.Errorf("variant: %s encoder: reading %d bytes: %w", e.name, size, errEncode)
	}
	free.Call(ctx, out)
	return bytes.Clone(b), nil
}

// encodeWebP encodes img as a lossy WebP of quality q (method 4, the
// default trade-off of speed and size).
func encodeWebP(ctx context.Context, img image.Image, q int) ([]byte, error) {
	p := toNRGBA(img)
	const colorspaceARGB, method, lossless, exact = 0, 4, 0, 0
	return webpEncoder.encode(ctx, p.Pix, p.Rect.Dx(), p.Rect.Dy(), colorspaceARGB, uint64(q), method, lossless, exact)
}

// encodeAVIF encodes img as an 8-bit 4:2:0 AVIF of quality q (alpha too),
// at aom speed 8 of 10.
func encodeAVIF(ctx context.Context, img image.Image, q int) ([]byte, error) {
	b := img.Bounds()
	p := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy())) // premultiplied, as the glue tells libavif
	draw.Draw(p, p.Rect, img, b.Min, draw.Src)
	const speed, yuv420 = 8, 3 // AVIF_PIXEL_FORMAT_YUV420
	return avifEncoder.encode(ctx, p.Pix, b.Dx(), b.Dy(), uint64(q), uint64(q), speed, yuv420)
}

// toNRGBA returns img as an *image.NRGBA at the origin, converting only
// if it is not one already.
func toNRGBA(img image.Image) *image.NRGBA {
	if n, ok := img.(*image.NRGBA); ok && n.Rect.Min == (image.Point{}) && n.Stride == 4*n.Rect.Dx() {
		return n
	}
	b := img.Bounds()
	n := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(n, n.Rect, img, b.Min, draw.Src)
	return n
}
