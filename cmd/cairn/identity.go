package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/cairnstore/cairn/engine"
)

// identity is a command that manages one kind of identity kept in the
// store (API users, clients, accounts, users, IAM): a table of verbs.
type identity struct {
	name, short, long string
	// verbs declares the command's own flags, and returns its verbs over
	// an opened store; they print what they did to the env's stdout.
	verbs func(fs *flag.FlagSet, e *env) func(eng *engine.Engine) []verb
}

// verb is one row of an identity command: its name ("add", or "user add"
// for a command of several kinds), the usage of its arguments, and what
// it does with exactly that many.
type verb struct {
	name, args string
	run        func(ctx context.Context, args []string) error
}

func (v verb) arity() int { return len(strings.Fields(v.args)) - strings.Count(v.args, "[") }

func (id identity) command() command {
	return command{
		name: id.name, short: id.short, long: id.long,
		args:    "<verb> [arguments]",
		minArgs: 1, maxArgs: 5,
		store: true,
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			data := dataFlag(fs)
			verbs := id.verbs(fs, e)
			return func(ctx context.Context) error {
				return withStore(*data, e, func(eng *engine.Engine) error {
					return id.run(ctx, verbs(eng), e.args)
				})
			}
		},
	}
}

// run finds the verb args name and runs it with the arguments after it.
func (id identity) run(ctx context.Context, verbs []verb, args []string) error {
	for _, v := range verbs {
		words := strings.Fields(v.name)
		if len(args) < len(words) || !slices.Equal(args[:len(words)], words) {
			continue
		}
		rest := args[len(words):]
		if len(rest) != v.arity() {
			return fmt.Errorf("usage: cairn %s %s %s", id.name, v.name, v.args)
		}
		return v.run(ctx, rest)
	}
	var usage []string
	for _, v := range verbs {
		usage = append(usage, strings.TrimSpace("  cairn "+id.name+" "+v.name+" "+v.args))
	}
	return fmt.Errorf("unknown %s command %q; usage:\n  %s", id.name, strings.Join(args, " "), strings.Join(usage, "\n  "))
}

// table writes rows under a header, in aligned columns.
func table(e *env, header string, rows [][]string) {
	tw := tabwriter.NewWriter(e.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}
