package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/cairnstore/cairn/engine"
)

func nodesCommand() command {
	return command{
		name:  "nodes",
		short: "list the nodes serving a shared store, and who holds GC, expiry and scrub",
		store: true,
		long: `
Nodes lists the nodes of a store whose index is in PostgreSQL and whose
segments are in a bucket (several nodes: see the README): each node
whose heartbeat is live, since when its oldest upload or download in
flight runs (GC takes nothing it might rely on), and which node holds
each of the leases under which GC, the expiry sweeper and the scheduled
scrub run one node at a time. A node that stopped drops off within 30
seconds. The command itself, run on a stopped folder, is a node for as
long as it runs, and says so.`,
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			return func(ctx context.Context) error {
				return withStore(*data, e, func(eng *engine.Engine) error {
					if !eng.Shared() {
						return fmt.Errorf("%w: %s is not a store several nodes share (its index in PostgreSQL, its segments in a bucket)", engine.ErrInvalid, *data)
					}
					nodes, err := eng.Nodes()
					if err != nil {
						return err
					}
					leases, err := eng.Leases()
					if err != nil {
						return err
					}
					now := eng.Now()
					for _, n := range nodes {
						oldest := "idle"
						if age := now.Sub(time.Unix(0, n.Horizon)); age > 5*time.Second {
							oldest = fmt.Sprintf("oldest operation in flight for %s", age.Round(time.Second))
						}
						self := ""
						if n.Name == eng.Node() {
							self = " (this command's, or the server's it asked)"
						}
						fmt.Fprintf(e.stdout, "node %s: %s%s\n", n.Name, oldest, self)
					}
					for _, l := range leases {
						fmt.Fprintf(e.stdout, "lease %s: held by %s\n", l.Name, l.Holder)
					}
					if len(leases) == 0 {
						fmt.Fprintln(e.stdout, "no lease held: no GC, expiry or scrub pass is running")
					}
					return nil
				})
			}
		},
	}
}
