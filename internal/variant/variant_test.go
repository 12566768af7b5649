package variant_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/gen2brain/avif" // decodes the AVIF variants the tests check

	"github.com/cairnstore/cairn/internal/testtool"
	"github.com/cairnstore/cairn/internal/variant"
)

func TestParse(t *testing.T) {
	cfg := variant.DefaultConfig()
	cfg.Presets["square"] = variant.Spec{Width: 64, Height: 64, Fit: variant.Contain, Format: variant.PNG}
	for _, c := range []struct {
		query, accept, source string
		want                  string
		vary                  bool
	}{
		{"w=400", "", "image/jpeg", "400x0-inside-q80.jpeg", false},
		{"h=400&w=400&fit=inside", "", "image/jpeg", "400x400-inside-q80.jpeg", false},
		{"w=400&h=400&fit=cover&format=webp", "", "image/png", "400x400-cover-q75.webp", false},
		{"w=400&format=jpg&q=90", "", "image/png", "400x0-inside-q90.jpeg", false},
		{"w=400&format=png&q=90", "", "image/jpeg", "400x0-inside-q0.png", false},
		{"w=400", "", "image/gif", "400x0-inside-q0.png", false},
		{"format=webp", "", "image/jpeg", "0x0-inside-q75.webp", false},
		{"w=400&format=auto", "image/avif,image/webp,*/*", "image/jpeg", "400x0-inside-q60.avif", true},
		{"w=400&format=auto", "image/avif;q=0,image/webp", "image/jpeg", "400x0-inside-q75.webp", true},
		{"w=400&format=auto", "*/*", "image/webp", "400x0-inside-q80.jpeg", true},
		{"w=400&format=auto", "", "image/png", "400x0-inside-q0.png", true},
		{"preset=thumb", "image/webp", "image/jpeg", "200x200-cover-q75.webp", true},
		{"preset=square", "", "image/jpeg", "64x64-contain-q0.png", false},
		{"preset=square&format=avif", "", "image/jpeg", "64x64-contain-q60.avif", false},
	} {
		q, _ := url.ParseQuery(c.query)
		s, vary, ok, err := cfg.Parse(q, c.accept, c.source)
		if err != nil || !ok || s.String() != c.want || vary != c.vary {
			t.Errorf("Parse(%q, Accept %q, %s) = %s, vary %v, %v, %v; want %s, vary %v", c.query, c.accept, c.source, s, vary, ok, err, c.want, c.vary)
		}
	}
	for _, query := range []string{
		"w=401", "w=0", "w=-1", "w=+400", "w=400&w=800", "w=", "w=4e2", "w=4000000000",
		"h=400&fit=cover", "w=400&fit=fill", "w=400&format=bmp", "w=400&q=77", "w=400&q=abc",
		"preset=nope", "preset=thumb&w=400", "preset=thumb&q=75", "fit=cover",
	} {
		q, _ := url.ParseQuery(query)
		_, _, ok, err := cfg.Parse(q, "", "image/jpeg")
		if !ok || !errors.Is(err, variant.ErrInvalid) {
			t.Errorf("Parse(%q) = %v, %v; want ErrInvalid", query, ok, err)
		}
	}
	for _, source := range []string{"application/pdf", "image/svg+xml", "text/html", "", "image/tiff", "image/avif"} {
		_, _, _, err := cfg.Parse(url.Values{"w": {"400"}}, "", source)
		if !errors.Is(err, variant.ErrInvalid) {
			t.Errorf("a variant of %q: %v, want ErrInvalid", source, err)
		}
	}
	if _, _, ok, err := cfg.Parse(url.Values{"download": {"1"}, "X-Signature": {"x"}}, "", "image/jpeg"); ok || err != nil {
		t.Errorf("a query of other parameters asks for a variant: %v, %v", ok, err)
	}
}

func decode(t *testing.T, b []byte) (image.Image, string) {
	t.Helper()
	img, format, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the variant does not decode: %v", err)
	}
	return img, format
}

