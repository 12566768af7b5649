package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/testtool"
)

// licenses are the licences cairn's binary may link, each known by words
// only its text has. All are permissive and compatible with the
// Apache-2.0 licence cairn is under (LICENSE).
var licenses = []struct {
	name string
	text *regexp.Regexp
}{
	{"Apache-2.0", regexp.MustCompile(`Apache License\s+Version 2\.0`)},
	{"MIT", regexp.MustCompile(`Permission is hereby granted, free of charge, to any person obtaining\s+a copy`)},
	{"BSD-3-Clause", regexp.MustCompile(`(?s)Redistribution and use in source and binary forms.*Neither the name`)},
	{"BSD-2-Clause", regexp.MustCompile(`Redistribution and use in source and binary forms`)},
	{"ISC", regexp.MustCompile(`Permission to use, copy, modify, and(/or)? distribute this software for any\s+purpose with or without fee is hereby granted`)},
	{"CC0-1.0", regexp.MustCompile(`CC0 1\.0`)},
}

// TestLicenses lists every module the cairn binary links and the licence
// of each, read from the module's own licence file: a module without one,
// or under any other licence, fails the test (a copyleft one would not
// fit an Apache-2.0 binary).
func TestLicenses(t *testing.T) {
	goCmd := testtool.Path(t, "go", "install Go from https://go.dev/dl (it lists the binary's modules)")
	if b, err := os.ReadFile("../../LICENSE"); err != nil || !licenses[0].text.Match(b) {
		t.Fatalf("LICENSE is not the Apache-2.0 licence (%v)", err)
	}
	out, err := exec.Command(goCmd, "list", "-deps", "-f", "{{with .Module}}{{.Path}}\t{{.Version}}\t{{.Dir}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 || seen[f[0]] || f[0] == module {
			continue
		}
		seen[f[0]] = true
		name, file := licenseOf(t, f[2])
		if name == "" {
			t.Errorf("%s %s: no licence cairn may link found (%s)", f[0], f[1], file)
			continue
		}
		t.Logf("%-55s %-40s %s", f[0], f[1], name)
	}
	if len(seen) < 10 {
		t.Fatalf("only %d modules listed: %s", len(seen), out)
	}
}

// licenseOf returns the licence of the module in dir and the file it is
// in.
func licenseOf(t *testing.T, dir string) (string, string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, p := range files {
		base := strings.ToUpper(filepath.Base(p))
		if !strings.HasPrefix(base, "LICENSE") && !strings.HasPrefix(base, "LICENCE") && !strings.HasPrefix(base, "COPYING") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			continue // a folder of licences: the file beside it says
		}
		for _, l := range licenses {
			if l.text.Match(b) {
				return l.name, p
			}
		}
		return "", p
	}
	return "", "no licence file in " + dir
}
