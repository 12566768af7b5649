package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/cloudstorage"
)

func userCommand() command {
	return identity{
		name:  "user",
		short: "manage cloud storage users and their bucket access",
		long: `
User manages the cloud storage API's users, kept in the store. Each user
has an ID and a secret that signs its JWTs (HS256), and READ or WRITE
access per bucket (WRITE implies READ). It works on a stopped store and,
through the data folder's admin socket, on a running server.

  cairn user add <id> [--secret-file F]     create a user; prints its secret
  cairn user list                      users and their buckets
  cairn user rotate <id> [--secret-file F]  new secret; old tokens stop working (F: a file, or - for standard input)
  cairn user grant <id> <bucket> READ|WRITE
  cairn user revoke <id> <bucket>
  cairn user delete <id>
  cairn user token <id> [--ttl 1h]     print a signed token, for curl`,
		verbs: func(fs *flag.FlagSet, e *env) func(*engine.Engine) []verb {
			secretFlag := secretFlags(fs, "secret", "the secret to set (at least 32 bytes; default a random one)")
			ttl := fs.Duration("ttl", time.Hour, "how long a token from `user token` is valid")
			return func(eng *engine.Engine) []verb {
				users := cloudstorage.NewUsers(eng)
				buckets := func(u cloudstorage.User, err error) error {
					if err != nil {
						return err
					}
					fmt.Fprintf(e.stdout, "%s: %s\n", u.ID, strings.Join(u.BucketList(), " "))
					return nil
				}
				return []verb{
					{"add", "<id>", func(ctx context.Context, args []string) error {
						secret, err := secretFlag.get(e)
						if err != nil {
							return err
						}
						u, err := users.Add(ctx, args[0], secret)
						if err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "added user %s\nsecret: %s\n", u.ID, u.Secret)
						fmt.Fprintf(e.stdout, "grant it a bucket: cairn user grant %s <bucket> WRITE\n", u.ID)
						return nil
					}},
					{"list", "", func(context.Context, []string) error {
						list, err := users.List()
						if err != nil {
							return err
						}
						var rows [][]string
						for _, u := range list {
							rows = append(rows, []string{u.ID, u.Created.Format(time.RFC3339), strings.Join(u.BucketList(), " ")})
						}
						table(e, "ID\tCREATED\tBUCKETS", rows)
						return nil
					}},
					{"rotate", "<id>", func(ctx context.Context, args []string) error {
						secret, err := secretFlag.get(e)
						if err != nil {
							return err
						}
						u, err := users.Rotate(ctx, args[0], secret)
						if err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "rotated the secret of %s\nsecret: %s\n", u.ID, u.Secret)
						return nil
					}},
					{"grant", "<id> <bucket> READ|WRITE", func(ctx context.Context, args []string) error {
						p, err := cloudstorage.ParsePerm(args[2])
						if err != nil {
							return err
						}
						return buckets(users.Grant(ctx, args[0], args[1], p))
					}},
					{"revoke", "<id> <bucket>", func(ctx context.Context, args []string) error {
						return buckets(users.Revoke(ctx, args[0], args[1]))
					}},
					{"delete", "<id>", func(ctx context.Context, args []string) error {
						if err := users.Delete(ctx, args[0]); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "deleted user %s\n", args[0])
						return nil
					}},
					{"token", "<id>", func(_ context.Context, args []string) error {
						tok, err := users.Token(args[0], time.Now(), *ttl)
						if err != nil {
							return err
						}
						fmt.Fprintln(e.stdout, tok)
						return nil
					}},
				}
			}
		},
	}.command()
}