func TestMake(t *testing.T) {
	src := testtool.JPEG(t, testtool.Picture(640, 480))
	ctx := context.Background()
	for _, c := range []struct {
		spec          variant.Spec
		w, h          int
		format        string
		transparentAt *image.Point
	}{
		{variant.Spec{Width: 320, Fit: variant.Inside, Format: variant.JPEG, Quality: 80}, 320, 240, "jpeg", nil},
		{variant.Spec{Height: 120, Fit: variant.Inside, Format: variant.PNG}, 160, 120, "png", nil},
		{variant.Spec{Width: 2560, Fit: variant.Inside, Format: variant.PNG}, 640, 480, "png", nil}, // never enlarged
		{variant.Spec{Width: 200, Height: 200, Fit: variant.Cover, Format: variant.WebP, Quality: 75}, 200, 200, "webp", nil},
		{variant.Spec{Width: 200, Height: 200, Fit: variant.Contain, Format: variant.PNG}, 200, 200, "png", &image.Point{100, 5}},
		{variant.Spec{Width: 400, Fit: variant.Inside, Format: variant.AVIF, Quality: 60}, 400, 300, "avif", nil},
	} {
		out, err := variant.Make(ctx, src, c.spec, 50_000_000)
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		img, format := decode(t, out)
		if b := img.Bounds(); b.Dx() != c.w || b.Dy() != c.h || format != c.format {
			t.Errorf("%s: %dx%d %s, want %dx%d %s", c.spec, b.Dx(), b.Dy(), format, c.w, c.h, c.format)
		}
		if w, h := variant.Size(640, 480, c.spec); w != c.w || h != c.h {
			t.Errorf("Size(%s) = %dx%d, want %dx%d", c.spec, w, h, c.w, c.h)
		}
		if p := c.transparentAt; p != nil {
			if _, _, _, a := img.At(p.X, p.Y).RGBA(); a != 0 {
				t.Errorf("%s: the letterbox at %v is not transparent (alpha %d)", c.spec, *p, a)
			}
		}
		// Red stays left and blue right.
		b := img.Bounds()
		if !reddish(img.At(b.Min.X+b.Dx()/4, b.Min.Y+b.Dy()/2)) || reddish(img.At(b.Min.X+3*b.Dx()/4, b.Min.Y+b.Dy()/2)) {
			t.Errorf("%s: the picture is not the source's", c.spec)
		}
	}
}

func reddish(c color.Color) bool {
	r, _, b, _ := c.RGBA()
	return r > b
}

