package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

var (
	// ErrTooMany: the client already runs as many uploads (or downloads)
	// as it may at once, and none ended in time. Status answers 429.
	ErrTooMany = errors.New("too many at once from this client")
	// ErrBusy: the share every anonymous client draws from stayed taken.
	// Status answers 503.
	ErrBusy = errors.New("the server is busy")
)

// Limits are what one client may take of the server, shared by all the
// APIs of one server: the server makes them from its configuration and
// passes them to each API.
type Limits struct {
	// Uploads shares streaming uploads out between clients.
	Uploads *Slots
	// Downloads bounds the downloads one client address runs at once.
	Downloads *Slots
	// Logins slows down password guessing.
	Logins *Logins
}

// WithDefaults returns l with the limits it lacks made with their
// defaults (an API used on its own, in a test).
func (l Limits) WithDefaults() Limits {
	if l.Uploads == nil {
		l.Uploads = NewSlots(SlotsConfig{})
	}
	if l.Downloads == nil {
		l.Downloads = NewSlots(SlotsConfig{PerClient: 64})
	}
	if l.Logins == nil {
		l.Logins = NewLogins(LoginsConfig{})
	}
	return l
}

// Client is who takes a slot: an authenticated identity, or the address
// of an anonymous request.
type Client struct {
	// Key names the client: "<api>:<identity>", or the address.
	Key string
	// Anonymous clients share one pool as well as each having a cap.
	Anonymous bool
}

// Identity is an authenticated client of an API.
func Identity(api, id string) Client { return Client{Key: api + ":" + id} }

// Anonymous is the client of an unauthenticated request: its address.
func Anonymous(r *http.Request) Client { return Client{Key: ClientAddr(r), Anonymous: true} }

// Address is a request's client by its address alone, signed in or not:
// what downloads are counted against.
func Address(r *http.Request) Client { return Client{Key: ClientAddr(r)} }

// SlotsConfig sets the shares of a Slots; zero fields take the defaults.
type SlotsConfig struct {
	// PerClient bounds what one authenticated identity runs at once;
	// default 16.
	PerClient int
	// PerAddress bounds what one anonymous address runs at once;
	// default 4.
	PerAddress int
	// Anonymous bounds what all anonymous clients run together; default
	// 16. The rest of the server's capacity is for clients who signed in.
	Anonymous int
	// Wait is how long Acquire waits for a slot before it gives up;
	// default 30 seconds.
	Wait time.Duration
}

// Slots shares out something a server can run only so many of at once
// (streaming uploads, each with its chunking buffer): one client cannot
// take more than its share, and anonymous clients together cannot take
// more than theirs, so whoever signed in keeps the rest. A request waits
// a bounded time for a slot, never longer. Safe for concurrent use.
type Slots struct {
	cfg SlotsConfig

	mu   sync.Mutex
	held map[string]int // slots held per client key
	anon int            // slots held by anonymous clients
	// freed is closed, and replaced, each time a slot is released.
	freed chan struct{}
}

// NewSlots returns slots shared out as cfg says.
func NewSlots(cfg SlotsConfig) *Slots {
	if cfg.PerClient <= 0 {
		cfg.PerClient = 16
	}
	if cfg.PerAddress <= 0 {
		cfg.PerAddress = 4
	}
	if cfg.Anonymous <= 0 {
		cfg.Anonymous = 16
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 30 * time.Second
	}
	return &Slots{cfg: cfg, held: map[string]int{}, freed: make(chan struct{})}
}

// Acquire takes a slot for c, waiting up to the configured time for one;
// call release once the work is done. It fails with ErrTooMany when c's
// own share stayed full, ErrBusy when the anonymous share did.
func (s *Slots) Acquire(ctx context.Context, c Client) (release func(), err error) {
	var timeout <-chan time.Time
	for {
		s.mu.Lock()
		blocked := s.blocked(c)
		if blocked == nil {
			s.held[c.Key]++
			if c.Anonymous {
				s.anon++
			}
			s.mu.Unlock()
			var once sync.Once
			return func() { once.Do(func() { s.release(c) }) }, nil
		}
		freed := s.freed
		s.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(s.cfg.Wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-freed:
		case <-timeout:
			return nil, fmt.Errorf("%w (waited %v)", blocked, s.cfg.Wait)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// blocked says why c cannot have a slot now, or nil. Guarded by mu.
func (s *Slots) blocked(c Client) error {
	limit := s.cfg.PerClient
	if c.Anonymous {
		limit = s.cfg.PerAddress
	}
	switch {
	case s.held[c.Key] >= limit:
		return ErrTooMany
	case c.Anonymous && s.anon >= s.cfg.Anonymous:
		return ErrBusy
	}
	return nil
}

func (s *Slots) release(c Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[c.Key]--; s.held[c.Key] <= 0 {
		delete(s.held, c.Key)
	}
	if c.Anonymous {
		s.anon--
	}
	close(s.freed)
	s.freed = make(chan struct{})
}

// ClientAddr is the address a request's client is counted against: the
// peer's IP address; for IPv6, its /64 network, which one host usually
// has whole.
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
