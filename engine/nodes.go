package engine

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cairnstore/cairn/index"
	"github.com/cairnstore/cairn/segment"
)

// Several nodes, one store. With the index in PostgreSQL and the
// segments in a bucket (e.shared), any number of processes, each with a
// data folder of its own (a cache), may have the store open at once.
// What one process guarantees with memory, they guarantee through the
// index:
//
//   - Transactions: each node's stripe locks order its own; a commit
//     carries what it read, and fails with index.ErrConflict if another
//     node committed over it, and Update redoes it (tx.expectations).
//   - Segment IDs come from a sequence in the database, a block at a
//     time, so each node's are its own and grow.
//   - Pins are in each node's memory, so no node releases a blob or
//     chunk the moment its last reference goes: it gets a zero-reference
//     entry, and GC releases it once it has been so for GCGrace. An
//     upload that found a chunk stored relies on it for that long (one
//     that takes longer is refused, 503, rather than losing bytes); one
//     that finds it unreferenced stores the bytes again. A reader of a
//     blob deleted meanwhile reads on for as long.
//   - Compaction takes a segment only once it was sealed GCGrace ago,
//     so its writer has committed what it appended (an upload slower
//     than that is refused at commit: the segment is retired). A
//     segment compacted away is retired, not deleted: its object goes a
//     grace period later, as readers elsewhere may still be reading it.
//   - GC, the expiry sweeper and the scheduled scrub run on one node at a
//     time, under leases in the database that move to another node when
//     their holder stops renewing them.
//   - Recovery leaves alone the segment objects the index does not know:
//     another node may have just put one. GC deletes those older than the
//     grace period.

const (
	// segmentSequence names the database sequence of segment IDs.
	segmentSequence = "segment"
	// segmentIDBlock is how many IDs a node takes at a time.
	segmentIDBlock = 64
	// leaseTTL is how long a lease lasts unless renewed; a holder renews
	// it every third of that.
	leaseTTL = 30 * time.Second
)

// Lease names.
const (
	LeaseGC     = "gc"
	LeaseExpiry = "expiry"
	LeaseScrub  = "scrub"
)

// idBlock is the segment IDs a node has taken and not used.
type idBlock struct {
	mu        sync.Mutex
	next, end uint64
}

// nodeName names this process to the other nodes.
func nodeName() string {
	host, _ := os.Hostname()
	var r [4]byte
	rand.Read(r[:])
	return fmt.Sprintf("%s/%d/%x", host, os.Getpid(), r)
}

// nextSegmentID is the segment writer's NextID: after+1 for a store one
// process has, else the next of this node's block of IDs.
func (e *Engine) nextSegmentID(after uint64) (uint64, error) {
	if !e.shared {
		return after + 1, nil
	}
	e.ids.mu.Lock()
	defer e.ids.mu.Unlock()
	if e.ids.next <= after || e.ids.next >= e.ids.end {
		first, err := e.idx.NextIDs(segmentSequence, after+1, segmentIDBlock)
		if err != nil {
			return 0, err
		}
		e.ids.next, e.ids.end = first, first+segmentIDBlock
	}
	id := e.ids.next
	e.ids.next++
	return id, nil
}

// Node names this process to the others sharing its store (the holder of
// its leases).
func (e *Engine) Node() string { return e.node }

// Shared reports whether other nodes may have the store open at once.
func (e *Engine) Shared() bool { return e.shared }

// errLeaseLost ends a pass whose lease another node took (this one did
// not renew it in time).
var errLeaseLost = errors.New("engine: the lease was lost")

// WithLease runs fn holding the lease name, renewed while fn runs, so
// that no other node runs it meanwhile; held is false, and fn not run,
// if another node holds it. fn's context ends if the lease is lost. For
// a store one process has, fn just runs.
func (e *Engine) WithLease(ctx context.Context, name string, fn func(context.Context) error) (held bool, err error) {
	if !e.shared {
		return true, fn(ctx)
	}
	ok, err := e.idx.Lease(name, e.node, leaseTTL)
	if err != nil || !ok {
		return false, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(leaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			if ok, err := e.idx.Lease(name, e.node, leaseTTL); err == nil && !ok {
				cancel(errLeaseLost)
				return
			}
		}
	}()
	err = fn(ctx)
	close(done)
	wg.Wait()
	if cause := context.Cause(ctx); errors.Is(cause, errLeaseLost) && err != nil {
		err = fmt.Errorf("%w: %s, held too long: %w", errLeaseLost, name, err)
	}
	if rerr := e.idx.ReleaseLease(name, e.node); rerr != nil {
		e.log.Warn("releasing a lease", "lease", name, "err", rerr)
	}
	return true, err
}

