package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/server"
)

// commaList splits a comma-separated flag value, dropping blanks.
func commaList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func corsCommand() command {
	return identity{
		name:  "cors",
		short: "let browser apps on other origins call one bucket, tenant or organization",
		long: `
Cors keeps the CORS rules of single resources: a cloud storage bucket, a
media service tenant, a Storage API organization. A browser app on one
of a rule's origins may call the API on that resource, in addition to
the origins --cors-origins allows everywhere.

  cairn cors set bucket/<name>|tenant/<name>|org/<name> <origins> [--methods GET,HEAD] [--headers Authorization,Range]
  cairn cors list
  cairn cors delete bucket/<name>|tenant/<name>|org/<name>

Origins are comma-separated scheme://host[:port], or *. Without --methods
a preflight may ask for any of the route's methods; without --headers,
for any request headers.`,
		verbs: func(fs *flag.FlagSet, e *env) func(*engine.Engine) []verb {
			methods := fs.String("methods", "", "the methods allowed, comma-separated (default: the route's)")
			headers := fs.String("headers", "", "the request headers allowed, comma-separated (default: any)")
			return func(eng *engine.Engine) []verb {
				rules := server.NewCORSRules(eng)
				resource := func(s string) (string, string, error) {
					kind, name, ok := strings.Cut(s, "/")
					if !ok {
						return "", "", fmt.Errorf("%w: %q: want bucket/<name>, tenant/<name> or org/<name>", server.ErrCORSRule, s)
					}
					return kind, name, nil
				}
				return []verb{
					{"set", "<resource> <origins>", func(ctx context.Context, args []string) error {
						kind, name, err := resource(args[0])
						if err != nil {
							return err
						}
						rule := server.CORSRule{Origins: commaList(args[1]), Methods: commaList(strings.ToUpper(*methods)), Headers: commaList(*headers)}
						for i, o := range rule.Origins {
							rule.Origins[i] = strings.TrimSuffix(o, "/")
						}
						if err := rules.Set(ctx, kind, name, rule); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "%s/%s: browser apps on %s may call it\n", kind, name, strings.Join(rule.Origins, ", "))
						return nil
					}},
					{"list", "", func(context.Context, []string) error {
						list, err := rules.List()
						if err != nil {
							return err
						}
						var rows [][]string
						for _, r := range list {
							rows = append(rows, []string{r.Kind + "/" + r.Name, strings.Join(r.Origins, ","), strings.Join(r.Methods, ","), strings.Join(r.Headers, ",")})
						}
						table(e, "RESOURCE\tORIGINS\tMETHODS\tHEADERS", rows)
						return nil
					}},
					{"delete", "<resource>", func(ctx context.Context, args []string) error {
						kind, name, err := resource(args[0])
						if err != nil {
							return err
						}
						if err := rules.Delete(ctx, kind, name); err != nil {
							return err
						}
						fmt.Fprintf(e.stdout, "%s/%s: no CORS rule of its own\n", kind, name)
						return nil
					}},
				}
			}
		},
	}.command()
}
