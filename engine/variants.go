package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/internal/keyspace"
)

// Variants are content derived from a record's content (an image resized,
// say), made once and kept as records of their own in keyspace.Variants,
// each named by its original record's key, the original's blob and the
// variant's canonical name, so that:
//
//   - a variant is found with one lookup, and never outlives the content
//     it was made of: writing other content at the original's key names
//     other variants;
//   - its bytes are a blob like any other (deduplicated, verified on
//     read, served with ranges and ETags), referenced by the variant's
//     record;
//   - it belongs to its original's record alone, so no tenant can learn
//     from how fast a variant comes whether another holds the same bytes;
//   - GC deletes the variants whose original record is gone, expired or
//     holds other content (sweepVariants), and their space comes back
//     as any deleted record's does.

// variantOf is what a variant's record keeps of its original.
type variantOf struct {
	Namespace string  `json:"ns"`
	Tenant    string  `json:"t"`
	Name      string  `json:"n"`
	Blob      blob.ID `json:"b"`
}

// variantKey is the key of variant name of orig: the original key's hash
// (keys can be longer than a name may be), then its blob, then the name.
func variantKey(orig Record, name string) Key {
	h := blob.Sum([]byte(orig.Key.Namespace + "\x00" + orig.Key.Tenant + "\x00" + orig.Key.Name))
	return Key{Namespace: keyspace.Variants, Name: h.String()[:40] + "/" + orig.Blob.String() + "/" + name}
}

// Variant returns the variant called name of the record orig, as
// PutVariant stored it, or ErrNotFound.
func (e *Engine) Variant(orig Record, name string) (Record, error) {
	if orig.Blob.IsZero() || name == "" || len(name) > 256 {
		return Record{}, fmt.Errorf("%w: variant %q of a record without content", ErrNotFound, name)
	}
	return e.GetRecord(variantKey(orig, name))
}

// PutVariant stores r as the variant called name (at most 256 bytes) of
// the record orig, of type ctype, and returns its record. If orig is gone
// or holds other content by the time it commits, nothing is kept and the
// error is ErrNotFound.
func (e *Engine) PutVariant(ctx context.Context, orig Record, name, ctype string, r io.Reader) (Record, error) {
	if orig.Blob.IsZero() || name == "" || len(name) > 256 {
		return Record{}, fmt.Errorf("%w: variant name %q, or an original without content", ErrInvalid, name)
	}
	meta, err := json.Marshal(variantOf{orig.Key.Namespace, orig.Key.Tenant, orig.Key.Name, orig.Blob})
	if err != nil {
		return Record{}, err
	}
	up, err := e.Upload(ctx, r)
	if err != nil {
		return Record{}, err
	}
	defer up.Close()
	var out Record
	err = e.Update(ctx, func(tx *Tx) error {
		cur, err := tx.Get(orig.Key)
		if err != nil {
			return err
		}
		if cur.Blob != orig.Blob {
			return fmt.Errorf("%w: record %s holds other content now", ErrNotFound, orig.Key)
		}
		out, err = tx.Put(variantKey(orig, name), Record{ContentType: ctype, Meta: meta}, up)
		return err
	})
	return out, err
}

// Variants returns the names of the variants stored of orig.
func (e *Engine) Variants(orig Record) ([]string, error) {
	k := variantKey(orig, "")
	var names []string
	for rec, err := range e.Records(k.Namespace, k.Tenant, k.Name, "") {
		if err != nil {
			return nil, err
		}
		names = append(names, rec.Key.Name[len(k.Name):])
	}
	return names, nil
}

// sweepVariants deletes the variants whose original record is gone,
// expired or holds other content than they were made of, 256 to a
// transaction, and counts them in rep. Guarded by gcMu.
func (e *Engine) sweepVariants(ctx context.Context, rep *GCReport) error {
	for recs, err := range e.Batches(keyspace.Variants, "", "", "", 256) {
		if err != nil {
			return err
		}
		var stale []Key
		for _, v := range recs {
			if orphan, err := e.orphanVariant(v, nil); err != nil {
				return err
			} else if orphan {
				stale = append(stale, v.Key)
			}
		}
		if len(stale) == 0 {
			continue
		}
		deleted := 0
		err := e.Update(ctx, func(tx *Tx) error {
			deleted = 0
			for _, k := range stale {
				v, err := tx.Get(k)
				if err != nil {
					continue // deleted meanwhile
				}
				// Checked again in the transaction: the original may have
				// been written back meanwhile (a restore, say).
				if orphan, err := e.orphanVariant(v, tx); err != nil {
					return err
				} else if !orphan {
					continue
				}
				if err := tx.Delete(k); err != nil {
					return err
				}
				deleted++
			}
			return nil
		})
		if err != nil {
			return err
		}
		rep.Variants += deleted
	}
	return nil
}

// orphanVariant reports whether variant v's original is gone, expired or
// holds other content; read in tx if not nil. A variant whose record does
// not say its original (not written by PutVariant) is an orphan.
func (e *Engine) orphanVariant(v Record, tx *Tx) (bool, error) {
	var of variantOf
	if err := json.Unmarshal(v.Meta, &of); err != nil || of.Namespace == "" || of.Name == "" {
		return true, nil
	}
	k := Key{Namespace: of.Namespace, Tenant: of.Tenant, Name: of.Name}
	var orig Record
	var err error
	if tx != nil {
		orig, err = tx.Get(k)
	} else {
		orig, err = e.GetRecord(k)
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return true, nil
	case err != nil:
		return false, err
	}
	return orig.Blob != of.Blob, nil
}