// LeaseHolder returns the node holding lease name, if one does.
func (e *Engine) LeaseHolder(name string) (string, bool, error) {
	return e.idx.LeaseHolder(name)
}

// retireSegment removes an empty segment's index entries and records it
// retired, if still empty: its object is deleted a grace period later
// (deleteRetired). Reports whether it did.
func (e *Engine) retireSegment(seg index.Segment) (bool, error) {
	b := e.idx.NewBatch()
	b.ExpectLive(seg)
	b.DeleteSegment(seg.ID)
	b.SetRetired(seg.ID, e.opts.Now().UnixNano())
	err := b.Commit()
	if errors.Is(err, index.ErrConflict) {
		return false, nil // a commit added a chunk meanwhile: a later pass
	}
	if err != nil {
		return false, e.fail(err)
	}
	return true, nil
}

// deleteRetired deletes the objects of segments retired over a grace
// period ago, and the objects of segments the index does not know (a
// node died between putting one and recording it) put over a day ago.
func (e *Engine) deleteRetired(ctx context.Context) error {
	before := e.opts.Now().Add(-e.opts.GCGrace)
	retired := map[uint64]bool{}
	var due []uint64
	for r, err := range e.idx.Retired() {
		if err != nil {
			return corrupt(err)
		}
		retired[r.ID] = true
		if !r.Deleted && r.At <= before.UnixNano() {
			due = append(due, r.ID)
		}
	}
	for _, id := range due {
		if err := e.opts.Objects.Delete(ctx, objectName(id)); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		b := e.idx.NewBatch()
		b.SetRetiredDeleted(id)
		if err := b.Commit(); err != nil {
			return e.fail(err)
		}
	}
	segs, err := e.idx.Segments()
	if err != nil {
		return corrupt(err)
	}
	known := map[uint64]bool{}
	for _, s := range segs {
		known[s.ID] = s.Sealed > 0
	}
	objs, err := e.opts.Objects.List(ctx, "segments/")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	// An object put and not yet recorded may be a node's in flight: one
	// is taken for a dead node's after a day at least, whatever GCGrace.
	orphan := e.opts.Now().Add(-max(e.opts.GCGrace, 24*time.Hour))
	for _, o := range objs {
		id, ok := segment.ParseFileName(strings.TrimPrefix(o.Name, "segments/"))
		if !ok || known[id] || retired[id] || o.Modified.After(orphan) {
			continue
		}
		// Looked up again: it may have been recorded since the list.
		if sealed, err := e.sealedSegment(id); err != nil || sealed {
			continue
		}
		e.log.Warn("deleting a segment object the index never recorded (its node died first)", "object", o.Name)
		if err := e.opts.Objects.Delete(ctx, o.Name); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
	}
	return nil
}

// sealedSegment reports whether the index records segment id as sealed.
func (e *Engine) sealedSegment(id uint64) (bool, error) {
	segs, err := e.idx.Segments()
	if err != nil {
		return false, err
	}
	for _, s := range segs {
		if s.ID == id {
			return s.Sealed > 0, nil
		}
	}
	return false, nil
}

// RateOp is what Rate does with a token bucket: index.RatePeek,
// RateAllow or RateTake.
type RateOp = index.RateOp

// The RateOps.
const (
	RatePeek  = index.RatePeek
	RateAllow = index.RateAllow
	RateTake  = index.RateTake
)

// Rate applies op to the token bucket key, kept where every node of a
// shared store sees it (index.DB.Rate): the rate limits that must hold
// for the deployment, not each node (failed sign-ins). ErrInvalid for a
// store one process has (it keeps its buckets in memory).
func (e *Engine) Rate(key string, perSecond, burst float64, now time.Time, op RateOp) (bool, time.Duration, error) {
	if !e.shared {
		return false, 0, fmt.Errorf("%w: shared rate limits need a shared store", ErrInvalid)
	}
	return e.idx.Rate(key, perSecond, burst, now, op)
}

// Mark records, where every node sees it, that key happened at now;
// Marked returns when it last did.
func (e *Engine) Mark(key string, now time.Time) error {
	if !e.shared {
		return fmt.Errorf("%w: shared marks need a shared store", ErrInvalid)
	}
	return e.idx.Mark(key, now)
}

// Marked returns when key was last marked (Mark).
func (e *Engine) Marked(key string) (time.Time, bool, error) {
	if !e.shared {
		return time.Time{}, false, fmt.Errorf("%w: shared marks need a shared store", ErrInvalid)
	}
	return e.idx.Marked(key)
}
