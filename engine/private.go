package engine

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A store is private to the user it runs as (DESIGN.md invariant 8): the
// data folder and every folder in it are 0700 and every file 0600,
// whatever the process umask, so that no other local user can read a
// tenant's bytes from the segments or the index.
const (
	DirMode  os.FileMode = 0o700
	FileMode os.FileMode = 0o600
)

// privateFS is the real disk, creating folders and files private to the
// owner. Pebble and the segment writer create folders and files open to
// everyone the umask lets in; each creation here is followed by a chmod
// of its path. The
// file is never readable by others in between, because the folder it is
// in already is not.
type privateFS struct{ vfs.FS }

// Unwrap implements vfs.FS.
func (p privateFS) Unwrap() vfs.FS { return p.FS }

// MkdirAll implements vfs.FS, making every folder it creates 0700.
func (p privateFS) MkdirAll(dir string, _ os.FileMode) error {
	return p.FS.MkdirAll(dir, DirMode)
}

// Create implements vfs.FS.
func (p privateFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return chmodFile(name)(p.FS.Create(name, c))
}

// OpenReadWrite implements vfs.FS (it creates the file if it is missing).
func (p privateFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	return chmodFile(name)(p.FS.OpenReadWrite(name, c, opts...))
}

// ReuseForWrite implements vfs.FS.
func (p privateFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	return chmodFile(newname)(p.FS.ReuseForWrite(oldname, newname, c))
}

// Lock implements vfs.FS (it creates the lock file).
func (p privateFS) Lock(name string) (io.Closer, error) {
	c, err := p.FS.Lock(name)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(name, FileMode); err != nil {
		c.Close()
		return nil, fmt.Errorf("engine: make %s private: %w", name, err)
	}
	return c, nil
}

func chmodFile(name string) func(vfs.File, error) (vfs.File, error) {
	return func(f vfs.File, err error) (vfs.File, error) {
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(name, FileMode); err != nil {
			f.Close()
			return nil, fmt.Errorf("engine: make %s private: %w", name, err)
		}
		return f, nil
	}
}

// makePrivate takes away what other users may do in the data folder dir:
// a folder made by an earlier version, or by hand, may be readable by
// everyone. It returns how many files and folders it changed; an error
// means dir cannot be made private (it belongs to another user, say) and
// the store must not be opened.
func makePrivate(dir string) (int, error) {
	fixed := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil // chmod would follow it out of the folder
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := FileMode
		if d.IsDir() {
			want = DirMode
		}
		if info.Mode().Perm()&^want == 0 {
			return nil
		}
		if err := os.Chmod(path, info.Mode().Perm()&want); err != nil {
			return err
		}
		fixed++
		return nil
	})
	if err != nil {
		return fixed, fmt.Errorf("engine: the data folder %s is open to other users and cannot be made private (run cairn as the folder's owner, or chmod -R go= it): %w", dir, err)
	}
	return fixed, nil
}
