package blobhttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/variant"
)

// Variant returns the record of the image variant r asks for (variant
// query options: w, h, fit, format, q, preset) of rec: the one stored,
// or one made now and stored, one at a time per variant however many ask
// for it at once (m). vary says the answer depends on the Accept header.
// Options m's configuration refuses, a source that is not an image, and
// too large an image are variant.ErrInvalid; m nil refuses every request
// for a variant.
func Variant(r *http.Request, e *engine.Engine, rec engine.Record, m *variant.Maker) (out engine.Record, vary bool, err error) {
	if m == nil {
		return engine.Record{}, false, variant.ErrDisabled
	}
	cfg := m.Config()
	spec, vary, _, err := cfg.Parse(r.URL.Query(), r.Header.Get("Accept"), rec.ContentType)
	if err != nil {
		return engine.Record{}, false, err
	}
	out, err = Make(r.Context(), e, rec, spec, r.URL.Query().Has("preset"), m)
	return out, vary, err
}

// Make returns the record of variant spec of rec, stored or made now. A
// variant that is not a preset's is refused once rec has
// Config.MaxPerImage variants.
func Make(ctx context.Context, e *engine.Engine, rec engine.Record, spec variant.Spec, preset bool, m *variant.Maker) (engine.Record, error) {
	name := spec.String()
	if v, err := e.Variant(rec, name); !errors.Is(err, engine.ErrNotFound) {
		return v, err
	}
	cfg := m.Config()
	if rec.Size > cfg.MaxBytes {
		return engine.Record{}, variant.Invalid("the image is %d bytes, over this server's limit of %d bytes for making variants", rec.Size, cfg.MaxBytes)
	}
	if !preset {
		names, err := e.Variants(rec)
		if err != nil {
			return engine.Record{}, err
		}
		if len(names) >= cfg.MaxPerImage {
			return engine.Record{}, variant.Invalid("this image has %d variants, this server's limit: ask for one of those, or a preset", len(names))
		}
	}
	key := rec.Key.Namespace + "\x00" + rec.Key.Tenant + "\x00" + rec.Key.Name + "\x00" + rec.Blob.String() + "\x00" + name
	v, err := m.Do(ctx, key, func(ctx context.Context) (any, bool, error) {
		// Made by another request between the lookup and this turn?
		if v, err := e.Variant(rec, name); !errors.Is(err, engine.ErrNotFound) {
			return v, false, err
		}
		body, err := e.OpenRecord(rec)
		if err != nil {
			return nil, false, err
		}
		src, err := io.ReadAll(io.LimitReader(body, cfg.MaxBytes+1))
		body.Close()
		if err != nil {
			return nil, false, fmt.Errorf("blobhttp: reading the image: %w", err)
		}
		b, err := variant.Make(ctx, src, spec, cfg.MaxPixels)
		if err != nil {
			return nil, false, err
		}
		v, err := e.PutVariant(ctx, rec, name, variant.ContentType(spec.Format), bytes.NewReader(b))
		return v, err == nil, err
	})
	if err != nil {
		return engine.Record{}, err
	}
	return v.(engine.Record), nil
}

// variantName is the file name a variant is offered under: the
// original's, with the variant's format as its extension.
func variantName(name, format string) string {
	if name == "" {
		return ""
	}
	ext := "." + format
	if format == variant.JPEG {
		ext = ".jpg"
	}
	return strings.TrimSuffix(name, path.Ext(name)) + ext
}
