package engine

import (
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"slices"
	"sync"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/internal/blob"
)

// numStripes is the number of lock stripes. Keys of different stripes are
// updated concurrently (and their index commits share WAL syncs); keys of
// one stripe take turns.
const numStripes = 1024

// stripe guards the index entries of the keys that hash to it, and the pins
// on them.
type stripe struct {
	mu sync.Mutex
	// pins counts, per blob or chunk, the operations relying on it staying
	// stored until they are done: an upload that found a chunk stored and
	// will reference it at commit, or an open reader of a blob. A pinned
	// entry whose references drop to zero is kept (with a zero-reference
	// entry for GC) instead of released. Guarded by mu.
	pins map[pinKey]int
}

type pinKey struct {
	kind index.ZeroKind
	id   blob.ID
}

type stripes struct {
	s    [numStripes]stripe
	seed maphash.Seed
}

func newStripes() *stripes { return &stripes{seed: maphash.MakeSeed()} }

func (s *stripes) ofID(kind index.ZeroKind, id blob.ID) int {
	// IDs are uniformly distributed already; the kind separates a blob and
	// a chunk with the same ID (a one-chunk blob).
	return int((binary.LittleEndian.Uint64(id[:8]) + uint64(kind)) % numStripes)
}

func (s *stripes) ofRecord(k index.RecordKey) int {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(k.Namespace)
	h.WriteByte(0)
	h.WriteString(k.Tenant)
	h.WriteByte(0)
	h.WriteString(k.Name)
	return int(h.Sum64() % numStripes)
}

// pin and unpin must be called with the stripe's mutex held.
func (st *stripe) pin(k pinKey) {
	if st.pins == nil {
		st.pins = map[pinKey]int{}
	}
	st.pins[k]++
}

func (st *stripe) unpin(k pinKey) {
	if n := st.pins[k]; n <= 1 {
		delete(st.pins, k)
	} else {
		st.pins[k] = n - 1
	}
}

func (st *stripe) pinned(k pinKey) bool { return st.pins[k] > 0 }

// withStripe runs fn with stripe i locked.
func (s *stripes) withStripe(i int, fn func(*stripe)) {
	st := &s.s[i]
	st.mu.Lock()
	defer st.mu.Unlock()
	fn(st)
}

// lockSet is the stripes one transaction holds. Stripes are acquired in
// increasing order, which cannot deadlock; a stripe below the highest one
// held is only tried (TryLock). When that fails the transaction releases
// everything and starts over holding the whole set it needed, in order.
type lockSet struct {
	s    *stripes
	held [numStripes / 64]uint64
	top  int // highest held, or -1
	want []int
}

func newLockSet(s *stripes) *lockSet { return &lockSet{s: s, top: -1} }

func (l *lockSet) has(i int) bool { return l.held[i/64]&(1<<(i%64)) != 0 }

func (l *lockSet) mark(i int) {
	l.held[i/64] |= 1 << (i % 64)
	l.top = max(l.top, i)
}

// acquire locks stripe i, or reports false (and remembers i) when that
// would break the order and the stripe is busy.
func (l *lockSet) acquire(i int) bool {
	if l.has(i) {
		return true
	}
	if i > l.top {
		l.s.s[i].mu.Lock()
		l.mark(i)
		return true
	}
	if l.s.s[i].mu.TryLock() {
		l.mark(i)
		return true
	}
	l.want = append(l.want, i)
	return false
}

// list returns the held stripes and the wanted ones, sorted.
func (l *lockSet) list() []int {
	var out []int
	for w, word := range l.held {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			out = append(out, w*64+b)
			word &^= 1 << b
		}
	}
	out = append(out, l.want...)
	slices.Sort(out)
	return slices.Compact(out)
}

// lockAll locks sorted stripes in order; the set must be empty.
func (l *lockSet) lockAll(sorted []int) {
	for _, i := range sorted {
		l.s.s[i].mu.Lock()
		l.mark(i)
	}
}

func (l *lockSet) unlockAll() {
	for w, word := range l.held {
		for word != 0 {
			b := bits.TrailingZeros64(word)
			l.s.s[w*64+b].mu.Unlock()
			word &^= 1 << b
		}
		l.held[w] = 0
	}
	l.top = -1
	l.want = l.want[:0]
}
