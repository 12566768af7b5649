package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server"
)

func signingKeyCommand() command {
	return identity{
		name:  "signing-key",
		short: "list, rotate and revoke the keys that sign expiring URLs",
		long: `
Signing-key manages the keys that sign the APIs' expiring URLs (the
Storage API's POST …/files/{id}/url?expiresIn=, the cloud storage API's
POST /signed/protected/…, the media service's POST …/download-url). The
newest key signs; every key listed verifies until revoked. The first is
made on first use.

  cairn signing-key list
  cairn signing-key rotate      a new key signs from now on; URLs signed before keep working
  cairn signing-key revoke <id> every URL the key signed answers 403 from now on`,
		verbs: func(fs *flag.FlagSet, e *env) func(*engine.Engine) []verb {
			return func(eng *engine.Engine) []verb {
				keys := server.SigningKeys(eng)
				return []verb{
					{"list", "", func(context.Context, []string) error {
						list, err := keys.List()
						if err != nil {
							return err
						}
						var rows [][]string
						for i, k := range list {
							use := "verifies"
							if i == 0 {
								use = "signs"
							}
							rows = append(rows, []string{k.ID, k.Created.Format(time.RFC3339), use})
						}
						table(e, "ID\tCREATED\tUSE", rows)
						return nil
					}},
					{"rotate", "", func(ctx context.Context, _ []string) error {
						k, err := keys.Rotate(ctx)
						if err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "key %s signs from now on; revoke an older one to end the URLs it signed\n", k.ID)
						return nil
					}},
					{"revoke", "<id>", func(ctx context.Context, args []string) error {
						if err := keys.Revoke(ctx, args[0]); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "revoked key %s: the URLs it signed answer 403\n", args[0])
						return nil
					}},
				}
			}
		},
	}.command()
}
