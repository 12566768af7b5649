//go:build unix

package engine_test

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
)

// modes lists every file and folder under dir that others may use: its
// mode is not 0700 (folders) or 0600 (files).
func openModes(t *testing.T, dir string) []string {
	t.Helper()
	var open []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := engine.FileMode
		if d.IsDir() {
			want = engine.DirMode
		}
		if info.Mode().Perm() != want {
			open = append(open, path+" "+info.Mode().Perm().String())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return open
}

// fill stores a few records and runs a GC, so that the index and the
// segments have made every kind of file they make.
func fill(t *testing.T, e *engine.Engine) {
	t.Helper()
	for i := range 20 {
		k := engine.Key{Namespace: "ns", Tenant: "t", Name: string(rune('a' + i))}
		if _, err := e.PutRecord(ctx, k, bytes.NewReader(random(uint64(i), 300<<10)), engine.Write{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.GC(ctx, false); err != nil {
		t.Fatal(err)
	}
}

// TestPrivateDataFolder: whatever the umask, a new store's folders are
// 0700 and its files 0600, so no other local user can read a tenant's
// bytes or the index's keys.
func TestPrivateDataFolder(t *testing.T) {
	old := syscall.Umask(0o022) // the usual default, which leaves files readable by all
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "new", "data")
	e := enginetest.OpenDir(t, dir, engine.Options{SegmentSize: 1 << 20})
	fill(t, e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if open := openModes(t, dir); len(open) > 0 {
		t.Errorf("open to other users:\n%s", strings.Join(open, "\n"))
	}
	if fi, err := os.Stat(filepath.Dir(dir)); err != nil || fi.Mode().Perm() != engine.DirMode {
		t.Errorf("the missing parent made for the data folder: %v, %v; want %v", fi.Mode(), err, engine.DirMode)
	}
}

// TestPrivateDataFolderFixed: a folder left open to others (an earlier
// version, a chmod by hand) is made private on open, with a warning.
func TestPrivateDataFolderFixed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	e := enginetest.OpenDir(t, dir, engine.Options{})
	fill(t, e)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		// Readable by group and others, as umask 022 left them before.
		if d.IsDir() {
			return os.Chmod(path, engine.DirMode|0o055)
		}
		return os.Chmod(path, engine.FileMode|0o044)
	})
	var logs bytes.Buffer
	e = enginetest.OpenDir(t, dir, engine.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if open := openModes(t, dir); len(open) > 0 {
		t.Errorf("still open to other users after open:\n%s", strings.Join(open, "\n"))
	}
	if !strings.Contains(logs.String(), "made it private") {
		t.Errorf("no warning logged; logs:\n%s", logs.String())
	}
	if _, err := e.GetRecord(engine.Key{Namespace: "ns", Tenant: "t", Name: "a"}); err != nil {
		t.Errorf("reading after the fix: %v", err)
	}
}
