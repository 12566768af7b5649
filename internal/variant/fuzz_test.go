package variant_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"net/url"
	"slices"
	"strconv"
	"testing"

	"github.com/cairnstore/cairn/internal/variant"
)

// FuzzParse: any query, Accept header and content type parse without
// panicking into a canonical variant the configuration allows, or an
// ErrInvalid; the canonical variant, asked for again, is itself.
func FuzzParse(f *testing.F) {
	cfg := variant.DefaultConfig()
	f.Fuzz(func(t *testing.T, query, accept, source string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		s, vary, ok, err := cfg.Parse(q, accept, source)
		if !ok || err != nil {
			if err != nil && !errors.Is(err, variant.ErrInvalid) {
				t.Fatalf("Parse(%q): %v is not ErrInvalid", query, err)
			}
			return
		}
		if s.Width != 0 && !slices.Contains(cfg.Sizes, s.Width) && !preset(cfg, s) ||
			s.Height != 0 && !slices.Contains(cfg.Sizes, s.Height) && !preset(cfg, s) ||
			s.Quality < 0 || s.Quality > 100 {
			t.Fatalf("Parse(%q) = %s, which the configuration does not allow", query, s)
		}
		again := url.Values{"fit": {s.Fit}, "format": {s.Format}}
		if s.Width != 0 {
			again.Set("w", strconv.Itoa(s.Width))
		}
		if s.Height != 0 {
			again.Set("h", strconv.Itoa(s.Height))
		}
		if s.Quality != 0 && slices.Contains(cfg.Qualities, s.Quality) {
			again.Set("q", strconv.Itoa(s.Quality))
		}
		if preset(cfg, s) {
			return // a preset's sizes need not be on the list
		}
		s2, _, _, err := cfg.Parse(again, accept, source)
		if err != nil || s2.String() != s.String() {
			t.Fatalf("Parse(%q) = %s (vary %v), but asked for again: %s, %v", query, s, vary, s2, err)
		}
	})
}

func preset(cfg variant.Config, s variant.Spec) bool {
	for _, p := range cfg.Presets {
		if p.Width == s.Width && p.Height == s.Height {
			return true
		}
	}
	return false
}

// FuzzMake: any bytes are a variant that decodes, of a size within what
// was asked for, or refused with ErrInvalid; never a panic, and never
// more pixels decoded than the limit.
func FuzzMake(f *testing.F) {
	spec := variant.Spec{Width: 64, Height: 64, Fit: variant.Inside, Format: variant.PNG}
	f.Fuzz(func(t *testing.T, src []byte) {
		out, err := variant.Make(context.Background(), src, spec, 1<<20)
		if err != nil {
			if !errors.Is(err, variant.ErrInvalid) {
				t.Fatalf("Make: %v is not ErrInvalid", err)
			}
			return
		}
		img, format, err := image.Decode(bytes.NewReader(out))
		if err != nil || format != "png" {
			t.Fatalf("the variant does not decode as PNG: %s %v", format, err)
		}
		if b := img.Bounds(); b.Dx() > 64 || b.Dy() > 64 || b.Dx() < 1 || b.Dy() < 1 {
			t.Fatalf("variant of %dx%d", b.Dx(), b.Dy())
		}
	})
}
