package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/mediaservice"
)

func clientCommand() command {
	return command{
		name:    "client",
		args:    "add|list|delete [arguments]",
		short:   "manage media service OAuth2 clients (client-credentials grant)",
		minArgs: 1, maxArgs: 2,
		store: true,
		long: `
Client manages the media service's OAuth2 clients. Each is bound to one
tenant and its scopes; it exchanges its ID and secret at POST /oauth/token
(grant_type=client_credentials) for a bearer token valid for an hour.

  cairn client add <id> --tenant <tenant> [--scopes media.asset_manage,media.asset_read]
  cairn client list
  cairn client delete <id>`,
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			tenant := fs.String("tenant", "", "the tenant the client may act in (3 to 16 lowercase letters and digits)")
			scopes := fs.String("scopes", mediaservice.ScopeManage+","+mediaservice.ScopeRead, "comma-separated scopes")
			return func(ctx context.Context) error {
				args := e.args
				return withStore(*data, e, func(eng *engine.Engine) error {
					clients := mediaservice.NewClients(eng)
					if (args[0] == "list") != (len(args) == 1) {
						return fmt.Errorf("usage: cairn client add|delete <id>, or cairn client list")
					}
					switch args[0] {
					case "add":
						secret, err := clients.Add(ctx, args[1], *tenant, strings.Split(*scopes, ","))
						if err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "added client %s for tenant %s\nsecret: %s\n", args[1], *tenant, secret)
					case "list":
						list, err := clients.List()
						if err != nil {
							return err
						}
						tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
						fmt.Fprintln(tw, "ID\tTENANT\tSCOPES\tCREATED")
						for _, c := range list {
							fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ID, c.Tenant, strings.Join(c.Scopes, ","), c.Created.Format(time.RFC3339))
						}
						tw.Flush()
					case "delete":
						if err := clients.Delete(ctx, args[1]); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "deleted client %s\n", args[1])
					default:
						return fmt.Errorf("unknown client command %q: want add, list or delete", args[0])
					}
					return nil
				})
			}
		},
	}
}
