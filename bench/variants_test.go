package bench

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/cairnstore/cairn/internal/testtool"
	"github.com/cairnstore/cairn/internal/variant"
)

var (
	photoOnce  sync.Once
	photoBytes []byte
)

// photo12MP is a 4000×3000 JPEG (quality 90) that compresses like a
// photograph: gradients, hard edges and sensor noise, about 4 MB.
func photo12MP(b *testing.B) []byte {
	photoOnce.Do(func() {
		const w, h = 4000, 3000
		img := image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
		r := rand.New(rand.NewPCG(12, 34))
		for y := range h {
			for x := range w {
				v := uint8(x*255/w) ^ uint8((x/250+y/250)%2*60) // gradient and tiles
				img.Y[y*img.YStride+x] = v + uint8(r.IntN(24))
			}
		}
		for y := range h / 2 {
			for x := range w / 2 {
				img.Cb[y*img.CStride+x] = uint8(90 + x*80/(w/2))
				img.Cr[y*img.CStride+x] = uint8(100 + y*60/(h/2) + r.IntN(8))
			}
		}
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
			panic(err)
		}
		photoBytes = buf.Bytes()
	})
	return photoBytes
}

// BenchmarkVariant makes a 400 px wide WebP and AVIF of a 12 MP JPEG:
// cairn's pure-Go path (decode, EXIF orientation, Lanczos resize,
// libwebp/libavif in WebAssembly), beside vipsthumbnail (libvips, native
// code, shrink-on-load) on the same file and options as the reference.
// peak-MB is cairn's heap growth during one make, or vipsthumbnail's
// maximum resident set.
//
//	go test ./bench -run '^$' -bench Variant -benchtime 10x
func BenchmarkVariant(b *testing.B) {
	src := photo12MP(b)
	cfg, _, err := image.DecodeConfig(bytes.NewReader(src))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("source: %dx%d JPEG, %d bytes", cfg.Width, cfg.Height, len(src))
	dir := b.TempDir()
	in := filepath.Join(dir, "in.jpg")
	if err := os.WriteFile(in, src, 0o600); err != nil {
		b.Fatal(err)
	}
	for _, f := range []struct {
		format string
		q      int
	}{{variant.WebP, 75}, {variant.AVIF, 60}} {
		spec := variant.Spec{Width: 400, Fit: variant.Inside, Format: f.format, Quality: f.q}
		b.Run(fmt.Sprintf("format=%s/impl=cairn", f.format), func(b *testing.B) {
			ctx := context.Background()
			if _, err := variant.Make(ctx, src, spec, 50_000_000); err != nil { // modules compiled before timing
				b.Fatal(err)
			}
			var size int
			peak := testtool.HeapGrowth(func() {
				out, err := variant.Make(ctx, src, spec, 50_000_000)
				if err != nil {
					b.Fatal(err)
				}
				size = len(out)
			})
			b.ResetTimer()
			for b.Loop() {
				if _, err := variant.Make(ctx, src, spec, 50_000_000); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(peak)/1e6, "peak-MB")
			b.ReportMetric(float64(size), "out-bytes")
		})
		b.Run(fmt.Sprintf("format=%s/impl=vipsthumbnail", f.format), func(b *testing.B) {
			vips, err := exec.LookPath("vipsthumbnail")
			if err != nil {
				b.Skip("vipsthumbnail not found: apt-get install libvips-tools for the reference figure")
			}
			out := filepath.Join(dir, "out."+f.format)
			run := func() int64 {
				cmd := exec.Command(vips, in, "--size", "400", "-o", fmt.Sprintf("%s[Q=%d,strip]", out, f.q))
				if msg, err := cmd.CombinedOutput(); err != nil {
					b.Skipf("vipsthumbnail cannot make %s here: %v %s", f.format, err, msg)
				}
				return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss // KiB
			}
			run()
			var rss int64
			b.ResetTimer()
			for b.Loop() {
				rss = max(rss, run())
			}
			b.StopTimer()
			st, err := os.Stat(out)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(rss)*1024/1e6, "peak-MB")
			b.ReportMetric(float64(st.Size()), "out-bytes")
		})
	}
}

// BenchmarkVariantGet downloads, through the cloud storage API over
// loopback with 8 clients, a stored 400 px WebP variant of a 12 MP JPEG
// (the request's options parsed, the variant looked up, served), beside
// the same bytes stored as a plain file (the baseline: what the variant
// path adds) and the 12 MP original.
//
//	go test ./bench -run '^$' -bench VariantGet -benchtime 3s
func BenchmarkVariantGet(b *testing.B) {
	h := newHTTPEnv(b)
	src := photo12MP(b)
	h.do(b, "POST", "/public/1/photo.jpg", src, 201)
	const q = "?w=400&format=webp"
	res, err := h.client.Get(h.url + "/public/1/photo.jpg" + q) // made once, before timing
	if err != nil {
		b.Fatal(err)
	}
	var v bytes.Buffer
	v.ReadFrom(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		b.Fatalf("GET %s: %d", q, res.StatusCode)
	}
	h.do(b, "POST", "/public/1/plain.webp", v.Bytes(), 201)
	for _, c := range []struct {
		name, path string
		size       int
	}{
		{"object=variant", "/public/1/photo.jpg" + q, v.Len()},
		{"object=plain-file-of-its-bytes", "/public/1/plain.webp", v.Len()},
		{"object=original", "/public/1/photo.jpg", len(src)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(c.size))
			b.SetParallelism(4) // 8 clients on the reference machine's 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					h.do(b, "GET", c.path, nil, 200)
				}
			})
		})
	}
}
