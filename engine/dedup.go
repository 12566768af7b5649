package engine

import (
	"context"
	"math"
	"runtime"
	"sync/atomic"
	"time"
)

// Deduplication works across tenants, so an upload of bytes someone else
// stored writes nothing and syncs nothing, and would return sooner than
// one of new bytes: a client timing its uploads would learn whether
// anyone stored those bytes (DESIGN.md invariant 9). Unless
// Options.RevealDedup, an upload that found chunks stored waits, after it
// gave back its upload slot, about as long as writing them would have
// taken: their bytes at the recent cost of compressing and appending a
// byte, and, if it wrote nothing at all, a recent segment sync (none for
// a content small enough to have been kept in the index, Options.InlineMax). The
// costs are running averages over the uploads that did write.

// writeCost holds the running averages, as float64 bits.
type writeCost struct {
	perByte atomic.Uint64 // nanoseconds to compress and append one byte
	sync    atomic.Uint64 // nanoseconds a segment sync took
}

// Until an upload has written: about 200 MB/s, and a 2 ms sync.
const (
	defaultPerByte = 5.0
	defaultSync    = 2e6
	// maxPad bounds the wait, whatever the averages say.
	maxPad = 5 * time.Second
)

// average folds sample into the running average v; the first sample is
// the average.
func average(v *atomic.Uint64, sample float64) {
	avg := sample
	if old := math.Float64frombits(v.Load()); old > 0 {
		avg = 0.8*old + 0.2*sample
	}
	v.Store(math.Float64bits(avg))
}

func current(v *atomic.Uint64, dflt float64) float64 {
	if x := math.Float64frombits(v.Load()); x > 0 {
		return x
	}
	return dflt
}

// observe records an upload that wrote bytes in writing nanoseconds and
// synced in sync.
func (c *writeCost) observe(bytes, writing int64, sync time.Duration) {
	if bytes > 0 {
		average(&c.perByte, float64(writing)/float64(bytes))
	}
	average(&c.sync, float64(sync))
}

// pad is how much longer writing u's stored chunks would have taken. A
// content of one chunk of at most inlineMax bytes would have been kept in
// the index, with no segment sync.
func (c *writeCost) pad(u *Upload, inlineMax int) time.Duration {
	if u.dedup == 0 || u.again != nil {
		return 0
	}
	ns := float64(u.dedup) * current(&c.perByte, defaultPerByte)
	if u.written == 0 && (len(u.chunks) > 1 || u.size > int64(inlineMax)) {
		ns += current(&c.sync, defaultSync)
	}
	return min(time.Duration(ns), maxPad)
}

// spinLast is the end of a wait spent yielding rather than asleep: a
// timer fires up to a millisecond late, which would tell a small
// duplicate upload from a new one as surely as not waiting would.
const spinLast = 1500 * time.Microsecond

// hideDedup waits as writing u's stored chunks would have, or until ctx
// ends.
func (e *Engine) hideDedup(ctx context.Context, u *Upload) {
	d := e.writeCost.pad(u, e.opts.InlineMax)
	if d <= 0 {
		return
	}
	deadline := time.Now().Add(d)
	if d > spinLast {
		t := time.NewTimer(d - spinLast)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		runtime.Gosched()
	}
}
