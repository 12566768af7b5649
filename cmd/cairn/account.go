package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/mediaupload"
)

func accountCommand() command {
	return command{
		name:    "account",
		args:    "add|list|passwd|delete [arguments]",
		short:   "manage media upload accounts (HTTP Basic auth)",
		minArgs: 1, maxArgs: 2,
		store: true,
		long: `
Account manages the media upload API's accounts. Passwords are kept as
bcrypt hashes. It works on a stopped store and, through the data folder's
admin socket, on a running server.

  cairn account add <name> [--password-file F]     create; prints a random password if none is given
  cairn account passwd <name> [--password-file F]  set a new password (F: a file, or - for standard input)
  cairn account list
  cairn account delete <name> [--purge]       refused while it has files, unless --purge deletes them

An account made again under a deleted one's name never sees its files.`,
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			passwordFlag := secretFlags(fs, "password", "the password to set (at least 12 bytes; default a random one)")
			purge := fs.Bool("purge", false, "delete the account's files too")
			return func(ctx context.Context) error {
				args := e.args
				return withStore(*data, e, func(eng *engine.Engine) error {
					accounts := mediaupload.NewAccounts(eng)
					verb := args[0]
					if (verb == "list") != (len(args) == 1) {
						return fmt.Errorf("usage: cairn account %s", map[bool]string{true: "list", false: verb + " <name>"}[verb == "list"])
					}
					switch verb {
					case "add", "passwd":
						password, err := passwordFlag.get(e)
						if err != nil {
							return err
						}
						pw, err := accounts.Set(ctx, args[1], password, verb == "add")
						if err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "account %s: password set\n", args[1])
						if password == "" {
							fmt.Fprintf(e.stdout, "password: %s\n", pw)
						}
					case "list":
						list, err := accounts.List()
						if err != nil {
							return err
						}
						tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
						fmt.Fprintln(tw, "NAME\tCREATED")
						for _, a := range list {
							fmt.Fprintf(tw, "%s\t%s\n", a.Name, a.Created.Format(time.RFC3339))
						}
						tw.Flush()
					case "delete":
						if err := accounts.Delete(ctx, args[1], *purge); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "deleted account %s\n", args[1])
					default:
						return fmt.Errorf("unknown account command %q: want add, passwd, list or delete", verb)
					}
					return nil
				})
			}
		},
	}
}
