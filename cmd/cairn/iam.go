package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
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
	return command{
		name:    "iam",
		args:    "user|org|member <verb> [arguments]",
		short:   "manage Storage API users, organizations and roles",
		minArgs: 2, maxArgs: 5,
		store: true,
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
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			passwordFlag := secretFlags(fs, "password", "the password to set (12 to 72 bytes; default a random one, printed)")
			purge := fs.Bool("purge", false, "delete the user's or organization's files too")
			return func(ctx context.Context) error {
				password, err := passwordFlag.get(e)
				if err != nil {
					return err
				}
				return withStore(*data, e, func(eng *engine.Engine) error {
					return runIAM(ctx, e, storageapi.NewIAM(eng), e.args, password, *purge)
				})
			}
		},
	}
}

func runIAM(ctx context.Context, e *env, iam *storageapi.IAM, args []string, password string, purge bool) error {
	usage := fmt.Errorf("%s", iamUsage)
	want := func(n int) error {
		if len(args) != n {
			return usage
		}
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
	defer tw.Flush()
	switch args[0] + " " + args[1] {
	case "user add", "user passwd":
		if err := want(3); err != nil {
			return err
		}
		var pw string
		var err error
		if args[1] == "add" {
			_, pw, err = iam.AddUser(ctx, args[2], password)
		} else {
			pw, err = iam.SetPassword(ctx, args[2], password)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "user %s: password set\n", args[2])
		if password == "" {
			fmt.Fprintf(e.stdout, "password: %s\n", pw)
		}
	case "user list":
		if err := want(2); err != nil {
			return err
		}
		users, err := iam.Users()
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "EMAIL\tID\tORGANIZATIONS\tCREATED")
		for _, u := range users {
			ms, err := iam.Memberships(u.ID)
			if err != nil {
				return err
			}
			var orgs []string
			for _, m := range ms {
				orgs = append(orgs, m.Org+":"+string(m.Role))
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Email, u.ID, strings.Join(orgs, ","), u.Created.Format(time.RFC3339))
		}
	case "user delete":
		if err := want(3); err != nil {
			return err
		}
		if err := iam.DeleteUser(ctx, args[2], purge); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "deleted user %s\n", args[2])
	case "org add":
		if err := want(3); err != nil {
			return err
		}
		o, err := iam.AddOrg(ctx, args[2])
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "added organization %s (%s)\n", o.Name, o.ID)
	case "org list":
		if err := want(2); err != nil {
			return err
		}
		orgs, err := iam.Orgs()
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "NAME\tID\tCREATED")
		for _, o := range orgs {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", o.Name, o.ID, o.Created.Format(time.RFC3339))
		}
	case "org delete":
		if err := want(3); err != nil {
			return err
		}
		if err := iam.DeleteOrg(ctx, args[2], purge); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "deleted organization %s\n", args[2])
	case "member set":
		if err := want(5); err != nil {
			return err
		}
		role, err := storageapi.ParseRole(args[4])
		if err != nil {
			return err
		}
		if err := iam.SetMember(ctx, args[2], args[3], role); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s is %s of %s\n", args[3], role, args[2])
	case "member remove":
		if err := want(4); err != nil {
			return err
		}
		if err := iam.RemoveMember(ctx, args[2], args[3]); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s is no longer a member of %s\n", args[3], args[2])
	case "member list":
		if err := want(3); err != nil {
			return err
		}
		ms, err := iam.Members(args[2])
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "EMAIL\tROLE")
		for _, m := range ms {
			fmt.Fprintf(tw, "%s\t%s\n", m.Email, m.Role)
		}
	default:
		return usage
	}
	return nil
}
