package cloudstorage_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/internal/testtool"
	"github.com/cairnstore/cairn/server"
)

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", filepath.Base(name), args, err, out)
	}
	return string(out)
}

func fileID(t *testing.T, path string) blob.ID {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return blob.Sum(b)
}

// TestCurl uploads, downloads, fetches ranges and resumes an interrupted
// download with curl, as users of the API do.
func TestCurl(t *testing.T) {
	curl := testtool.Path(t, "curl", "apt-get install -y curl")
	v := newEnv(t, server.Config{})
	dir := t.TempDir()
	data := randBytes(7, 5<<20+123)
	src := filepath.Join(dir, "src.bin")
	os.WriteFile(src, data, 0o600)
	url := v.url + "/protected/277/videos/clip.mp4"
	auth := "Authorization: Bearer " + v.token("writer")

	out := runTool(t, curl, "-sS", "-f", "-X", "POST", "--data-binary", "@"+src, "-H", auth, "-H", "Content-Type: video/mp4", url)
	if !strings.Contains(out, `"size":5243003`) {
		t.Fatalf("curl upload answered %s", out)
	}
	// HEAD with curl -I, and a 404 with -f exits 22.
	if out := runTool(t, curl, "-sS", "-I", "-H", auth, url); !strings.Contains(out, "200") || !strings.Contains(strings.ToLower(out), "etag:") {
		t.Fatalf("curl -I: %s", out)
	}
	if err := exec.Command(curl, "-sS", "-f", "-o", "/dev/null", "-H", auth, url+"x").Run(); err == nil {
		t.Fatal("curl -f of missing media succeeded")
	}

	got := filepath.Join(dir, "got.bin")
	runTool(t, curl, "-sS", "-f", "-H", auth, "-o", got, url)
	if fileID(t, got) != blob.Sum(data) {
		t.Fatal("curl download differs")
	}
	part := filepath.Join(dir, "part.bin")
	runTool(t, curl, "-sS", "-f", "-H", auth, "-r", "1000-1999", "-o", part, url)
	if b, _ := os.ReadFile(part); !bytes.Equal(b, data[1000:2000]) {
		t.Fatal("curl -r 1000-1999 got other bytes")
	}
	// Resume: a partial file of the first 2 MiB + 17 bytes, then -C -.
	resumed := filepath.Join(dir, "resumed.bin")
	os.WriteFile(resumed, data[:2<<20+17], 0o600)
	runTool(t, curl, "-sS", "-f", "-H", auth, "-C", "-", "-o", resumed, url)
	if fileID(t, resumed) != blob.Sum(data) {
		t.Fatal("curl -C - resumed to other bytes")
	}
	// A b3sum of the download is the ETag.
	if b3sum, err := exec.LookPath("b3sum"); err == nil {
		if out := runTool(t, b3sum, "--no-names", got); strings.TrimSpace(out) != blob.Sum(data).String() {
			t.Fatalf("b3sum %s, want %s", out, blob.Sum(data))
		}
	}
}

// TestAria2c downloads 64 MiB over several connections at once: ranged
// requests from a client no one here wrote.
func TestAria2c(t *testing.T) {
	aria2c := testtool.Path(t, "aria2c", "apt-get install -y aria2")
	reg := prometheus.NewRegistry()
	v := newEnv(t, server.Config{Registry: reg})
	data := randBytes(8, 64<<20)
	r := v.do("POST", "/public/277/big.bin", v.token("writer"), data, "Content-Type", "application/octet-stream")
	v.want(r, 201, "POST 64 MiB")
	dir := t.TempDir()
	runTool(t, aria2c, "-q", "-x", "8", "-s", "8", "-k", "1M", "--file-allocation=none", "--allow-overwrite=true",
		"-d", dir, "-o", "big.bin", v.url+"/public/277/big.bin")
	if fileID(t, filepath.Join(dir, "big.bin")) != blob.Sum(data) {
		t.Fatal("aria2c download differs")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ranged := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "cairn_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == "206" {
					ranged += m.GetCounter().GetValue()
				}
			}
		}
	}
	if ranged < 2 {
		t.Errorf("aria2c made %v ranged requests, want several connections' worth", ranged)
	}
	t.Logf("aria2c made %v ranged requests", ranged)
}
