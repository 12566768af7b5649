package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/storageapi"
)

const iamUsage = `usage:
  cairn iam user add <email> [--password-file F]
  cairn iam user passwd <email> [--password-file F]
  cairn iam user list
  cairn iam user delete <email> [--purge]
  cairn iam org add <name>
  cairn iam org list
  cairn iam org delete <name> [--purge]
  cairn iam member set <org> <email> admin|manager|member
  cairn iam member remove <org> <email>
  cairn iam member list <org>`

func iamCommand() command {
	return identity{
		name:  "iam",
		short: "manage Storage API users, organizations and roles",
		long: `
Iam manages the Storage API's identities: users (an email and a password,
kept as a bcrypt hash) and organizations, whose members are admin or
manager (upload, delete and share the organization's files) or member
(read and list them). Users log in at POST /storage/auth/login for a user
token and a token per organization. It works on a stopped store and,
through the data folder's admin socket, on a running server; roles and
deletions take effect on the next request.

` + strings.TrimPrefix(iamUsage, "usage:\n") + `

A user or organization that still has files is deleted only with --purge,
which deletes the files too.`,
		verbs: func(fs *flag.FlagSet, e *env) func(*engine.Engine) []verb {
			passwordFlag := secretFlags(fs, "password", "the password to set (12 to 72 bytes; default a random one, printed)")
			purge := fs.Bool("purge", false, "delete the user's or organization's files too")
			return func(eng *engine.Engine) []verb {
				iam := storageapi.NewIAM(eng)
				setPassword := func(add bool) func(context.Context, []string) error {
					return func(ctx context.Context, args []string) error {
						password, err := passwordFlag.get(e)
						if err != nil {
							return err
						}
						var pw string
						if add {
							_, pw, err = iam.AddUser(ctx, args[0], password)
						} else {
							pw, err = iam.SetPassword(ctx, args[0], password)
						}
						if err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "user %s: password set\n", args[0])
						if password == "" {
							fmt.Fprintf(e.stdout, "password: %s\n", pw)
						}
						return nil
					}
				}
				return []verb{
					{"user add", "<email>", setPassword(true)},
					{"user passwd", "<email>", setPassword(false)},
					{"user list", "", func(context.Context, []string) error {
						users, err := iam.Users()
						if err != nil {
							return err
						}
						var rows [][]string
						for _, u := range users {
							ms, err := iam.Memberships(u.ID)
							if err != nil {
								return err
							}
							var orgs []string
							for _, m := range ms {
								orgs = append(orgs, m.Org+":"+string(m.Role))
							}
							rows = append(rows, []string{u.Email, u.ID, strings.Join(orgs, ","), u.Created.Format(time.RFC3339)})
						}
						table(e, "EMAIL\tID\tORGANIZATIONS\tCREATED", rows)
						return nil
					}},
					{"user delete", "<email>", func(ctx context.Context, args []string) error {
						if err := iam.DeleteUser(ctx, args[0], *purge); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "deleted user %s\n", args[0])
						return nil
					}},
					{"org add", "<name>", func(ctx context.Context, args []string) error {
						o, err := iam.AddOrg(ctx, args[0])
						if err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "added organization %s (%s)\n", o.Name, o.ID)
						return nil
					}},
					{"org list", "", func(context.Context, []string) error {
						orgs, err := iam.Orgs()
						if err != nil {
							return err
						}
						var rows [][]string
						for _, o := range orgs {
							rows = append(rows, []string{o.Name, o.ID, o.Created.Format(time.RFC3339)})
						}
						table(e, "NAME\tID\tCREATED", rows)
						return nil
					}},
					{"org delete", "<name>", func(ctx context.Context, args []string) error {
						if err := iam.DeleteOrg(ctx, args[0], *purge); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "deleted organization %s\n", args[0])
						return nil
					}},
					{"member set", "<org> <email> admin|manager|member", func(ctx context.Context, args []string) error {
						role, err := storageapi.ParseRole(args[2])
						if err != nil {
							return err
						}
						if err := iam.SetMember(ctx, args[0], args[1], role); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "%s is %s of %s\n", args[1], role, args[0])
						return nil
					}},
					{"member remove", "<org> <email>", func(ctx context.Context, args []string) error {
						if err := iam.RemoveMember(ctx, args[0], args[1]); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "%s is no longer a member of %s\n", args[1], args[0])
						return nil
					}},
					{"member list", "<org>", func(_ context.Context, args []string) error {
						ms, err := iam.Members(args[0])
						if err != nil {
							return err
						}
						var rows [][]string
						for _, m := range ms {
							rows = append(rows, []string{m.Email, string(m.Role)})
						}
						table(e, "EMAIL\tROLE", rows)
						return nil
					}},
				}
			}
		},
	}.command()
}
