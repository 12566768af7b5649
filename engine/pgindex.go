package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"syscall"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/segment"
)

// An index in PostgreSQL (Options.Index) instead of Pebble in the data
// folder. The folder keeps the segments (or, in object mode, a cache of
// them), the key and the file postgresFile, which names the database and
// holds an ID the index holds too: a folder opened without its database,
// with another one, or a database opened from another folder, is
// refused, so that two folders never write one index, but for one case:
// a store whose segments are in a bucket is all in its database and its
// bucket, so a new, empty folder given both takes it on (the old one
// lost, or the store moved). The folder is locked (lockFile) as Pebble's
// lock does for its own index, and the database by an advisory lock
// (index.LockStore): one process has the store at a time.

const (
	postgresFile = "postgres"
	lockFile     = "LOCK"
	// storeIDMeta is the index meta value holding the store's ID.
	storeIDMeta = "store-id"
	// objectsMeta is the index meta value naming the object store of a
	// store whose segments are in one.
	objectsMeta = "objects"
	// keyCheckMeta is a value sealed with the store's key, by which a
	// new folder is told the key it was given is the store's.
	keyCheckMeta = "key-check"
)

type postgresMarker struct {
	// Database is the connection string without its password.
	Database string `json:"database"`
	ID       string `json:"id"`
}

// redactDSN is a connection string without its password, to name a
// database in files and messages.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" {
		return "(a key=value connection string)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	u.RawQuery = ""
	return u.String()
}

// openPostgresIndex locks the folder and opens the index in the database
// opts.Index names, checking that folder and database belong together.
func (e *Engine) openPostgresIndex(fresh bool) (io.Closer, error) {
	lock, err := e.fs.Lock(e.fs.PathJoin(e.dir, lockFile))
	if errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EAGAIN) {
		return nil, fmt.Errorf("%w: %s is open in another process%s", ErrInUse, e.dir, ownerOf(e.fs, e.dir))
	}
	if err != nil {
		return nil, fmt.Errorf("engine: lock %s: %w", e.dir, err)
	}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	path := e.fs.PathJoin(e.dir, postgresFile)
	var had postgresMarker
	f, err := e.fs.Open(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if !fresh {
			return nil, fmt.Errorf("%w: %s keeps its index in the folder, not in PostgreSQL", ErrInvalid, e.dir)
		}
	case err != nil:
		return nil, fmt.Errorf("engine: %w", err)
	default:
		b, err := io.ReadAll(io.LimitReader(f, 4096))
		f.Close()
		if err != nil || json.Unmarshal(b, &had) != nil || had.ID == "" {
			return nil, fmt.Errorf("%w: %s does not read: %v", ErrCorrupt, path, err)
		}
	}
	idx, err := index.OpenPostgres(context.Background(), e.opts.Index, index.Options{Logger: e.opts.Logger})
	if err != nil {
		return nil, err
	}
	// One process at a time has the store, whatever its folder, unless
	// its segments are in a bucket too (nodes.go).
	if e.shared {
		// Any number of nodes.
	} else if got, err := idx.LockStore(); err != nil || !got {
		idx.Close()
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: another process has the store whose index is in %s open", ErrInUse, redactDSN(e.opts.Index))
	}
	id, known, err := idx.Meta(storeIDMeta)
	if err != nil {
		idx.Close()
		return nil, err
	}
	bucket := ""
	if e.opts.Objects != nil {
		bucket = e.opts.Objects.String()
	}
	recorded, _, err := idx.Meta(objectsMeta)
	if err != nil {
		idx.Close()
		return nil, err
	}
	switch {
	case had.ID == "" && known && bucket != "" && string(recorded) == bucket:
		// A new folder for a store that is all in its database and its
		// bucket (the old folder lost, or the store moved to another
		// machine): it takes the store on, given the store's key.
		check, _, err := idx.Meta(keyCheckMeta)
		if err == nil {
			_, _, err = e.Unseal(keyCheckMeta, check)
		}
		if err != nil {
			idx.Close()
			return nil, fmt.Errorf("%w: the store in %s and %s was made with another key than %s: give it its key (--key-file)", ErrInvalid, redactDSN(e.opts.Index), bucket, e.keyFile)
		}
		m := postgresMarker{Database: redactDSN(e.opts.Index), ID: string(id)}
		if err := e.writeMarker(path, m); err != nil {
			idx.Close()
			return nil, err
		}
		e.log.Info("a new data folder takes on the store of its index database and bucket", "dir", e.dir, "bucket", bucket)
	case had.ID == "" && known:
		idx.Close()
		return nil, fmt.Errorf("%w: the database %s holds the index of another store", ErrInvalid, redactDSN(e.opts.Index))
	case had.ID != "" && !known:
		idx.Close()
		return nil, fmt.Errorf("%w: %s keeps its index in %s, and the database %s holds none", ErrInvalid, e.dir, had.Database, redactDSN(e.opts.Index))
	case had.ID != "" && string(id) != had.ID:
		idx.Close()
		return nil, fmt.Errorf("%w: %s keeps its index in %s, and the database %s holds another store's", ErrInvalid, e.dir, had.Database, redactDSN(e.opts.Index))
	case had.ID == "":
		var raw [16]byte
		rand.Read(raw[:])
		m := postgresMarker{Database: redactDSN(e.opts.Index), ID: hex.EncodeToString(raw[:])}
		b := idx.NewBatch()
		b.SetMeta(storeIDMeta, []byte(m.ID))
		b.SetMeta(keyCheckMeta, e.Seal(keyCheckMeta, []byte("cairn")))
		if bucket != "" {
			b.SetMeta(objectsMeta, []byte(bucket))
		}
		if err := b.Commit(); err != nil {
			idx.Close()
			return nil, err
		}
		if err := e.writeMarker(path, m); err != nil {
			idx.Close()
			return nil, err
		}
	}
	e.idx = idx
	ok = true
	return lock, nil
}

func (e *Engine) writeMarker(path string, m postgresMarker) error {
	body, _ := json.Marshal(m)
	f, err := e.fs.Create(path, "")
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	if _, err := f.Write(append(body, '\n')); err == nil {
		err = f.Sync()
	} else {
		f.Close()
		return fmt.Errorf("engine: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	return segment.SyncDir(e.fs, e.dir)
}
