// Command cairn is a self-hosted, content-addressed media store.
//
//	cairn serve              serve HTTP on 127.0.0.1:8080, data in ./cairn-data
//	cairn check              verify the index against the segments
//	cairn reindex            rebuild chunk locations from the segment files
//	cairn help [command]     usage
//
// Every flag has a CAIRN_* environment equivalent (--data is CAIRN_DATA);
// a flag given on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/cairnstore/cairn/engine"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "cairn:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitError carries a process exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}

// command is one subcommand: its flags are declared by flags, and run
// executes it once they are parsed.
type command struct {
	name, args, short, long string
	// minArgs and maxArgs bound the positional arguments.
	minArgs, maxArgs int
	// store: the command works on the store in --data. When a server is
	// running on it (and so holds its lock), the command is sent to that
	// server over its admin socket and runs there.
	store bool
	flags func(fs *flag.FlagSet, env *env) func(ctx context.Context) error
}

// env is what every command shares: the process environment and outputs,
// and, when a command runs inside the server, the server's open engine.
type env struct {
	getenv         func(string) string
	stdin          io.Reader // where --password-file - reads; nil: none
	stdout, stderr io.Writer
	engine         *engine.Engine
	// args are the command's positional arguments, flags removed.
	args []string
	// keyFile is --key-file, for the commands that open the store.
	keyFile string
	// s3Endpoint and cacheSize are --s3-endpoint and --cache-size, for
	// those of a store in object mode.
	s3Endpoint string
	cacheSize  int64
	// index is --index: the PostgreSQL database of a store whose index is
	// in one.
	index string
}

// parseInterspersed parses flags wherever they appear among the
// positional arguments ("user add alice --data d"), as users expect.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func commands() []command {
	return []command{serveCommand(), versionCommand(), initCommand(), userCommand(), accountCommand(), apiUserCommand(), clientCommand(), iamCommand(), signingKeyCommand(), corsCommand(), gcCommand(), statsCommand(), nodesCommand(), scrubCommand(), checkCommand(), reindexCommand(), backupCommand(), restoreCommand()}
}

// run is the whole program, with its inputs passed in so tests can call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return runEnv(ctx, args, &env{getenv: getenv, stdin: os.Stdin, stdout: stdout, stderr: stderr})
}

func runEnv(ctx context.Context, args []string, e *env) error {
	stdout, stderr, getenv := e.stdout, e.stderr, e.getenv
	if len(args) == 0 {
		usage(stderr)
		return flag.ErrHelp
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			c, ok := find(rest[0])
			if !ok {
				return fmt.Errorf("help: unknown command %q", rest[0])
			}
			fs, _ := c.flagSet(e)
			fs.SetOutput(stdout)
			fs.Usage()
			return nil
		}
		usage(stdout)
		return nil
	}
	c, ok := find(name)
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q", name)
	}
	fs, exec := c.flagSet(e)
	pos, err := parseInterspersed(fs, rest)
	if err != nil {
		return err
	}
	if len(pos) < c.minArgs || len(pos) > c.maxArgs {
		fs.Usage()
		return fmt.Errorf("%s: want %d to %d arguments, got %q", name, c.minArgs, c.maxArgs, pos)
	}
	e.args = pos
	if err := applyEnv(fs, getenv); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if f := fs.Lookup("key-file"); f != nil {
		e.keyFile = f.Value.String()
	}
	if f := fs.Lookup("s3-endpoint"); f != nil {
		e.s3Endpoint = f.Value.String()
	}
	if f := fs.Lookup("index"); f != nil {
		e.index = f.Value.String()
	}
	if f := fs.Lookup("cache-size"); f != nil {
		e.cacheSize = f.Value.(flag.Getter).Get().(int64)
	}
	if c.store && e.engine == nil {
		if sock := adminSocket(fs.Lookup("data").Value.String()); serverListening(sock) {
			fargs, input, err := forwardable(name, fs, pos, e.stdin)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			return forward(ctx, sock, adminRequest{Args: fargs, Stdin: input}, stdout, stderr)
		}
	}
	return exec(ctx)
}

func find(name string) (command, bool) {
	i := slices.IndexFunc(commands(), func(c command) bool { return c.name == name })
	if i < 0 {
		return command{}, false
	}
	return commands()[i], true
}

func (c command) flagSet(e *env) (*flag.FlagSet, func(context.Context) error) {
	fs := flag.NewFlagSet("cairn "+c.name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	exec := c.flags(fs, e)
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "usage: cairn %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.long))
		if hasFlags(fs) {
			fmt.Fprintf(out, "\nflags (each also read from the environment variable shown):\n")
			fs.VisitAll(func(f *flag.Flag) {
				fmt.Fprintf(out, "  --%s (%s)\n    \t%s", f.Name, envName(f.Name), f.Usage)
				if f.DefValue != "" {
					fmt.Fprintf(out, " (default %q)", f.DefValue)
				}
				fmt.Fprintln(out)
			})
		}
	}
	return fs, exec
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// envName is the environment variable for a flag: data-dir → CAIRN_DATA_DIR.
func envName(flagName string) string {
	return "CAIRN_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// applyEnv sets every flag not given on the command line from its
// environment variable, if that is set.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)
			}
		}
	})
	return err
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "cairn is a self-hosted, content-addressed media store.\n\nusage: cairn <command> [flags]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "  %-10s %s\n", "help", "show help for a command: cairn help serve")
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", format)
}
