package engine

import (
	"container/list"
	"math/bits"
	"sync"

	"github.com/cairnstore/cairn/internal/blob"
)

// readCache keeps chunks that were read from disk and verified, so that
// content read often is not read and hashed again: a hit costs a map
// lookup and a copy. Bytes in memory are trusted: they were checked
// against their BLAKE3 when they were read, and nothing writes to them
// after (scrub and Check never use the cache; they read the disk).
//
// It holds at most Options.ReadCache bytes, counting the chunks being
// read from disk as well as the ones kept: a read reserves its chunk's
// size first, dropping the least recently used chunks no one is copying
// from, or waits for reads in flight to end if nothing is left to drop.
// So neither many downloads starting at once nor slow clients holding
// their downloads open make memory grow with the number of clients: a
// Reader keeps nothing between its reads.
//
// Entries are per scope (an API's namespace and tenant, see OpenRecord):
// one tenant's reads never make another's faster, so the timing of a read
// tells nothing about what others read or store (dedup stays invisible).
type readCache struct {
	mu    sync.Mutex
	freed sync.Cond // signalled when used goes down
	limit int64
	// used is the bytes reserved: chunks being read, and the buffers of
	// the entries in m.
	used int64
	m    map[cacheKey]*cached
	lru  list.List // of *cached, the most recently used first
	hits int64
	// parts are the chunks last read in part, as many as the cache
	// holds chunks of the average size, oldest first: a chunk read in
	// part again while it is among them is read whole and kept
	// (partAgain). So a range read once costs its range, and one read
	// again is served from memory, without a one-off range filling the
	// cache.
	parts    map[cacheKey]int // → its place in partRing
	partRing []cacheKey
	partNext int
}

type cacheKey struct {
	scope string
	id    blob.ID
}

// cached is one verified chunk: data, within buf (whose capacity is what
// it counts for).
type cached struct {
	key  cacheKey
	buf  *[]byte
	data []byte
	// users are the copies in progress from data; an entry in use is not
	// dropped.
	users int
	elem  *list.Element
}

func (c *readCache) init(limit int64) {
	c.limit = limit
	c.freed.L = &c.mu
	c.m = make(map[cacheKey]*cached)
	c.parts = make(map[cacheKey]int)
	c.partRing = make([]cacheKey, max(16, limit/(1<<20)))
}

// partAgain reports whether k was read in part recently, and if not,
// records that it is now.
func (c *readCache) partAgain(k cacheKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.parts[k]; ok {
		delete(c.parts, k)
		return true
	}
	if old := c.partRing[c.partNext]; c.parts[old] == c.partNext {
		delete(c.parts, old)
	}
	c.partRing[c.partNext] = k
	c.parts[k] = c.partNext
	c.partNext = (c.partNext + 1) % len(c.partRing)
	return false
}

// get returns the entry of k, most recently used now, in use until done
// is called; or nil.
func (c *readCache) get(k cacheKey) *cached {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.m[k]
	if v != nil {
		v.users++
		c.lru.MoveToFront(v.elem)
		c.hits++
	}
	return v
}

// has reports whether k is cached.
func (c *readCache) has(k cacheKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k] != nil
}

// done ends one use of v, which a reserve waiting for memory may now
// drop.
func (c *readCache) done(v *cached) {
	c.mu.Lock()
	v.users--
	if v.users == 0 {
		c.freed.Broadcast()
	}
	c.mu.Unlock()
}

// reserve waits until n more bytes fit, dropping entries least recently
// used first, and reserves them. A chunk larger than the whole budget is
// let through when nothing else is reserved.
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

// add keeps data (within buf, read for reserved bytes) as the entry of k
// and returns it in use. If another read added k first, that entry is
// returned and buf is given back.
func (c *readCache) add(k cacheKey, buf *[]byte, data []byte, reserved int64) *cached {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v := c.m[k]; v != nil {
		c.used -= reserved
		c.freed.Broadcast()
		putBuffer(buf)
		v.users++
		c.lru.MoveToFront(v.elem)
		return v
	}
	v := &cached{key: k, buf: buf, data: data, users: 1}
	v.elem = c.lru.PushFront(v)
	c.m[k] = v
	c.used += int64(cap(*buf)) - reserved
	// The buffer may be a little larger than what was reserved.
	for c.used > c.limit && c.dropOne() {
	}
	return v
}

// dropOne drops the least recently used entry not in use; it reports
// whether there was one. Guarded by mu. No one holds its bytes (users is
// 0), so its buffer goes back to be read into again.
func (c *readCache) dropOne() bool {
	for el := c.lru.Back(); el != nil; el = el.Prev() {
		v := el.Value.(*cached)
		if v.users > 0 {
			continue
		}
		c.lru.Remove(el)
		delete(c.m, v.key)
		c.used -= int64(cap(*v.buf))
		c.freed.Broadcast()
		putBuffer(v.buf)
		return true
	}
	return false
}

// buffers are chunk-sized read buffers by size class (bufferClass), so
// that a cache whose chunks keep being dropped and read again does not
// allocate a chunk each time.
var buffers [64]sync.Pool

// bufferClass returns the class of a buffer for n bytes and its size:
// 4 KiB, then four sizes per power of two (a buffer is at most a quarter
// larger than asked for).
func bufferClass(n int) (class, size int) {
	if n <= 4<<10 {
		return 0, 4 << 10
	}
	k := bits.Len(uint(n-1)) - 1 // 1<<k < n <= 1<<(k+1)
	step := 1 << (k - 2)
	q := (n - 1<<k + step - 1) / step // 1 to 4
	return (k-12)*4 + q, 1<<k + q*step
}

// getBuffer returns an empty buffer for n bytes.
func getBuffer(n int) *[]byte {
	class, size := bufferClass(n)
	if class < len(buffers) {
		if b, ok := buffers[class].Get().(*[]byte); ok {
			*b = (*b)[:0]
			return b
		}
	}
	b := make([]byte, 0, size)
	return &b
}

// putBuffer gives back a buffer no one reads any more.
func putBuffer(b *[]byte) {
	if class, size := bufferClass(cap(*b)); size == cap(*b) && class < len(buffers) {
		buffers[class].Put(b)
	}
}

// stats returns the bytes held and the hits so far.
func (c *readCache) stats() (used, hits int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used, c.hits
}
