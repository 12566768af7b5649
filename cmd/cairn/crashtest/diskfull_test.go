package crashtest

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"
)

// TestDiskFull fills a small tmpfs data folder: uploads answer 507 and
// leave nothing visible; reads and deletes go on; once deletes and a GC
// free space, uploads succeed again without a restart.
func TestDiskFull(t *testing.T) {
	m := loopFS(t, "192M", nil)
	data := filepath.Join(m.dir, "data")
	token := setupUser(t, data)
	// A small reserve, so that uploads also run into the real ENOSPC of
	// an append, not only the reserve check before one.
	p := serve(t, data, nil, "--segment-size", fmt.Sprint(16<<20), "--min-free-bytes", fmt.Sprint(4<<20))
	c := newClient(p.url, token)

	stored := map[string][32]byte{}
	var full []string
	for i := 0; len(full) < 3; i++ {
		if i > 100 {
			t.Fatalf("192 MiB took more than 100 uploads of 6 MiB without a 507")
		}
		name := fmt.Sprintf("f%03d", i)
		body := content(uint64(i), 6<<20)
		code, err := c.put(name, body)
		switch {
		case err != nil:
			t.Fatalf("upload %s: %v; logs:\n%s", name, err, p.logs)
		case code == 201:
			stored[name] = blake3.Sum256(body)
		case code == http.StatusInsufficientStorage:
			full = append(full, name)
		default:
			t.Fatalf("upload %s: %d; logs:\n%s", name, code, p.logs)
		}
	}
	t.Logf("%d uploads of 6 MiB stored before the disk was full", len(stored))
	if len(stored) < 10 {
		t.Fatalf("only %d uploads fit", len(stored))
	}
	// Fill what is left with a file of another program: every upload,
	// even a small one, must now fail cleanly.
	ballast, err := os.Create(filepath.Join(m.dir, "ballast"))
	if err != nil {
		t.Fatal(err)
	}
	for buf := make([]byte, 1<<20); ; {
		if _, err := ballast.Write(buf); err != nil {
			break
		}
	}
	ballast.Close()
	for i, size := range []int{100, 64 << 10, 2 << 20} {
		name := fmt.Sprintf("small%d", i)
		if code, err := c.put(name, content(uint64(1000+i), size)); err != nil || code != http.StatusInsufficientStorage {
			t.Fatalf("upload of %d bytes on a full disk: %d, %v", size, code, err)
		}
		full = append(full, name)
	}
	if res, err := http.Get(p.url + "/readyz"); err != nil || res.StatusCode != 503 {
		t.Fatalf("/readyz on a full disk: %v, %v", res.StatusCode, err)
	}
	for _, name := range full {
		if code, _, _, err := c.get(name); err != nil || code != 404 {
			t.Fatalf("refused upload %s is visible: %d, %v", name, code, err)
		}
	}
	for name, sum := range stored {
		if code, got, _, err := c.get(name); err != nil || code != 200 || got != sum {
			t.Fatalf("reading %s on a full disk: %d, %v", name, code, err)
		}
	}

	// Killed on a full disk, the store does not open until space is
	// freed, and says so at once (Pebble would retry flushing its log
	// for ever, and the command hang).
	p.kill()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary(t), "check", "--data", data).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "free some space") {
		t.Fatalf("check on a full disk: %v\n%s", err, out)
	}

	// Free space: the other program's file goes, and the older half of
	// our files, so that whole segments die and GC can remove them
	// without copying anything (a disk this full has no room to copy).
	os.Remove(filepath.Join(m.dir, "ballast"))
	p = serve(t, data, nil, "--segment-size", fmt.Sprint(16<<20), "--min-free-bytes", fmt.Sprint(4<<20))
	c = newClient(p.url, token)
	names := slices.Sorted(maps.Keys(stored))
	for _, name := range names[:len(names)/2] {
		if code, err := c.del(name); err != nil || code != 204 {
			t.Fatalf("delete %s: %d, %v", name, code, err)
		}
		delete(stored, name)
	}
	if out, err := cairn(t, "gc", "--data", data); err != nil { // through the running server
		t.Fatalf("gc: %v\n%s", err, out)
	}
	for i := range 3 {
		name := fmt.Sprintf("again%d", i)
		body := content(uint64(2000+i), 6<<20)
		if code, err := c.put(name, body); err != nil || code != 201 {
			t.Fatalf("upload after freeing space: %d, %v; logs:\n%s", code, err, p.logs)
		}
		stored[name] = blake3.Sum256(body)
	}
	for name, sum := range stored {
		if code, got, _, err := c.get(name); err != nil || code != 200 || got != sum {
			t.Fatalf("reading %s after the disk was full: %d, %v", name, code, err)
		}
	}
	p.kill()
	mustCairn(t, "check", "--data", data)
}
