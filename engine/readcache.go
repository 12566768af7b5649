package engine

import (
	"container/list"
	"sync"
)

// readCache bounds the memory open Readers keep. A Reader keeps the last
// chunk it decoded and verified, so that the many small reads of one
// download decode and verify each chunk once; but a download whose client
// reads slowly would keep its chunk (up to MaxChunk, 4 MiB) for as long
// as it stays open, and memory would grow with the number of slow
// clients. Across all Readers the kept chunks are at most
// Options.ReadCache bytes: keeping one more drops the least recently used
// others', which read their chunk again if they come back to it.
//
// Lock order: readCache.mu before Reader.mu, which it only ever tries
// (TryLock): a Reader never calls the cache while it holds its own mu.
type readCache struct {
	mu    sync.Mutex
	limit int64
	// used is the sum of held over the Readers in lru.
	used int64
	// lru holds the Readers keeping a chunk, the most recently used first.
	lru list.List
}

// keep records that r now keeps n bytes, most recently used, and drops
// the least recently used other Readers' chunks while the total is over
// the limit.
func (c *readCache) keep(r *Reader, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.elem == nil {
		r.elem = c.lru.PushFront(r)
	} else {
		c.lru.MoveToFront(r.elem)
	}
	c.used += n - r.held
	r.held = n
	for el := c.lru.Back(); c.used > c.limit && el != nil && el != r.elem; {
		prev := el.Prev()
		v := el.Value.(*Reader)
		if v.mu.TryLock() { // busy copying out of it: leave it this time
			v.dropChunk()
			v.mu.Unlock()
			c.remove(v)
		}
		el = prev
	}
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

// remove takes r out of the list. Guarded by mu.
func (c *readCache) remove(r *Reader) {
	if r.elem == nil {
		return
	}
	c.lru.Remove(r.elem)
	c.used -= r.held
	r.elem, r.held = nil, 0
}
