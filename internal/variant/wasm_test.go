package variant_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/testtool"
)

// TestWasmProvenance: the embedded encoders are byte for byte the files
// of the module versions wasm/README.md names (go.mod requires them, for
// this test and for decoding what the encoders make).
func TestWasmProvenance(t *testing.T) {
	goCmd := testtool.Path(t, "go", "install Go from https://go.dev/dl")
	for _, c := range []struct{ ours, module, path string }{
		{"wasm/webp.wasm.gz", "github.com/gen2brain/webp", "lib/webp.wasm.gz"},
		{"wasm/avif-encode.wasm.gz", "github.com/gen2brain/avif", "lib/encode.wasm.gz"},
		{"wasm/webp.c", "github.com/gen2brain/webp", "lib/webp.c"},
		{"wasm/avif-encode.c", "github.com/gen2brain/avif", "lib/encode.c"},
	} {
		out, err := exec.Command(goCmd, "mod", "download", "-json", c.module).Output()
		if err != nil {
			t.Fatalf("go mod download %s: %v", c.module, err)
		}
		dir := ""
		for line := range strings.Lines(string(out)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), `"Dir": "`); ok {
				dir = strings.TrimSuffix(v, `",`)
			}
		}
		want, err := os.ReadFile(filepath.Join(dir, c.path))
		if err != nil {
			t.Fatalf("%s: %v", c.module, err)
		}
		got, err := os.ReadFile(c.ours)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not %s's %s", c.ours, c.module, c.path)
		}
	}
}
