package crashtest

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/zeebo/blake3"

	"github.com/cairnstore/cairn/internal/testtool"
)

// TestFsyncEIO runs the server under strace, which fails the segment
// file's fdatasync with EIO from the 6th call on: the server must stop
// acknowledging uploads (read-only, /readyz 503) and keep serving reads;
// a restart recovers with every acknowledged upload intact.
func TestFsyncEIO(t *testing.T) {
	strace := testtool.Path(t, "strace", "apt-get install -y strace")
	data := t.TempDir()
	token := setupUser(t, data)
	seg := filepath.Join(data, "segments", "0000000000000001.seg") // the first segment, made by the first upload
	wrap := []string{strace, "-f", "-qq", "-o", "/dev/null", "-P", seg,
		"-e", "trace=fdatasync,fsync", "-e", "inject=fdatasync,fsync:error=EIO:when=6+"}
	p := serve(t, data, wrap)
	c := newClient(p.url, token)

	acked := map[string][32]byte{}
	failed := 0
	for i := 0; i < 40 && failed < 3; i++ {
		name := fmt.Sprintf("f%02d", i)
		body := content(uint64(i), 64<<10+i)
		code, err := c.put(name, body)
		switch {
		case err != nil:
			t.Fatalf("upload %s: %v; logs:\n%s", name, err, p.logs)
		case code == 201:
			if failed > 0 {
				t.Fatalf("upload %s acknowledged after a failed fsync", name)
			}
			acked[name] = blake3.Sum256(body)
		case code == http.StatusServiceUnavailable || code == http.StatusInternalServerError:
			failed++
			if code, _, _, _ := c.get(name); code != 404 {
				t.Fatalf("upload %s failed but answers %d", name, code)
			}
		default:
			t.Fatalf("upload %s: %d", name, code)
		}
	}
	if failed == 0 || len(acked) == 0 {
		t.Fatalf("%d acknowledged, %d failed: the injection did not take; logs:\n%s", len(acked), failed, p.logs)
	}
	if res, err := http.Get(p.url + "/readyz"); err != nil || res.StatusCode != 503 {
		t.Fatalf("/readyz after a failed fsync: %v, %v", res.StatusCode, err)
	}
	for name, sum := range acked {
		if code, got, _, err := c.get(name); err != nil || code != 200 || got != sum {
			t.Fatalf("read %s on the read-only server: %d, %v", name, code, err)
		}
	}
	p.kill()

	p = serve(t, data, nil)
	c = newClient(p.url, token)
	for name, sum := range acked {
		if code, got, _, err := c.get(name); err != nil || code != 200 || got != sum {
			t.Fatalf("read %s after the restart: %d, %v", name, code, err)
		}
	}
	if res, err := http.Get(p.url + "/readyz"); err != nil || res.StatusCode != 200 {
		t.Fatalf("/readyz after the restart: %v, %v", res.StatusCode, err)
	}
	if code, err := c.put("after", content(99, 1000)); err != nil || code != 201 {
		t.Fatalf("upload after the restart: %d, %v", code, err)
	}
	p.kill()
	mustCairn(t, "check", "--data", data)
	t.Logf("%d uploads acknowledged before the injected EIO, %d refused after it", len(acked), failed)
}
