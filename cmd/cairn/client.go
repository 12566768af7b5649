package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server/mediaservice"
)

func clientCommand() command {
	return identity{
		name:  "client",
		short: "manage media service OAuth2 clients (client-credentials grant)",
		long: `
Client manages the media service's OAuth2 clients. Each is bound to one
tenant and its scopes; it exchanges its ID and secret at POST /oauth/token
(grant_type=client_credentials) for a bearer token valid for an hour.

  cairn client add <id> --tenant <tenant> [--scopes media.asset_manage,media.asset_read]
  cairn client list
  cairn client rotate <id>      new secret; tokens issued before stop working
  cairn client delete <id>`,
		verbs: func(fs *flag.FlagSet, e *env) func(*engine.Engine) []verb {
			tenant := fs.String("tenant", "", "the tenant the client may act in (3 to 16 lowercase letters and digits)")
			scopes := fs.String("scopes", mediaservice.ScopeManage+","+mediaservice.ScopeRead, "comma-separated scopes")
			return func(eng *engine.Engine) []verb {
				clients := mediaservice.NewClients(eng)
				return []verb{
					{"add", "<id>", func(ctx context.Context, args []string) error {
						secret, err := clients.Add(ctx, args[0], *tenant, strings.Split(*scopes, ","))
						if err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "added client %s for tenant %s\nsecret: %s\n", args[0], *tenant, secret)
						return nil
					}},
					{"list", "", func(context.Context, []string) error {
						list, err := clients.List()
						if err != nil {
							return err
						}
						var rows [][]string
						for _, c := range list {
							rows = append(rows, []string{c.ID, c.Tenant, strings.Join(c.Scopes, ","), c.Created.Format(time.RFC3339)})
						}
						table(e, "ID\tTENANT\tSCOPES\tCREATED", rows)
						return nil
					}},
					{"rotate", "<id>", func(ctx context.Context, args []string) error {
						secret, err := clients.Rotate(ctx, args[0])
						if err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "rotated the secret of client %s\nsecret: %s\n", args[0], secret)
						return nil
					}},
					{"delete", "<id>", func(ctx context.Context, args []string) error {
						if err := clients.Delete(ctx, args[0]); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "deleted client %s\n", args[0])
						return nil
					}},
				}
			}
		},
	}.command()
}
