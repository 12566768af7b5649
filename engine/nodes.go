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
//   - Pins: each node pins in memory, as one process does, and publishes
//     in the database its horizon, the start of its oldest upload or
//     reader in flight (see below). No node releases a blob or chunk the
//     moment its last reference goes: it gets a zero-reference entry,
//     and GC releases it once it has been so since before every node's
//     horizon and the grace period. An upload that finds a chunk
//     unreferenced stores the bytes again instead of relying on it.
//   - Compaction takes a segment only once it was sealed before every
//     horizon (its writer has committed what it appended) and the grace
//     period. A segment compacted away is retired, not deleted: its
//     object goes once it was retired before every horizon too.
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
	limit, err := e.gcLimit()
	if err != nil {
		return err
	}
	before := time.Unix(0, limit)
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

// Pins across nodes. Each node publishes in the database, every
// heartbeatEvery, its horizon: a time no upload or reader of its own in
// flight began before, and none will begin before later (the oldest
// in-flight one's start, or now). GC takes the earliest horizon of the
// live nodes as the limit of what it may take:
//
//   - a blob or chunk unreferenced since before it: an upload that found
//     it stored found it referenced, so after the upload began, and a
//     reader opened it earlier still;
//   - a segment sealed before it: every upload that wrote into it has
//     committed or failed;
//   - a retired segment's object, retired before it: no reader that might
//     hold a location in it is left.
//
// So an upload or a download on one node, however long, never loses
// what it relies on to another node's GC. A node whose heartbeat stops
// (dead, or cut off from the database) stops counting after nodeTTL; if
// it was only cut off, its commits check what they rely on anyway
// (expectations, ExpectNotRetired) and are refused rather than
// corrupting anything.

const (
	heartbeatEvery = 2 * time.Second
	nodeTTL        = 30 * time.Second
)

// inflight is when this node's uploads and open readers began.
type inflight struct {
	mu  sync.Mutex
	ops map[any]int64
}

func (f *inflight) add(op any, at int64) {
	f.mu.Lock()
	if f.ops == nil {
		f.ops = map[any]int64{}
	}
	f.ops[op] = at
	f.mu.Unlock()
}

func (f *inflight) done(op any) {
	f.mu.Lock()
	delete(f.ops, op)
	f.mu.Unlock()
}

// oldest is when the oldest operation in flight began, or now.
func (f *inflight) oldest(now int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, at := range f.ops {
		now = min(now, at)
	}
	return now
}

// beat runs the heartbeat (startHeartbeat).
type beat struct {
	stop, done chan struct{}
}

// Heartbeat publishes this node's horizon now (a node does so by itself
// every two seconds; tests that move the clock call it).
func (e *Engine) Heartbeat() error {
	if !e.shared {
		return nil
	}
	return e.idx.Heartbeat(e.node, e.inflight.oldest(e.opts.Now().UnixNano()), nodeTTL)
}

// startHeartbeat publishes the horizon, then keeps doing so until Close.
func (e *Engine) startHeartbeat() error {
	if err := e.Heartbeat(); err != nil {
		return err
	}
	e.beat = beat{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(e.beat.done)
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-e.beat.stop:
				return
			case <-t.C:
			}
			if err := e.Heartbeat(); err != nil {
				e.log.Warn("publishing this node's horizon", "err", err)
			}
		}
	}()
	return nil
}

// stopHeartbeat stops publishing and withdraws the horizon.
func (e *Engine) stopHeartbeat() {
	if e.beat.stop == nil {
		return
	}
	close(e.beat.stop)
	<-e.beat.done
	if err := e.idx.Leave(e.node); err != nil {
		e.log.Warn("withdrawing this node's horizon", "err", err)
	}
}

// gcLimit is what GC may take on a shared store: what has been so since
// before the grace period and before every live node's horizon (this
// node's published first, so that its own is current).
func (e *Engine) gcLimit() (int64, error) {
	limit := e.opts.Now().Add(-e.opts.GCGrace).UnixNano()
	if !e.shared {
		return limit, nil
	}
	if err := e.Heartbeat(); err != nil {
		return 0, err
	}
	h, ok, err := e.idx.Horizon()
	if err != nil {
		return 0, err
	}
	if ok {
		limit = min(limit, h-1)
	}
	return limit, nil
}

// NodeInfo and LeaseInfo describe the nodes of a shared store and the
// leases they hold (cairn nodes).
type (
	NodeInfo  = index.NodeInfo
	LeaseInfo = index.LeaseInfo
)

// Nodes lists the nodes of a shared store whose heartbeat is live (this
// one among them); nil for a store one process has.
func (e *Engine) Nodes() ([]NodeInfo, error) { return e.idx.Nodes() }

// Leases lists the leases held now.
func (e *Engine) Leases() ([]LeaseInfo, error) { return e.idx.Leases() }
