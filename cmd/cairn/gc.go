package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/cairnstore/cairn/engine"
)

func gcCommand() command {
	return command{
		name:  "gc",
		short: "report reclaimable space and run a garbage collection pass",
		store: true,
		long: `
GC releases content no record refers to any more (after a grace period),
then compacts segment files whose live data has fallen under half: live
chunks are copied, the file is removed, and its space goes back to the
file system. With --dry-run it only reports what it would reclaim. It
works on a stopped store and, through the admin socket, on a running one.`,
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			dry := fs.Bool("dry-run", false, "report reclaimable bytes without changing anything")
			return func(ctx context.Context) error {
				return withStore(*data, e, func(eng *engine.Engine) error {
					rep, err := eng.GC(ctx, *dry)
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "reclaimable: %d bytes in segments under the compaction threshold\n", rep.Reclaimable)
					if *dry {
						return nil
					}
					fmt.Fprintf(e.stdout, "released: %d blobs, %d chunks\ncompacted: %d segments, %d chunks (%d bytes) copied, %d bytes reclaimed\n",
						rep.ReleasedBlobs, rep.ReleasedChunks, rep.Compacted, rep.CopiedChunks, rep.CopiedBytes, rep.Reclaimed)
					for _, s := range rep.Skipped {
						fmt.Fprintf(e.stdout, "skipped: %s\n", s)
					}
					return nil
				})
			}
		},
	}
}

func scrubCommand() command {
	return command{
		name:  "scrub",
		short: "re-read and verify stored chunks; list damaged records",
		store: true,
		long: `
Scrub re-reads every stored chunk (or a sample of them) and verifies its
BLAKE3. It prints each record whose content is damaged, as namespace,
tenant and name, and exits non-zero if any is.`,
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			sample := fs.String("sample", "100%", "the share of chunks to verify, chosen by ID (e.g. 10%)")
			return func(ctx context.Context) error {
				frac, err := parsePercent(*sample)
				if err != nil {
					return fmt.Errorf("--sample: %w", err)
				}
				return withStore(*data, e, func(eng *engine.Engine) error {
					rep, err := eng.Scrub(ctx, frac)
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "scrub: %d chunks (%d bytes) verified, %d corrupt\n", rep.Chunks, rep.Bytes, len(rep.Corrupt))
					for _, id := range rep.Corrupt {
						fmt.Fprintf(e.stdout, "corrupt chunk: %s\n", id)
					}
					for _, k := range rep.Damaged {
						fmt.Fprintf(e.stdout, "damaged: namespace=%q tenant=%q name=%q\n", k.Namespace, k.Tenant, k.Name)
					}
					if len(rep.Corrupt) > 0 {
						return &exitError{code: 1, err: fmt.Errorf("%d corrupt chunks damage %d records", len(rep.Corrupt), len(rep.Damaged))}
					}
					return nil
				})
			}
		},
	}
}

// parsePercent reads "10%", "10" or "0.1" as a fraction in (0, 1].
func parsePercent(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, err
	}
	if pct || f > 1 {
		f /= 100
	}
	if f <= 0 || f > 1 {
		return 0, fmt.Errorf("%q is not between 0 and 100%%", s)
	}
	return f, nil
}

// maintenance runs the expiry sweeper, GC and scrub on their schedules
// until ctx ends. An interval of zero turns a task off.
type maintenance struct {
	expire, gc, scrub time.Duration
	scrubSample       float64
}

func (m maintenance) run(ctx context.Context, eng *engine.Engine, log *slog.Logger) {
	every := func(d time.Duration, name string, fn func() error) {
		if d <= 0 {
			return
		}
		go func() {
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if err := fn(); err != nil && ctx.Err() == nil {
					log.Error("background "+name+" failed", "err", err)
				}
			}
		}()
	}
	every(m.expire, "expiry", func() error {
		n, err := eng.Expire(ctx)
		if n > 0 {
			log.Info("expired records deleted", "count", n)
		}
		return err
	})
	every(m.gc, "gc", func() error {
		rep, err := eng.GC(ctx, false)
		if rep.Compacted > 0 || rep.ReleasedBlobs > 0 {
			log.Info("gc pass", "released_blobs", rep.ReleasedBlobs, "compacted", rep.Compacted, "copied_bytes", rep.CopiedBytes, "reclaimed_bytes", rep.Reclaimed)
		}
		return err
	})
	every(m.scrub, "scrub", func() error {
		rep, err := eng.Scrub(ctx, m.scrubSample)
		for _, k := range rep.Damaged {
			log.Error("scrub found a damaged record", "namespace", k.Namespace, "tenant", k.Tenant, "name", k.Name)
		}
		return err
	})
}
