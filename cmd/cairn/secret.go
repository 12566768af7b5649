package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// A password or secret given on the command line is in every local
// user's view (ps, /proc/<pid>/cmdline) for as long as the command runs.
// So each one can be read from a file, or from standard input, with
// --<name>-file; the --<name> flag still works, with a warning.

// secretFlag is a secret's pair of flags.
type secretFlag struct {
	name        string
	value, file *string
}

// maxSecretFile bounds what a secret file may hold.
const maxSecretFile = 4 << 10

// secretFlags declares --name and --name-file on fs.
func secretFlags(fs *flag.FlagSet, name, usage string) *secretFlag {
	return &secretFlag{
		name:  name,
		value: fs.String(name, "", usage+"; other local users can read it from the process list: prefer --"+name+"-file"),
		file:  fs.String(name+"-file", "", "read the "+name+" from this file's first line (- for standard input)"),
	}
}

// get returns the secret given, or "" if none was (the command makes a
// random one).
func (s *secretFlag) get(e *env) (string, error) {
	switch {
	case *s.value != "" && *s.file != "":
		return "", fmt.Errorf("--%s and --%s-file: give one", s.name, s.name)
	case *s.value != "":
		fmt.Fprintf(e.stderr, "cairn: warning: --%s on the command line is visible to other local users; use --%s-file (or - for standard input)\n", s.name, s.name)
		return *s.value, nil
	case *s.file == "":
		return "", nil
	}
	var r io.Reader = e.stdin
	if *s.file != "-" {
		f, err := os.Open(*s.file)
		if err != nil {
			return "", fmt.Errorf("--%s-file: %w", s.name, err)
		}
		defer f.Close()
		r = f
	}
	v, err := firstLine(r)
	if err != nil {
		return "", fmt.Errorf("--%s-file %s: %w", s.name, *s.file, err)
	}
	return v, nil
}

// firstLine reads the first line of r, without its line ending.
func firstLine(r io.Reader) (string, error) {
	if r == nil {
		return "", errors.New("no standard input")
	}
	line, err := bufio.NewReader(io.LimitReader(r, maxSecretFile)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty")
	}
	return line, nil
}

// forwardable turns a command's parsed flags and positional arguments
// into the arguments sent to a running server, with what its secret
// files hold as the standard input it gets there: a file named on this
// machine, or this process's own standard input, means nothing to the
// server. At most one secret file is read.
func forwardable(name string, fs *flag.FlagSet, pos []string, stdin io.Reader) (args []string, input string, err error) {
	args = append([]string{name}, pos...)
	fs.Visit(func(f *flag.Flag) {
		v := f.Value.String()
		if strings.HasSuffix(f.Name, "-file") && v != "" && err == nil {
			if input != "" {
				err = errors.New("at most one secret file at a time")
				return
			}
			r := stdin
			if v != "-" {
				fh, oerr := os.Open(v)
				if oerr != nil {
					err = fmt.Errorf("--%s: %w", f.Name, oerr)
					return
				}
				defer fh.Close()
				r = fh
			}
			if input, err = firstLine(r); err != nil {
				err = fmt.Errorf("--%s %s: %w", f.Name, v, err)
				return
			}
			input += "\n"
			v = "-"
		}
		args = append(args, "--"+f.Name+"="+v)
	})
	return args, input, err
}
