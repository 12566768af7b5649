package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/oceanmedia"
)

func apiUserCommand() command {
	return command{
		name:    "apiuser",
		args:    "add|list|delete [arguments]",
		short:   "manage /v1/media API users (X-API-Token authentication)",
		minArgs: 1, maxArgs: 2,
		store: true,
		long: `
Apiuser manages the /v1/media API's users. A user exchanges its name and
password (X-API-Authenticate) at POST /v1/authentications for a token
that lasts 30 minutes. read users may only read media; write users may
also create, update and delete them. Passwords are kept as bcrypt hashes.

  cairn apiuser add <name> [--password-file F] [--right read|write]
  cairn apiuser list
  cairn apiuser delete <name>`,
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			passwordFlag := secretFlags(fs, "password", "the password (at least 12 bytes; default a random one, printed)")
			right := fs.String("right", "write", "read or write")
			return func(ctx context.Context) error {
				args := e.args
				return withStore(*data, e, func(eng *engine.Engine) error {
					users := oceanmedia.NewUsers(eng)
					if (args[0] == "list") != (len(args) == 1) {
						return fmt.Errorf("usage: cairn apiuser add|delete <name>, or cairn apiuser list")
					}
					switch args[0] {
					case "add":
						password, err := passwordFlag.get(e)
						if err != nil {
							return err
						}
						usr, pw, err := users.Add(ctx, args[1], password, oceanmedia.Right(*right))
						if err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "added API user %s (id %s, %s)\n", usr.Name, usr.ID, usr.Right)
						if password == "" {
							fmt.Fprintf(e.stdout, "password: %s\n", pw)
						}
					case "list":
						list, err := users.List()
						if err != nil {
							return err
						}
						tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
						fmt.Fprintln(tw, "NAME\tID\tRIGHT\tCREATED")
						for _, u := range list {
							fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, u.ID, u.Right, u.Created.Format(time.RFC3339))
						}
						tw.Flush()
					case "delete":
						if err := users.Delete(ctx, args[1]); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "deleted API user %s\n", args[1])
					default:
						return fmt.Errorf("unknown apiuser command %q: want add, list or delete", args[0])
					}
					return nil
				})
			}
		},
	}
}
