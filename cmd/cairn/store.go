package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"

	"github.com/cairnstore/cairn/engine"
)

// slogErrorLog routes net/http's internal log lines to the structured log.
func slogErrorLog(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelWarn)
}

func initCommand() command {
	return command{
		name:  "init",
		short: "make an empty store (cairn serve makes one too)",
		long: `
Init makes an empty store in --data (the folder 0700, the index, the
segments folder and the key file), so that users, accounts and clients
can be added before the server first starts. The other commands that work
on a store never make one: on a folder without a store they fail. A store
that exists is left as it is.`,
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			store := storeFlag(fs)
			return func(ctx context.Context) error {
				log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
				if *store == "" {
					// A store that exists stays where it is.
					had, err := engine.StoreObjects(*data)
					if err != nil {
						return err
					}
					*store = had
				}
				objs, err := openObjects(ctx, *store, e)
				if err != nil {
					return err
				}
				eng, err := engine.Open(*data, engine.Options{Logger: log, KeyFile: e.keyFile, Objects: objs, Index: e.index})
				if err != nil {
					return err
				}
				if err := eng.Close(); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "init: a store in %s\n", *data)
				return nil
			}
		},
	}
}

func checkCommand() command {
	return command{
		name:  "check",
		short: "verify the index against the segment files",
		long: `
Check cross-checks the index: every record's blob, every blob's chunks,
every chunk's location in a segment, and all reference counts. It exits
non-zero and lists the problems if it finds any. It reads the index, not
every byte; cairn scrub re-reads and verifies the chunks themselves.`,
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			return func(ctx context.Context) error {
				return withStore(*data, e, func(eng *engine.Engine) error {
					if err := eng.Check(ctx); err != nil {
						return &exitError{code: 1, err: err}
					}
					fmt.Fprintln(e.stdout, "check: ok")
					return nil
				})
			}
		},
	}
}

func reindexCommand() command {
	return command{
		name:  "reindex",
		short: "rebuild chunk locations from the segment files",
		long: `
Reindex scans every segment file and rebuilds the index's chunk locations
from the records in them. Records and blobs whose chunks are no longer in
any segment are listed as damaged, and the command exits non-zero.`,
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			return func(ctx context.Context) error {
				return withStore(*data, e, func(eng *engine.Engine) error {
					rep, err := eng.Reindex(ctx)
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "reindex: %d segments, %d records, %d chunks, %d orphans, %d duplicates\n",
						rep.Segments, rep.Records, rep.Chunks, rep.Orphans, rep.Duplicates)
					for _, t := range rep.Torn {
						fmt.Fprintf(e.stdout, "torn: %s\n", t)
					}
					for _, k := range rep.Damaged {
						fmt.Fprintf(e.stdout, "damaged: namespace=%q tenant=%q name=%q\n", k.Namespace, k.Tenant, k.Name)
					}
					if len(rep.Missing) > 0 {
						return &exitError{code: 1, err: fmt.Errorf("%d chunks missing, %d records damaged", len(rep.Missing), len(rep.Damaged))}
					}
					return nil
				})
			}
		},
	}
}

// withStore opens the store in data for fn and closes it after; inside
// the server, fn gets the server's engine.
func withStore(data string, e *env, fn func(*engine.Engine) error) error {
	if e.engine != nil {
		return fn(e.engine)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// A store in object mode names its bucket in its folder.
	store, err := engine.StoreObjects(data)
	if err != nil {
		return err
	}
	objs, err := openObjects(context.Background(), store, e)
	if err != nil {
		return err
	}
	eng, err := engine.Open(data, engine.Options{Logger: log, KeyFile: e.keyFile, MustExist: true, Objects: objs, CacheSize: e.cacheSize, Index: e.index})
	if errors.Is(err, engine.ErrNoStore) {
		return fmt.Errorf("%w (cairn init --data %s makes one, as cairn serve does)", err, data)
	}
	if err != nil {
		return err
	}
	ferr := fn(eng)
	if err := eng.Close(); err != nil && ferr == nil {
		return err
	}
	return ferr
}
