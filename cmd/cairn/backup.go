package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/cairnstore/cairn/engine"
)

func backupCommand() command {
	return command{
		name:  "backup",
		args:  "<folder>",
		short: "write a consistent copy of the store to a new folder, while it serves",
		store: true, minArgs: 1, maxArgs: 1,
		long: `
Backup DIR writes a consistent copy of the store in --data to DIR, a new
folder (give its absolute path: a running server writes it): a checkpoint
of the index, then the segment files it points into, the sealed ones
hard-linked when DIR is on the same file system (they never change), the
active one copied up to what was synced. Every upload acknowledged before
the backup began is in it. It works on a stopped store and, through the
admin socket, on a running one; GC waits meanwhile. The key file is
copied when it is in the data folder; one kept elsewhere (--key-file) is
to be backed up apart. cairn restore DIR --data NEW makes a store of it.`,
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			return func(ctx context.Context) error {
				dir := e.args[0]
				if !filepath.IsAbs(dir) {
					return fmt.Errorf("backup: %q: %w (a running server writes the backup, from its own working folder)", dir, errRelativeBackup)
				}
				return withStore(*data, e, func(eng *engine.Engine) error {
					rep, err := eng.Backup(ctx, dir)
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "backup: %s: %d segments (%d hard-linked), %d bytes copied\n", dir, rep.Segments, rep.Linked, rep.Bytes)
					if !rep.KeyFile {
						fmt.Fprintln(e.stdout, "backup: the key file is outside the data folder: back it up apart, or the copy's tokens and signing secrets will not open")
					}
					return nil
				})
			}
		},
	}
}

// errRelativeBackup: cairn backup was given a relative folder.
var errRelativeBackup = errors.New("not an absolute path")

func restoreCommand() command {
	return command{
		name:    "restore",
		args:    "<backup folder | s3://bucket/prefix>",
		short:   "make a store in --data from a backup folder",
		minArgs: 1, maxArgs: 1,
		long: `
Restore BACKUP copies a folder cairn backup wrote into --data, which must
not exist yet, and checks that the copy opens as a store (recovering its
active segment as after a crash). The backup is left as it is. Then run
cairn check and cairn serve on the new folder.

Restore s3://bucket/prefix rebuilds a store whose segments are in that
bucket (cairn serve --store) into --data, a new folder, from the bucket
alone: when its data folder is lost. Every acknowledged change is in the
bucket's log; the rebuilt store passes check. Give the store's key file,
kept apart, with --key-file, or its token keys and signing secrets will not
open. Then cairn serve --data with the same --store.`,
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			return func(ctx context.Context) error {
				log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
				if strings.HasPrefix(e.args[0], "s3://") {
					objs, err := openObjects(ctx, e.args[0], e)
					if err != nil {
						return err
					}
					rep, err := engine.RestoreObjects(ctx, objs, *data, engine.Options{Logger: log, KeyFile: e.keyFile})
					if err != nil {
						return err
					}
					from := "no checkpoint"
					if rep.Checkpoint != 0 {
						from = fmt.Sprintf("checkpoint %016x", rep.Checkpoint)
					}
					fmt.Fprintf(e.stdout, "restore: %d segment objects (%d bytes), %s, %d transactions replayed after it\n", rep.Segments, rep.Bytes, from, rep.Transactions)
					if e.keyFile == "" {
						fmt.Fprintln(e.stdout, "restore: no --key-file: a new key was made, and the secrets sealed with the old one will not open")
					}
				} else if err := engine.Restore(e.args[0], *data, engine.Options{Logger: log, KeyFile: e.keyFile}); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "restore: %s is a store again, from %s\n", *data, e.args[0])
				return nil
			}
		},
	}
}
