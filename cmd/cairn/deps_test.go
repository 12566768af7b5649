package main

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/testtool"
)

const module = "github.com/cairnstore/cairn"

// layer places a package of the module in the import order of STYLE.md:
// a package may import only packages of a higher layer. ok is false for
// packages outside the order (bench, fuzz), which may import anything.
func layer(pkg string) (n int, ok bool) {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
	switch {
	case rel == "cmd/cairn":
		return 0, true
	case rel == "server":
		return 1, true
	case strings.HasPrefix(rel, "server/internal/"):
		return 3, true
	case strings.HasPrefix(rel, "server/"):
		return 2, true
	case rel == "engine", strings.HasPrefix(rel, "engine/"):
		return 4, true
	case rel == "segment", rel == "index", rel == "internal/chunker", rel == "internal/mail", rel == "internal/variant", rel == "objstore":
		return 5, true
	case rel == "internal/blob", rel == "internal/keyspace":
		return 6, true
	}
	return 0, false
}

// apiOf is the API package a package belongs to ("server/mediaservice"
// for its query subpackage), or "".
func apiOf(pkg string) string {
	rel := strings.TrimPrefix(strings.TrimPrefix(pkg, module), "/")
	parts := strings.Split(rel, "/")
	if len(parts) >= 2 && parts[0] == "server" && parts[1] != "internal" {
		return parts[0] + "/" + parts[1]
	}
	return ""
}

// forbidden are outside packages a layer may not import directly.
var forbidden = map[int][]string{
	2: {"github.com/cockroachdb/pebble", module + "/segment", module + "/index"},
	3: {"github.com/cockroachdb/pebble", module + "/segment", module + "/index"},
	4: {"net/http", "github.com/prometheus/"},
	5: {"net/http", "github.com/prometheus/"},
	6: {"net/http", "github.com/prometheus/"},
}

// TestImportDirection enforces the package layering of DESIGN.md and
// STYLE.md on the module's non-test imports.
func TestImportDirection(t *testing.T) {
	goCmd := testtool.Path(t, "go", "install Go from https://go.dev/dl (it lists the module's packages)")
	out, err := exec.Command(goCmd, "list", "-json", module+"/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	n := 0
	for {
		var p struct {
			ImportPath string
			Imports    []string
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		n++
		from, ordered := layer(p.ImportPath)
		for _, imp := range p.Imports {
			if imp == module+"/bench" || imp == module+"/fuzz" || imp == module+"/cmd/cairn" {
				t.Errorf("%s imports %s: nothing may import bench, fuzz or cmd", p.ImportPath, imp)
			}
			if !ordered {
				continue
			}
			for _, f := range forbidden[from] {
				if p.ImportPath == module+"/objstore" && f == "net/http" {
					continue // an S3 client speaks HTTP
				}
				if f = strings.TrimSuffix(f, "/"); imp == f || strings.HasPrefix(imp, f+"/") {
					t.Errorf("%s imports %s, which its layer may not", p.ImportPath, imp)
				}
			}
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to, ok := layer(imp)
			switch {
			case imp == module+"/internal/testtool" && p.ImportPath == module+"/engine/enginetest":
				// enginetest starts the MinIO of object-mode tests.
			case !ok:
				t.Errorf("%s imports %s, outside the layering", p.ImportPath, imp)
			case apiOf(p.ImportPath) != "" && apiOf(p.ImportPath) == apiOf(imp):
				// An API package may use its own subpackages (mediaservice/query).
			case imp == module+"/engine" && strings.HasPrefix(p.ImportPath, module+"/engine/"):
				// engine/enginetest opens engines.
			case to <= from:
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must point down the layers", p.ImportPath, from, imp, to)
			}
		}
	}
	if n < 8 {
		t.Fatalf("go list found only %d packages", n)
	}
}
