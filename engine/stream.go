package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/cairnstore/cairn/objstore"
	"github.com/cairnstore/cairn/segment"
)

// streamPart is the size of the parts a growing segment is put in (S3
// wants at least 5 MiB but for the last).
const streamPart = 16 << 20

// streams are the segments being put in parts, by id: a segment that
// grows past streamPart before it is sealed goes up while it is written,
// so that a large upload is in the object store soon after its last byte
// arrives, not a whole segment's put later.
type streams struct {
	e  *Engine
	mu sync.Mutex
	m  map[uint64]*stream
}

// stream is one segment's multipart put. Its parts go up one at a time,
// from the local file, by a goroutine that runs while there is a whole
// part written and not yet put.
type stream struct {
	mp   objstore.Multipart
	end  int64 // written: everything before it is in the file
	sent int64 // put in parts
	busy bool  // a goroutine is putting parts
	done chan struct{}
	err  error // a part failed: the segment is put whole instead
}

// appended is the segment writer's OnAppend: it starts a part once a
// whole one is written. Called with the writer locked: it never blocks.
func (s *streams) appended(id uint64, end int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m[id]
	if st == nil {
		if end < streamPart+segment.FileHeaderSize {
			return
		}
		if s.m == nil {
			s.m = map[uint64]*stream{}
		}
		st = &stream{}
		s.m[id] = st
	}
	st.end = end
	if st.busy || st.err != nil || st.end-st.sent < streamPart {
		return
	}
	st.busy, st.done = true, make(chan struct{})
	go s.run(id, st)
}

// run puts the parts of segment id while whole ones are written.
func (s *streams) run(id uint64, st *stream) {
	e := s.e
	path := e.fs.PathJoin(e.segDir, segment.FileName(id))
	for {
		s.mu.Lock()
		from, n := st.sent, st.end-st.sent
		if st.err != nil || n < streamPart {
			st.busy = false
			close(st.done)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		err := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), objectTimeout+streamPart>>23*time.Second)
			defer cancel()
			if st.mp == nil {
				mp, err := e.opts.Objects.StartMultipart(ctx, objectName(id))
				if err != nil {
					return err
				}
				st.mp = mp
			}
			f, err := e.fs.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			return st.mp.PutPart(ctx, io.NewSectionReader(f, from, streamPart), streamPart)
		}()
		s.mu.Lock()
		if err != nil {
			st.err = err
			e.log.Warn("putting a part of a growing segment; it will be put whole", "segment", segment.FileName(id), "err", err)
		} else {
			st.sent += streamPart
			e.stats.objectPutBytes.Add(streamPart)
		}
		s.mu.Unlock()
	}
}

// finish completes segment id's multipart put with its last part, up to
// size, if it has one going; ok is false when it has none (or one that
// failed, now aborted), and the segment is to be put whole.
func (s *streams) finish(ctx context.Context, id uint64, size int64) (ok bool, err error) {
	s.mu.Lock()
	st := s.m[id]
	delete(s.m, id)
	var done chan struct{}
	if st != nil && st.busy {
		done = st.done
	}
	s.mu.Unlock()
	if st == nil {
		return false, nil
	}
	if done != nil {
		<-done
	}
	if st.mp == nil {
		return false, nil
	}
	if st.err == nil {
		st.err = func() error {
			if rest := size - st.sent; rest > 0 || st.sent == 0 {
				f, err := s.e.fs.Open(s.e.fs.PathJoin(s.e.segDir, segment.FileName(id)))
				if err != nil {
					return err
				}
				defer f.Close()
				if err := st.mp.PutPart(ctx, io.NewSectionReader(f, st.sent, rest), rest); err != nil {
					return err
				}
				s.e.stats.objectPutBytes.Add(uint64(rest))
			}
			return st.mp.Complete(ctx)
		}()
		if st.err == nil {
			s.e.stats.objectStreamed.Add(1)
			return true, nil
		}
	}
	// Drop the parts; the whole segment goes up in one put instead (and
	// a failed abort leaves parts GC aborts after a day).
	actx, cancel := context.WithTimeout(context.Background(), objectTimeout)
	defer cancel()
	if err := st.mp.Abort(actx); err != nil {
		s.e.log.Warn("aborting a failed multipart put", "segment", segment.FileName(id), "err", err)
	}
	if errors.Is(st.err, context.Canceled) || errors.Is(st.err, context.DeadlineExceeded) {
		return false, fmt.Errorf("%w: %w", ErrUnavailable, st.err)
	}
	return false, nil
}

// abortAll aborts the multipart puts still going, at Close: their
// segments were never sealed, so nothing points into them.
func (s *streams) abortAll() {
	s.mu.Lock()
	m := s.m
	s.m = nil
	s.mu.Unlock()
	for id, st := range m {
		if st.done != nil {
			<-st.done
		}
		if st.mp != nil {
			ctx, cancel := context.WithTimeout(context.Background(), objectTimeout)
			if err := st.mp.Abort(ctx); err != nil {
				s.e.log.Warn("aborting the multipart put of an unsealed segment", "segment", segment.FileName(id), "err", err)
			}
			cancel()
		}
	}
}
