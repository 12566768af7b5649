package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/cloudstorage"
)

func userCommand() command {
	return command{
		name:    "user",
		args:    "add|list|rotate|grant|revoke|delete|token [arguments]",
		short:   "manage cloud storage users and their bucket access",
		minArgs: 1, maxArgs: 4,
		store: true,
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
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			secretFlag := secretFlags(fs, "secret", "the secret to set (at least 32 bytes; default a random one)")
			ttl := fs.Duration("ttl", time.Hour, "how long a token from `user token` is valid")
			return func(ctx context.Context) error {
				args := e.args
				secret, err := secretFlag.get(e)
				if err != nil {
					return err
				}
				return withStore(*data, e, func(eng *engine.Engine) error {
					return user(ctx, e, cloudstorage.NewUsers(eng), args, secret, *ttl)
				})
			}
		},
	}
}

func user(ctx context.Context, e *env, users *cloudstorage.Users, args []string, secret string, ttl time.Duration) error {
	verb, rest := args[0], args[1:]
	want := func(n int, usage string) error {
		if len(rest) != n {
			return fmt.Errorf("usage: cairn user %s %s", verb, usage)
		}
		return nil
	}
	switch verb {
	case "add":
		if err := want(1, "<id> [--secret-file F]"); err != nil {
			return err
		}
		u, err := users.Add(ctx, rest[0], secret)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "added user %s\nsecret: %s\n", u.ID, u.Secret)
		fmt.Fprintf(e.stdout, "grant it a bucket: cairn user grant %s <bucket> WRITE\n", u.ID)
	case "list":
		if err := want(0, ""); err != nil {
			return err
		}
		list, err := users.List()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCREATED\tBUCKETS")
		for _, u := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", u.ID, u.Created.Format(time.RFC3339), strings.Join(u.BucketList(), " "))
		}
		tw.Flush()
	case "rotate":
		if err := want(1, "<id> [--secret-file F]"); err != nil {
			return err
		}
		u, err := users.Rotate(ctx, rest[0], secret)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "rotated the secret of %s\nsecret: %s\n", u.ID, u.Secret)
	case "grant":
		if err := want(3, "<id> <bucket> READ|WRITE"); err != nil {
			return err
		}
		p, err := cloudstorage.ParsePerm(rest[2])
		if err != nil {
			return err
		}
		u, err := users.Grant(ctx, rest[0], rest[1], p)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", u.ID, strings.Join(u.BucketList(), " "))
	case "revoke":
		if err := want(2, "<id> <bucket>"); err != nil {
			return err
		}
		u, err := users.Revoke(ctx, rest[0], rest[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", u.ID, strings.Join(u.BucketList(), " "))
	case "delete":
		if err := want(1, "<id>"); err != nil {
			return err
		}
		if err := users.Delete(ctx, rest[0]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "deleted user %s\n", rest[0])
	case "token":
		if err := want(1, "<id> [--ttl 1h]"); err != nil {
			return err
		}
		tok, err := users.Token(rest[0], time.Now(), ttl)
		if err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, tok)
	default:
		return fmt.Errorf("unknown user command %q: want add, list, rotate, grant, revoke, delete or token", verb)
	}
	return nil
}
