package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/mediaupload"
)

func accountCommand() command {
	return identity{
		name:  "account",
		short: "manage media upload accounts (HTTP Basic auth)",
		long: `
Account manages the media upload API's accounts. Passwords are kept as
bcrypt hashes. It works on a stopped store and, through the data folder's
admin socket, on a running server.

  cairn account add <name> [--password-file F]     create; prints a random password if none is given
  cairn account passwd <name> [--password-file F]  set a new password (F: a file, or - for standard input)
  cairn account list
  cairn account delete <name> [--purge]       refused while it has files, unless --purge deletes them

An account made again under a deleted one's name never sees its files.`,
		verbs: func(fs *flag.FlagSet, e *env) func(*engine.Engine) []verb {
			passwordFlag := secretFlags(fs, "password", "the password to set (at least 12 bytes; default a random one)")
			purge := fs.Bool("purge", false, "delete the account's files too")
			return func(eng *engine.Engine) []verb {
				accounts := mediaupload.NewAccounts(eng)
				set := func(create bool) func(context.Context, []string) error {
					return func(ctx context.Context, args []string) error {
						password, err := passwordFlag.get(e)
						if err != nil {
							return err
						}
						pw, err := accounts.Set(ctx, args[0], password, create)
						if err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "account %s: password set\n", args[0])
						if password == "" {
							fmt.Fprintf(e.stdout, "password: %s\n", pw)
						}
						return nil
					}
				}
				return []verb{
					{"add", "<name>", set(true)},
					{"passwd", "<name>", set(false)},
					{"list", "", func(context.Context, []string) error {
						list, err := accounts.List()
						if err != nil {
							return err
						}
						var rows [][]string
						for _, a := range list {
							rows = append(rows, []string{a.Name, a.Created.Format(time.RFC3339)})
						}
						table(e, "NAME\tCREATED", rows)
						return nil
					}},
					{"delete", "<name>", func(ctx context.Context, args []string) error {
						if err := accounts.Delete(ctx, args[0], *purge); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "deleted account %s\n", args[0])
						return nil
					}},
				}
			}
		},
	}.command()
}
