package variant

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// ErrBusy: no slot to make a variant came free within the timeout.
var ErrBusy = errors.New("variant: too many variants being made; retry later")

// ErrRate: the client asked for more new variants than Config.Admit lets
// it; an error of Admit wraps it, and its RateError says how long to
// wait.
var ErrRate = errors.New("variant: too many new variants asked for by this client; retry later")

// RateError is ErrRate with the wait before the client may ask again.
type RateError struct{ Wait time.Duration }

func (e *RateError) Error() string        { return ErrRate.Error() }
func (e *RateError) Is(target error) bool { return target == ErrRate }

// Maker runs the making of variants: one at a time per variant, at most
// Config.Concurrency at once, each within Config.Timeout.
type Maker struct {
	cfg   Config
	slots chan struct{}
	group singleflight.Group

	// made and failed count the runs of Do's fn that returned nil and an
	// error; waiting counts the calls waiting for a slot.
	made, failed, waiting atomic.Int64
}

// NewMaker returns a Maker for cfg (validated; defaults for Concurrency
// 0, MaxPixels 0, MaxBytes 0 and Timeout 0 as in DefaultConfig).
func NewMaker(cfg Config) (*Maker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	def := DefaultConfig()
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = def.Concurrency
	}
	if cfg.MaxPixels <= 0 {
		cfg.MaxPixels = def.MaxPixels
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = def.MaxBytes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = def.Timeout
	}
	if cfg.MaxPerImage <= 0 {
		cfg.MaxPerImage = def.MaxPerImage
	}
	return &Maker{cfg: cfg, slots: make(chan struct{}, cfg.Concurrency)}, nil
}

// Config is the Maker's configuration, defaults filled in.
func (m *Maker) Config() *Config { return &m.cfg }

// Do runs fn for the variant named key (one not stored: Do is for making
// it), unless a run for that key is
// already in flight, whose result it then shares. fn says whether it made
// the variant (false: it found it made, by a run that ended between the
// caller's lookup and this one); only those count as made. fn runs holding one of
// the Config.Concurrency slots, under a context that ends at
// Config.Timeout and is detached from the callers' contexts. A caller whose ctx ends first returns
// ctx's error; the run goes on for the others, or to store its result.
func (m *Maker) Do(ctx context.Context, key string, fn func(ctx context.Context) (v any, made bool, err error)) (any, error) {
	if m.cfg.Admit != nil {
		if err := m.cfg.Admit(ctx); err != nil {
			return nil, err
		}
	}
	ch := m.group.DoChan(key, func() (any, error) {
		runCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.Timeout)
		defer cancel()
		m.waiting.Add(1)
		select {
		case m.slots <- struct{}{}:
			m.waiting.Add(-1)
		case <-runCtx.Done():
			m.waiting.Add(-1)
			return nil, fmt.Errorf("%w (waited %s)", ErrBusy, m.cfg.Timeout)
		}
		defer func() { <-m.slots }()
		v, made, err := fn(runCtx)
		if err != nil {
			m.failed.Add(1)
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("%w: making the variant took over %s", ErrBusy, m.cfg.Timeout)
			}
			return nil, err
		}
		if made {
			m.made.Add(1)
		}
		return v, nil
	})
	select {
	case res := <-ch:
		return res.Val, res.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Stats are a Maker's counters.
type Stats struct {
	// Made and Failed count the variants made and the attempts that
	// failed; Waiting, the requests waiting for a slot now.
	Made, Failed, Waiting int64
}

// Stats returns the Maker's counters.
func (m *Maker) Stats() Stats {
	return Stats{Made: m.made.Load(), Failed: m.failed.Load(), Waiting: m.waiting.Load()}
}
