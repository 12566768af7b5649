package main

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
					if rep.Elsewhere {
						holder, _, _ := eng.LeaseHolder(engine.LeaseGC)
						fmt.Fprintf(e.stdout, "not run: another node (%s) is running a pass\n", holder)
						return nil
					}
					fmt.Fprintf(e.stdout, "variants: %d deleted, their original gone or changed\n", rep.Variants)
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
					if rep.LogRecords > 0 || len(rep.BadSegments) > 0 {
						fmt.Fprintf(e.stdout, "scrub: every segment read whole: %d log records verified, %d segments bad\n", rep.LogRecords, len(rep.BadSegments))
					}
					for _, b := range rep.BadSegments {
						fmt.Fprintf(e.stdout, "bad segment: %s\n", b)
					}
					if len(rep.Corrupt) > 0 || len(rep.BadSegments) > 0 {
						return &exitError{code: 1, err: fmt.Errorf("%d corrupt chunks damage %d records; %d segments do not read whole", len(rep.Corrupt), len(rep.Damaged), len(rep.BadSegments))}
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
	// With several nodes, each of these runs on one at a time: the one
	// holding its lease (engine/nodes.go); GC takes its own.
	every(m.expire, "expiry", func() error {
		_, err := eng.WithLease(ctx, engine.LeaseExpiry, func(ctx context.Context) error {
			n, err := eng.Expire(ctx)
			if n > 0 {
				log.Info("expired records deleted", "count", n)
			}
			return err
		})
		return err
	})
	every(m.gc, "gc", func() error {
		rep, err := eng.GC(ctx, false)
		if rep.Compacted > 0 || rep.ReleasedBlobs > 0 || rep.Variants > 0 {
			log.Info("gc pass", "variants_deleted", rep.Variants, "released_blobs", rep.ReleasedBlobs, "compacted", rep.Compacted, "copied_bytes", rep.CopiedBytes, "reclaimed_bytes", rep.Reclaimed)
		}
		return err
	})
	every(m.scrub, "scrub", func() error {
		_, err := eng.WithLease(ctx, engine.LeaseScrub, func(ctx context.Context) error {
			rep, err := eng.Scrub(ctx, m.scrubSample)
			for _, k := range rep.Damaged {
				log.Error("scrub found a damaged record", "namespace", k.Namespace, "tenant", k.Tenant, "name", k.Name)
			}
			for _, b := range rep.BadSegments {
				log.Error("scrub found a segment that does not read whole", "segment", b)
			}
			return err
		})
		return err
	})
}

func statsCommand() command {
	return command{
		name:  "stats",
		short: "what the store holds, what it takes on disk, and why",
		store: true,
		long: `
Stats prints what clients stored (logical bytes) against the distinct
contents, the chunks they are cut into (before and after compression) and
what the data folder takes on disk, which is more: segment files are
allocated ahead of what is written into them, the index keeps a log and
tables of its own, and deleted data stays in its segment until GC
compacts it. It also says what the next GC pass would give back.`,
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			return func(ctx context.Context) error {
				return withStore(*data, e, func(eng *engine.Engine) error {
					st, err := eng.Stats()
					if err != nil {
						return err
					}
					gc, err := eng.GC(ctx, true)
					if err != nil {
						return err
					}
					segs, index, other, err := allocated(*data)
					if err != nil {
						return err
					}
					w := e.stdout
					fmt.Fprintf(w, "records:             %d\n", st.Records)
					fmt.Fprintf(w, "logical bytes:       %s (what clients stored)\n", sizeOf(st.RecordBytes))
					fmt.Fprintf(w, "unique bytes:        %s (%d distinct contents)\n", sizeOf(st.BlobBytes), st.Blobs)
					fmt.Fprintf(w, "chunk bytes:         %s (%d distinct chunks, deduplicated)\n", sizeOf(st.ChunkBytes), st.Chunks)
					fmt.Fprintf(w, "stored bytes:        %s (the chunks compressed, with their headers)\n", sizeOf(st.ChunkDisk))
					fmt.Fprintf(w, "segment bytes:       %s in %d files: %s live, %s dead (deleted or never committed)\n",
						sizeOf(st.SegmentBytes), st.Segments, sizeOf(st.LiveBytes), sizeOf(st.DeadBytes))
					fmt.Fprintf(w, "next GC reclaims:    %s (segments under the compaction threshold)\n", sizeOf(gc.Reclaimable))
					fmt.Fprintf(w, "allocated on disk:   %s: segments %s (allocated ahead of writes), index %s, other %s\n",
						sizeOf(segs+index+other), sizeOf(segs), sizeOf(index), sizeOf(other))
					if st.TotalBytes > 0 {
						fmt.Fprintf(w, "file system:         %s free of %s\n", sizeOf(int64(st.FreeBytes)), sizeOf(int64(st.TotalBytes)))
					}
					return nil
				})
			}
		},
	}
}

// allocated returns the disk space the files under data take (blocks
// allocated, not their lengths): the segments, the index, the rest.
func allocated(data string) (segs, index, other int64, err error) {
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n := info.Size()
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			n = st.Blocks * 512
		}
		rel, _ := filepath.Rel(data, path)
		switch top, _, _ := strings.Cut(filepath.ToSlash(rel), "/"); top {
		case "segments":
			segs += n
		case "index":
			index += n
		default:
			other += n
		}
		return nil
	})
	return segs, index, other, err
}

// sizeOf prints n bytes for a person: "65.2 MB (65,212,416 bytes)".
func sizeOf(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	v, u := float64(n), 0
	for v >= 1000 && u < len(units)-1 {
		v /= 1000
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f %s (%d bytes)", v, units[u], n)
}
