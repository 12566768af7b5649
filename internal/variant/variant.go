// Package variant makes image variants: an image decoded (JPEG, PNG, GIF,
// WebP), turned upright by its EXIF orientation, resized and encoded
// again as JPEG, PNG, WebP or AVIF, carrying no metadata.
//
// A download asks for a variant with query options (Config.Parse):
//
//	?w=400&h=300&fit=cover&format=webp&q=75
//	?preset=thumb
//	?w=800&format=auto        (AVIF or WebP by the Accept header)
//
// Parse canonicalises them into a Spec, whose String names the variant
// (the same variant however it was asked for), and refuses what the
// configuration does not allow: sizes off the configured list, qualities
// off theirs, unknown presets, fits and formats, so that no client can
// make the server generate an unbounded number of variants of one image.
//
// Make turns the bytes of an image into a variant's. Before decoding it
// reads only the image's header (image.DecodeConfig) and refuses an image
// of more than MaxPixels pixels, so a small file that decodes to a huge
// image (a decompression bomb) costs nothing. WebP and AVIF are encoded
// by libwebp and libavif (with aom) compiled to WebAssembly and run by
// wazero (wasm.go), so the binary stays pure Go and static; each module is
// compiled once, on first use.
//
// A Maker runs Make for many requests: one at a time per variant
// (singleflight), at most Config.Concurrency at once, each within
// Config.Timeout. Everything here is safe for concurrent use.
package variant

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid is matched (errors.Is) by every error that is the request's
// fault: an option refused, a source that is not an image, or too large
// an image. Its text is for the client.
var ErrInvalid = errors.New("variant: invalid request")

// Error is an error of ErrInvalid; Error() is a message for the client.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

// Is makes Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// ErrDisabled answers a request for a variant where none are made.
var ErrDisabled error = &Error{"image variants are not enabled on this server"}

// Invalid returns an Error with the message format makes of args.
func Invalid(format string, args ...any) error { return &Error{fmt.Sprintf(format, args...)} }

func invalid(format string, args ...any) error { return Invalid(format, args...) }

// The fits.
const (
	// Inside (the default) scales the image to the largest size within
	// w×h that keeps its aspect ratio, never larger than it is.
	Inside = "inside"
	// Cover scales the image to cover w×h exactly and crops what is
	// outside it, around the centre.
	Cover = "cover"
	// Contain scales the image as Inside does and centres it on a w×h
	// canvas: transparent, or white for JPEG.
	Contain = "contain"
)

// The formats.
const (
	JPEG = "jpeg"
	PNG  = "png"
	WebP = "webp"
	AVIF = "avif"
	// Auto is AVIF or WebP if the request's Accept header takes it, in
	// that order, otherwise the source's own format (PNG for GIF, JPEG
	// for WebP).
	Auto = "auto"
)

// ContentType is the content type of a variant of format f.
func ContentType(f string) string { return "image/" + f }

// sources are the content types a variant is made from.
var sources = map[string]string{
	"image/jpeg": JPEG, "image/pjpeg": JPEG, "image/png": PNG, "image/gif": PNG,
	"image/webp": WebP,
}

// Source reports whether a variant can be made of content of type ctype.
func Source(ctype string) bool {
	t, _, err := mime.ParseMediaType(ctype)
	return err == nil && sources[t] != ""
}

// Spec is one variant, canonical: what Parse returns.
type Spec struct {
	// Width and Height bound the variant; 0 leaves that side to the
	// aspect ratio. Both 0: the image's own size.
	Width, Height int
	// Fit is Inside, Cover or Contain; Cover and Contain have both sides.
	Fit string
	// Format is JPEG, PNG, WebP or AVIF.
	Format string
	// Quality is the encoder's, 1 to 100; 0 for PNG, which is lossless.
	Quality int
}

// String is the variant's canonical name, "400x300-cover-q75.webp": one
// for every way of asking for the same variant.
func (s Spec) String() string {
	return fmt.Sprintf("%dx%d-%s-q%d.%s", s.Width, s.Height, s.Fit, s.Quality, s.Format)
}

