package keyspace_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"testing"

	"github.com/cairnstore/cairn/internal/keyspace"
)

// TestDistinct: no two namespaces are the same, and All lists every one
// the package declares.
func TestDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, ns := range keyspace.All {
		if seen[ns] {
			t.Errorf("namespace %q is declared twice", ns)
		}
		seen[ns] = true
	}
	f, err := parser.ParseFile(token.NewFileSet(), "keyspace.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	declared := 0
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			for _, v := range spec.(*ast.ValueSpec).Values {
				lit, ok := v.(*ast.BasicLit)
				if !ok {
					continue
				}
				declared++
				if !slices.Contains(keyspace.All, lit.Value[1:len(lit.Value)-1]) {
					t.Errorf("namespace %s is declared but not in All", lit.Value)
				}
			}
		}
	}
	if declared != len(keyspace.All) {
		t.Errorf("%d namespaces declared, %d in All", declared, len(keyspace.All))
	}
}
