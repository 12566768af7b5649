package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/oceanmedia"
)

func apiUserCommand() command {
	return identity{
		name:  "apiuser",
		short: "manage /v1/media API users (X-API-Token authentication)",
		long: `
Apiuser manages the /v1/media API's users. A user exchanges its name and
password (X-API-Authenticate) at POST /v1/authentications for a token
that lasts 30 minutes. read users may only read media; write users may
also create, update and delete them. Passwords are kept as bcrypt hashes.

  cairn apiuser add <name> [--password-file F] [--right read|write]
  cairn apiuser list
  cairn apiuser delete <name>`,
		verbs: func(fs *flag.FlagSet, e *env) func(*engine.Engine) []verb {
			passwordFlag := secretFlags(fs, "password", "the password (at least 12 bytes; default a random one, printed)")
			right := fs.String("right", "write", "read or write")
			return func(eng *engine.Engine) []verb {
				users := oceanmedia.NewUsers(eng)
				return []verb{
					{"add", "<name>", func(ctx context.Context, args []string) error {
						password, err := passwordFlag.get(e)
						if err != nil {
							return err
						}
						usr, pw, err := users.Add(ctx, args[0], password, oceanmedia.Right(*right))
						if err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "added API user %s (id %s, %s)\n", usr.Name, usr.ID, usr.Right)
						if password == "" {
							fmt.Fprintf(e.stdout, "password: %s\n", pw)
						}
						return nil
					}},
					{"list", "", func(context.Context, []string) error {
						list, err := users.List()
						if err != nil {
							return err
						}
						var rows [][]string
						for _, u := range list {
							rows = append(rows, []string{u.Name, u.ID, string(u.Right), u.Created.Format(time.RFC3339)})
						}
						table(e, "NAME\tID\tRIGHT\tCREATED", rows)
						return nil
					}},
					{"delete", "<name>", func(ctx context.Context, args []string) error {
						if err := users.Delete(ctx, args[0]); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "deleted API user %s\n", args[0])
						return nil
					}},
				}
			}
		},
	}.command()
}