// Config is what a server allows and how it makes variants. The zero
// value allows nothing; DefaultConfig is the server's default.
type Config struct {
	// Sizes are the widths and heights a request may name; none: only
	// presets and format changes at the image's own size.
	Sizes []int
	// Qualities are the q a request may name; without q a format's own
	// default (JPEG 80, WebP 75, AVIF 60) is used, whatever this lists.
	Qualities []int
	// Presets are named variants (?preset=name), whatever Sizes allows.
	// A preset's Format may be Auto or empty (the source's).
	Presets map[string]Spec
	// Eager are presets made as soon as an image is stored.
	Eager []string
	// MaxPixels refuses images larger than this (width × height) before
	// decoding them; MaxBytes, image files larger than this.
	MaxPixels int64
	MaxBytes  int64
	// Concurrency bounds the variants made at once; the rest wait.
	Concurrency int
	// Timeout bounds the making of one variant, waiting included.
	Timeout time.Duration
	// MaxPerImage bounds the variants kept of one image, presets not
	// counted: past it, other variants are refused (ErrInvalid), so that
	// no client can fill the store with variants of a public image.
	MaxPerImage int
	// Admit, if set, is asked before each variant is made for a request
	// (not for one already stored) with the request's context: an error
	// (wrapping ErrRate, say) refuses it.
	Admit func(ctx context.Context) error
}

// DefaultConfig allows the widths and heights of common layouts and
// screens, three qualities, and two presets.
func DefaultConfig() Config {
	return Config{
		Sizes:     []int{64, 128, 160, 200, 256, 320, 400, 480, 512, 640, 800, 960, 1024, 1280, 1600, 1920, 2048, 2560},
		Qualities: []int{50, 60, 75, 80, 90},
		Presets: map[string]Spec{
			"thumb":   {Width: 200, Height: 200, Fit: Cover, Format: Auto},
			"preview": {Width: 800, Height: 800, Fit: Inside, Format: Auto},
		},
		MaxPixels:   50_000_000,
		MaxBytes:    64 << 20,
		Concurrency: 2,
		Timeout:     30 * time.Second,
		MaxPerImage: 32,
	}
}

// Params are the query parameters that ask for a variant.
var Params = []string{"w", "h", "fit", "format", "q", "preset"}

// Asked reports whether a query asks for a variant.
func Asked(q url.Values) bool {
	for _, p := range Params {
		if _, ok := q[p]; ok {
			return true
		}
	}
	return false
}

// Parse reads the variant a download's query asks for, for a source of
// content type source and a request with the given Accept header. ok is
// false if the query asks for none. vary is true when the answer depends
// on Accept (format=auto). An option the configuration refuses is an
// Error (ErrInvalid).
func (c *Config) Parse(q url.Values, accept, source string) (s Spec, vary, ok bool, err error) {
	if !Asked(q) {
		return Spec{}, false, false, nil
	}
	one := func(p string) (string, error) {
		v := q[p]
		if len(v) > 1 {
			return "", invalid("%s is given more than once", p)
		}
		if len(v) == 0 {
			return "", nil
		}
		if v[0] == "" {
			return "", invalid("%s is empty", p)
		}
		return v[0], nil
	}
	var vals [6]string
	for i, p := range Params {
		if vals[i], err = one(p); err != nil {
			return Spec{}, false, true, err
		}
	}
	w, h, fit, format, quality, preset := vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]

	t, _, perr := mime.ParseMediaType(source)
	srcFormat := sources[t]
	if perr != nil || srcFormat == "" {
		return Spec{}, false, true, invalid("variants are made of JPEG, PNG, GIF and WebP images; this is %s", cmp.Or(source, "not one"))
	}

	if preset != "" {
		if w != "" || h != "" || fit != "" || quality != "" {
			return Spec{}, false, true, invalid("preset cannot be given with w, h, fit or q")
		}
		p, found := c.Presets[preset]
		if !found {
			return Spec{}, false, true, invalid("no preset is named %q; the presets are %s", preset, c.presetNames())
		}
		s = p
		if format != "" {
			s.Format = format
		}
	} else {
		if s.Width, err = c.size("w", w); err != nil {
			return Spec{}, false, true, err
		}
		if s.Height, err = c.size("h", h); err != nil {
			return Spec{}, false, true, err
		}
		s.Fit, s.Format = fit, format
		if quality != "" {
			n, err := number(quality)
			if err != nil || !slices.Contains(c.Qualities, n) {
				return Spec{}, false, true, invalid("q=%s is not allowed; the qualities are %s", quality, list(c.Qualities))
			}
			s.Quality = n
		}
	}

	switch s.Fit {
	case "":
		s.Fit = Inside
	case Inside, Cover, Contain:
	default:
		return Spec{}, false, true, invalid("fit=%s is none of cover, contain, inside", s.Fit)
	}
	if s.Fit != Inside && (s.Width == 0 || s.Height == 0) {
		return Spec{}, false, true, invalid("fit=%s needs both w and h", s.Fit)
	}

	switch s.Format {
	case "":
		s.Format = srcFormat
	case Auto:
		vary = true
		switch {
		case accepts(accept, "image/avif"):
			s.Format = AVIF
		case accepts(accept, "image/webp"):
			s.Format = WebP
		default:
			s.Format = srcFormat
			if srcFormat == WebP {
				s.Format = JPEG
			}
		}
	case JPEG, PNG, WebP, AVIF:
	case "jpg":
		s.Format = JPEG
	default:
		return Spec{}, false, true, invalid("format=%s is none of jpeg, png, webp, avif, auto", s.Format)
	}
	switch {
	case s.Format == PNG:
		s.Quality = 0
	case s.Quality == 0:
		s.Quality = defaultQuality[s.Format]
	}
	return s, vary, true, nil
}

