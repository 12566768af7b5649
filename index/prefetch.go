package index

import (
	"context"
	"fmt"

	"github.com/cairnstore/cairn/internal/blob"
)

// Remote reports whether the index is in PostgreSQL, where every read is
// a round trip to the database, and reads known ahead are best made at
// once (Prefetch).
func (d *DB) Remote() bool {
	_, ok := d.st.(*pgStore)
	return ok
}

// Prefetch reads the entries of the records, blobs and chunks named at
// once (one round trip to PostgreSQL; one get each from Pebble) and
// returns a View that answers gets of those from what it read, and
// everything else as v does. What it read is as of the call: a caller
// reads what it holds locks for, or checks what it read at commit.
func (v View) Prefetch(records []RecordKey, blobs, chunks []blob.ID) (View, error) {
	keys := make([][]byte, 0, len(records)+len(blobs)+len(chunks))
	for _, k := range records {
		keys = append(keys, EncodeRecordKey(k))
	}
	for _, id := range blobs {
		keys = append(keys, BlobKey(id))
	}
	for _, id := range chunks {
		keys = append(keys, ChunkKey(id))
	}
	if len(keys) == 0 {
		return v, nil
	}
	found := map[string][]byte{}
	if m, ok := v.r.(manyGetter); ok {
		var err error
		if found, err = m.getMany(keys); err != nil {
			return View{}, err
		}
	} else {
		for _, k := range keys {
			val, ok, err := v.r.get(k)
			if err != nil {
				return View{}, err
			}
			if ok {
				found[string(k)] = val
			}
		}
	}
	p := &prefetched{reader: v.r, vals: make(map[string]prefetchedValue, len(keys))}
	for _, k := range keys {
		val, ok := found[string(k)]
		p.vals[string(k)] = prefetchedValue{val, ok}
	}
	return View{r: p}, nil
}

// manyGetter is a reader that gets several keys in one call.
type manyGetter interface {
	// getMany returns the values of those of keys that are present.
	getMany(keys [][]byte) (map[string][]byte, error)
}

type prefetchedValue struct {
	v  []byte
	ok bool
}

// prefetched answers gets of the keys it read ahead from memory.
type prefetched struct {
	reader
	vals map[string]prefetchedValue
}

func (p *prefetched) get(key []byte) ([]byte, bool, error) {
	pv, asked := p.vals[string(key)]
	if !asked {
		return p.reader.get(key)
	}
	if !pv.ok {
		return nil, false, nil
	}
	return append([]byte{}, pv.v...), true, nil // a copy, as get's are
}

func (r pgReader) getMany(keys [][]byte) (map[string][]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	const q = "SELECT k, v FROM " + pgTable + " WHERE k = ANY($1)"
	var out map[string][]byte
	var err error
	if r.tx != nil {
		r.mu.Lock()
		out, err = scanKV(r.tx.Query(ctx, q, keys))
		r.mu.Unlock()
	} else {
		// A connection a restart of PostgreSQL ended fails once, then
		// leaves the pool: one more try takes another.
		for range 3 {
			if out, err = scanKV(r.live.pool.Query(ctx, q, keys)); !connErr(err) {
				break
			}
		}
	}
	if err != nil {
		return nil, pgErr(fmt.Sprintf("get %d keys", len(keys)), err)
	}
	return out, nil
}
