//go:build unix

package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairnstore/cairn/engine"
)

// TestPrivateDataFolder: with the usual umask, a server's data folder,
// everything in it and its admin socket are the service user's alone,
// and the socket is never bound under its name with another mode.
func TestPrivateDataFolder(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	data := filepath.Join(t.TempDir(), "data")
	_, stop := startServe(t, []string{"--data", data}, noEnv)
	var open []string
	sock := false
	filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed meanwhile (a Pebble temporary file)
		}
		want := engine.FileMode
		if d.IsDir() {
			want = engine.DirMode
		}
		if strings.HasPrefix(d.Name(), ".admin") {
			t.Errorf("left behind: %s", path)
		}
		if path == adminSocket(data) {
			sock = info.Mode()&os.ModeSocket != 0
		}
		if info.Mode().Perm() != want {
			open = append(open, path+" "+info.Mode().String())
		}
		return nil
	})
	if !sock {
		t.Errorf("no socket at %s", adminSocket(data))
	}
	if len(open) > 0 {
		t.Errorf("open to other users while serving:\n%s", strings.Join(open, "\n"))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(adminSocket(data)); !os.IsNotExist(err) {
		t.Errorf("admin socket after shutdown: %v", err)
	}
}