// PresetSpecs returns the variants preset name stands for when made ahead of
// requests, of a source of content type source: one, or for format auto
// one for each format auto may answer with.
func (c *Config) PresetSpecs(name, source string) []Spec {
	p, ok := c.Presets[name]
	if !ok {
		return nil
	}
	accepts := []string{""}
	if p.Format == Auto {
		accepts = []string{"image/avif", "image/webp", ""}
	}
	var out []Spec
	for _, a := range accepts {
		s, _, _, err := c.Parse(url.Values{"preset": {name}}, a, source)
		if err == nil && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// defaultQuality is each lossy format's quality when none is asked for.
var defaultQuality = map[string]int{JPEG: 80, WebP: 75, AVIF: 60}

func (c *Config) size(p, v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := number(v)
	if err != nil || !slices.Contains(c.Sizes, n) {
		if len(c.Sizes) == 0 {
			return 0, invalid("%s is not allowed: this server makes only its presets (%s)", p, c.presetNames())
		}
		return 0, invalid("%s=%s is not allowed; the sizes are %s", p, v, list(c.Sizes))
	}
	return n, nil
}

// number reads a small decimal number, digits only.
func number(v string) (int, error) {
	if len(v) > 6 || strings.TrimLeft(v, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	return strconv.Atoi(v)
}

func (c *Config) presetNames() string {
	names := make([]string, 0, len(c.Presets))
	for n := range c.Presets {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func list(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// accepts reports whether an Accept header takes media type t by name
// (wildcards do not count: "*/*" is what every browser sends, whatever it
// decodes) with a q above 0.
func accepts(accept, t string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil || mt != t {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err != nil || f <= 0 {
				return false
			}
		}
		return true
	}
	return false
}

// Validate checks a configuration: positive sizes and qualities of 1 to
// 100, presets that Parse would accept.
func (c *Config) Validate() error {
	for _, n := range c.Sizes {
		if n < 1 || n > 16384 {
			return fmt.Errorf("variant: size %d is not 1 to 16384", n)
		}
	}
	for _, n := range c.Qualities {
		if n < 1 || n > 100 {
			return fmt.Errorf("variant: quality %d is not 1 to 100", n)
		}
	}
	for name, p := range c.Presets {
		if name == "" || p.Width < 0 || p.Height < 0 || p.Width > 16384 || p.Height > 16384 || p.Quality < 0 || p.Quality > 100 {
			return fmt.Errorf("variant: preset %q is out of bounds", name)
		}
		switch p.Fit {
		case "", Inside:
		case Cover, Contain:
			if p.Width == 0 || p.Height == 0 {
				return fmt.Errorf("variant: preset %q: fit=%s needs both w and h", name, p.Fit)
			}
		default:
			return fmt.Errorf("variant: preset %q: fit %q is none of cover, contain, inside", name, p.Fit)
		}
		switch p.Format {
		case "", Auto, JPEG, PNG, WebP, AVIF:
		default:
			return fmt.Errorf("variant: preset %q: format %q is none of jpeg, png, webp, avif, auto", name, p.Format)
		}
	}
	for _, name := range c.Eager {
		if _, ok := c.Presets[name]; !ok {
			return fmt.Errorf("variant: eager preset %q is not a preset", name)
		}
	}
	return nil
}

// ParsePreset reads a preset written as in a query,
// "w=200,h=200,fit=cover,format=webp,q=75" (commas or ampersands).
func ParsePreset(s string) (Spec, error) {
	var p Spec
	for kv := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == '&' }) {
		k, v, _ := strings.Cut(kv, "=")
		var err error
		switch k {
		case "w":
			p.Width, err = number(v)
		case "h":
			p.Height, err = number(v)
		case "fit":
			p.Fit = v
		case "format":
			p.Format = v
			if v == "jpg" {
				p.Format = JPEG
			}
		case "q":
			p.Quality, err = number(v)
		default:
			return Spec{}, fmt.Errorf("variant: %q is none of w, h, fit, format, q", k)
		}
		if err != nil {
			return Spec{}, fmt.Errorf("variant: %s=%q is not a number", k, v)
		}
	}
	return p, nil
}
