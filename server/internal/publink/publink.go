// Package publink keeps public file URLs.
//
// A public URL is /f/<id>/<name>, where id is an opaque random token that an API creates for one of its records. A
// content hash is never enough to fetch bytes (another tenant's identical
// private file would leak); only a link an API made public resolves. A
// link is a content-less record in the "public" namespace that names its
// target; it is written, expired and deleted in the same transactions as
// the target, and a link whose target is gone resolves to 404.
//
// Functions here are safe for concurrent use.
package publink

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/keyspace"
)

const namespace = keyspace.PublicLinks

// NewID returns a new opaque link ID: 128 random bits in hex.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func key(id string) engine.Key { return engine.Key{Namespace: namespace, Name: id} }

// Put links id to target, expiring with it (zero: never).
func Put(tx *engine.Tx, id string, target engine.Key, expires time.Time) error {
	meta, err := json.Marshal(target)
	if err != nil {
		return err
	}
	_, err = tx.Put(key(id), engine.Record{Meta: meta, Expires: expires}, nil)
	return err
}

// Delete removes link id, if it exists.
func Delete(tx *engine.Tx, id string) error {
	if err := tx.Delete(key(id)); err != nil && !errors.Is(err, engine.ErrNotFound) {
		return err
	}
	return nil
}

// Path is the absolute URL path of link id, with name as its last segment.
func Path(id, name string) string {
	if name == "" {
		name = "file"
	}
	return "/f/" + id + "/" + escape(name)
}

func escape(s string) string {
	const hexd = "0123456789ABCDEF"
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			out = append(out, c)
		} else {
			out = append(out, '%', hexd[c>>4], hexd[c&15])
		}
	}
	return string(out)
}

// Resolve returns the record link id points to; ErrNotFound if the link
// or its target is gone (deleted or expired).
func Resolve(e *engine.Engine, id string) (engine.Record, error) {
	if len(id) != 32 {
		return engine.Record{}, engine.ErrNotFound
	}
	link, err := e.GetRecord(key(id))
	if err != nil {
		return engine.Record{}, err
	}
	var target engine.Key
	if err := json.Unmarshal(link.Meta, &target); err != nil {
		return engine.Record{}, fmt.Errorf("%w: link %s: %w", engine.ErrCorrupt, id, err)
	}
	return e.GetRecord(target)
}
