package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/keyspace"
	"github.com/cairnstore/cairn/internal/variant"
	"github.com/cairnstore/cairn/server/internal/blobhttp"
	"github.com/cairnstore/cairn/server/internal/web"
)

// fileNamespaces are the namespaces of the APIs' files: the records whose
// images get their eager variants when they are stored.
var fileNamespaces = []string{keyspace.CloudStorage, keyspace.MediaUpload, keyspace.OceanMedia, keyspace.MediaService, keyspace.StorageFiles}

// newVariants makes the server's variant maker (nil: variants are off)
// and, if cfg names eager presets, has every image stored get them made.
func newVariants(e *engine.Engine, cfg Config, log *slog.Logger) *variant.Maker {
	if cfg.NoVariants {
		return nil
	}
	vc := variant.DefaultConfig()
	if cfg.Variants != nil {
		vc = *cfg.Variants
	}
	if cfg.VariantsPerMinute == 0 {
		cfg.VariantsPerMinute = 120
	}
	if per := cfg.VariantsPerMinute; per > 0 && vc.Admit == nil {
		now := cfg.Now
		if now == nil {
			now = time.Now
		}
		makes := web.NewRate(per, max(1, int(per))).SharedBy("variants", e)
		vc.Admit = func(ctx context.Context) error {
			client := web.ClientOf(ctx)
			if client == "" {
				return nil // made for no request: eager variants
			}
			if ok, wait := makes.Allow(client, now()); !ok {
				return &variant.RateError{Wait: wait}
			}
			return nil
		}
	}
	m, err := variant.NewMaker(vc)
	if err != nil {
		log.Error("image variants are off: their configuration is invalid", "err", err)
		return nil
	}
	if len(m.Config().Eager) == 0 || e == nil {
		return m
	}
	// At most Concurrency images wait for their eager variants; past
	// that, an image gets them when they are first asked for.
	queue := make(chan struct{}, m.Config().Concurrency)
	eager := func(rec engine.Record) {
		if !variant.Source(rec.ContentType) || rec.Size > m.Config().MaxBytes {
			return
		}
		select {
		case queue <- struct{}{}:
		default:
			log.Debug("eager variants skipped: too many images waiting", "key", rec.Key)
			return
		}
		go func() {
			defer func() { <-queue }()
			for _, name := range m.Config().Eager {
				for _, spec := range m.Config().PresetSpecs(name, rec.ContentType) {
					if _, err := blobhttp.Make(context.Background(), e, rec, spec, true, m); err != nil {
						log.Debug("eager variant not made", "key", rec.Key, "variant", spec.String(), "err", err)
						return
					}
				}
			}
		}()
	}
	for _, ns := range fileNamespaces {
		e.OnPut(ns, eager)
	}
	return m
}

// registerVariantMetrics exports m's counters.
func registerVariantMetrics(reg prometheus.Registerer, m *variant.Maker) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "cairn_image_variants_made_total", Help: "Image variants made (decoded, resized, encoded and stored) since start; the others requested were served as stored."},
			func() float64 { return float64(m.Stats().Made) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "cairn_image_variants_failed_total", Help: "Image variants that could not be made since start: refused sources (not an image, too large), timeouts, store errors."},
			func() float64 { return float64(m.Stats().Failed) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cairn_image_variants_waiting", Help: "Requests waiting for a turn to make an image variant (serve --variant-concurrency)."},
			func() float64 { return float64(m.Stats().Waiting) }),
	)
}