// TestOrientation: an EXIF orientation is applied, and the EXIF (with
// the camera's make) does not reach the variant.
func TestOrientation(t *testing.T) {
	// Orientation 6: the stored picture is shown turned 90° clockwise,
	// so its left (red) half is on top.
	src := testtool.WithOrientation(testtool.JPEG(t, testtool.Picture(80, 40)), 6)
	if cfg, _, err := image.DecodeConfig(bytes.NewReader(src)); err != nil || cfg.Width != 80 {
		t.Fatalf("the test JPEG does not read: %v %+v", err, cfg)
	}
	for _, format := range []string{variant.JPEG, variant.PNG, variant.WebP} {
		out, err := variant.Make(context.Background(), src, variant.Spec{Width: 20, Fit: variant.Inside, Format: format, Quality: 90}, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		img, _ := decode(t, out)
		if b := img.Bounds(); b.Dx() != 20 || b.Dy() != 40 {
			t.Fatalf("%s: %dx%d, want 20x40 (upright)", format, b.Dx(), b.Dy())
		}
		if !reddish(img.At(10, 5)) || reddish(img.At(10, 35)) {
			t.Errorf("%s: red is not on top", format)
		}
		for _, meta := range []string{"Exif", "ACM"} {
			if bytes.Contains(out, []byte(meta)) {
				t.Errorf("%s: the variant carries the source's %q", format, meta)
			}
		}
	}
}

func TestRefused(t *testing.T) {
	ctx := context.Background()
	spec := variant.Spec{Width: 64, Fit: variant.Inside, Format: variant.PNG}
	for name, src := range map[string][]byte{
		"bomb":      testtool.PNGBomb(100_000, 100_000),
		"wide bomb": testtool.PNGBomb(1<<31-1, 1),
		"zero":      testtool.PNGBomb(0, 0),
		"text":      []byte("hello, this is not an image"),
		"truncated": testtool.JPEG(t, testtool.Picture(64, 64))[:200],
		"empty":     nil,
	} {
		if _, err := variant.Make(ctx, src, spec, 50_000_000); !errors.Is(err, variant.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	// A GIF is made of its first frame.
	var g bytes.Buffer
	pal := image.NewPaletted(image.Rect(0, 0, 32, 32), []color.Color{color.Black, color.White})
	if err := gif.EncodeAll(&g, &gif.GIF{Image: []*image.Paletted{pal, pal}, Delay: []int{1, 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := variant.Make(ctx, g.Bytes(), spec, 1<<20); err != nil {
		t.Errorf("a GIF: %v", err)
	}
	// An image just over the pixel limit is refused; at it, made.
	var p bytes.Buffer
	png.Encode(&p, testtool.Picture(100, 100))
	if _, err := variant.Make(ctx, p.Bytes(), spec, 9_999); !errors.Is(err, variant.ErrInvalid) {
		t.Errorf("over the pixel limit: %v", err)
	}
	if _, err := variant.Make(ctx, p.Bytes(), spec, 10_000); err != nil {
		t.Errorf("at the pixel limit: %v", err)
	}
}

// TestMakerOnce: concurrent calls for one variant run it once, and the
// concurrency bound holds across variants.
func TestMakerOnce(t *testing.T) {
	var admitted atomic.Int64 // callers about to join a run: Do asks Admit first
	m, err := variant.NewMaker(variant.Config{Concurrency: 2, Timeout: 10 * time.Second,
		Admit: func(context.Context) error { admitted.Add(1); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	var runs, inFlight, peak atomic.Int64
	release := make(chan struct{})
	fn := func(context.Context) (any, bool, error) {
		runs.Add(1)
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inFlight.Add(-1)
		return "done", true, nil
	}
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			v, err := m.Do(context.Background(), []string{"a", "b", "c"}[i%3], fn)
			if err != nil || v != "done" {
				t.Errorf("Do = %v, %v", v, err)
			}
		})
	}
	// Every caller has asked, two runs hold the two slots and the third
	// waits for one: only then may the runs end.
	waitUntil(t, func() bool { return admitted.Load() == 24 && inFlight.Load() == 2 && m.Stats().Waiting == 1 })
	close(release)
	wg.Wait()
	if runs.Load() != 3 || peak.Load() > 2 {
		t.Errorf("%d runs for 3 variants, %d at once (want 3, at most 2)", runs.Load(), peak.Load())
	}
	if s := m.Stats(); s.Made != 3 || s.Waiting != 0 {
		t.Errorf("stats %+v", s)
	}
	// A caller that gives up does not stop the run for the others: it
	// ends, and counts as made, once it may.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	unblock := make(chan struct{})
	if _, err := m.Do(ctx, "slow", func(context.Context) (any, bool, error) { <-unblock; return 1, true, nil }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a caller past its deadline: %v", err)
	}
	close(unblock)
	waitUntil(t, func() bool { return m.Stats().Made == 4 })
	// A run that found the variant made (by a run that ended after its
	// caller looked) made nothing.
	if v, err := m.Do(context.Background(), "a", func(context.Context) (any, bool, error) { return "found", false, nil }); v != "found" || err != nil {
		t.Errorf("Do = %v, %v", v, err)
	}
	if s := m.Stats(); s.Made != 4 {
		t.Errorf("a run that found the variant counted as made: %+v", s)
	}
}

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10 s")
		}
	}
}

func TestValidate(t *testing.T) {
	for _, cfg := range []variant.Config{
		{Sizes: []int{0}},
		{Qualities: []int{101}},
		{Presets: map[string]variant.Spec{"x": {Width: 10, Fit: variant.Cover}}},
		{Presets: map[string]variant.Spec{"x": {Width: 10, Format: "bmp"}}},
		{Eager: []string{"nope"}},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%+v is valid", cfg)
		}
	}
	p, err := variant.ParsePreset("w=200,h=100,fit=cover,format=jpg,q=70")
	if err != nil || p != (variant.Spec{Width: 200, Height: 100, Fit: variant.Cover, Format: variant.JPEG, Quality: 70}) {
		t.Errorf("ParsePreset = %+v, %v", p, err)
	}
	if _, err := variant.ParsePreset("w=200,size=3"); err == nil {
		t.Error("ParsePreset took an unknown option")
	}
}

// TestMakerTimeout: a variant that takes longer than the timeout is
// abandoned with ErrBusy, and so is one that waits that long for a slot.
func TestMakerTimeout(t *testing.T) {
	m, err := variant.NewMaker(variant.Config{Concurrency: 1, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	slow := func(ctx context.Context) (any, bool, error) { <-ctx.Done(); return nil, false, ctx.Err() }
	var wg sync.WaitGroup
	for _, key := range []string{"a", "b"} {
		wg.Go(func() {
			if _, err := m.Do(context.Background(), key, slow); !errors.Is(err, variant.ErrBusy) {
				t.Errorf("%s: %v, want ErrBusy", key, err)
			}
		})
	}
	wg.Wait()
}
