package engine

import (
	"container/list"
	"sync"
)

// readCache bounds the memory Readers hold in decoded chunks. A Reader
// keeps the last chunk it decoded and verified, so that the many small
// reads of one download decode and verify each chunk once; but a
// download whose client reads slowly would keep its chunk (up to
// MaxChunk, 4 MiB) for as long as it stays open, and a few hundred
// downloads starting at once would each decode one at the same moment:
// memory would grow with the number of clients. Across all Readers, the
// chunks being read and the chunks kept are at most Options.ReadCache
// bytes: a read reserves its chunk's size first, dropping the least
// recently used others' kept chunks (they read theirs again if they come
// back to it), or waiting for reads in flight to end if nothing is left
// to drop.
//
// Lock order: readCache.mu before Reader.mu, which it only ever tries
// (TryLock): a Reader never calls the cache while it holds its own mu.
type readCache struct {
	mu    sync.Mutex
	freed sync.Cond // signalled when used goes down
	limit int64
	// used is the bytes reserved: chunks being read, and the held bytes
	// of the Readers in lru.
	used int64
	// lru holds the Readers keeping a chunk, the most recently used first.
	lru list.List
}

func (c *readCache) init(limit int64) {
	c.limit = limit
	c.freed.L = &c.mu
}

// reserve waits until n more bytes fit, dropping kept chunks (r's own
// too: it is about to replace it) least recently used first, and
// reserves them. A chunk larger than the whole budget is let through
// when nothing else is reserved.
func (c *readCache) reserve(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.used+n > c.limit && c.used > 0 {
		if !c.dropOne() {
			c.freed.Wait()
		}
	}
	c.used += n
}

// unreserve gives back n bytes reserved for a read that failed.
func (c *readCache) unreserve(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used -= n
	c.freed.Broadcast()
}

// keep records that r now keeps, most recently used, a chunk for which
// it reserved bytes, in a buffer of n bytes, in place of what it kept
// before (which it has dropped).
func (c *readCache) keep(r *Reader, reserved, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.used += n - reserved - r.held
	r.held = n
	if r.elem == nil {
		r.elem = c.lru.PushFront(r)
	} else {
		c.lru.MoveToFront(r.elem)
	}
	c.freed.Broadcast()
}

// dropOne drops the least recently used kept chunk it can (not one being
// copied from); it reports whether it dropped any. Guarded by mu.
func (c *readCache) dropOne() bool {
	for el := c.lru.Back(); el != nil; el = el.Prev() {
		v := el.Value.(*Reader)
		if !v.mu.TryLock() {
			continue
		}
		v.dropChunk()
		v.mu.Unlock()
		c.remove(v)
		return true
	}
	return false
}

// touch marks r's chunk most recently used.
func (c *readCache) touch(r *Reader) {
	c.mu.Lock()
	if r.elem != nil {
		c.lru.MoveToFront(r.elem)
	}
	c.mu.Unlock()
}

// forget removes r, which keeps nothing any more.
func (c *readCache) forget(r *Reader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.remove(r)
}

// remove takes r out of the list and gives back what it held. Guarded
// by mu.
func (c *readCache) remove(r *Reader) {
	if r.elem == nil {
		return
	}
	c.lru.Remove(r.elem)
	c.used -= r.held
	r.elem, r.held = nil, 0
	c.freed.Broadcast()
}
