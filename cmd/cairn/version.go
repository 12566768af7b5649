package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "devel"
}

// buildInfo is what the binary knows of its making: the module version,
// and the commit and time of the checkout it was built from.
type buildInfo struct {
	version, revision, time string
	modified                bool
}

func readBuildInfo() buildInfo {
	b := buildInfo{version: version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.revision = s.Value
		case "vcs.time":
			b.time = s.Value
		case "vcs.modified":
			b.modified = s.Value == "true"
		}
	}
	return b
}

func versionCommand() command {
	return command{
		name:  "version",
		short: "print the version, the commit built from and the Go version",
		long: `
Version prints the module version the binary was built from, the commit
and commit time of the checkout it was built in (and whether that had
uncommitted changes), the Go version and the platform, as recorded by the
Go toolchain in the binary.`,
		flags: func(fs *flag.FlagSet, e *env) func(context.Context) error {
			return func(context.Context) error {
				b := readBuildInfo()
				fmt.Fprintf(e.stdout, "cairn %s\n", b.version)
				if b.revision != "" {
					modified := ""
					if b.modified {
						modified = " (with uncommitted changes)"
					}
					fmt.Fprintf(e.stdout, "commit %s%s\n", b.revision, modified)
				}
				if b.time != "" {
					fmt.Fprintf(e.stdout, "committed %s\n", b.time)
				}
				fmt.Fprintf(e.stdout, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return nil
			}
		},
	}
}
