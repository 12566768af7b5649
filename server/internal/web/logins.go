package web

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/cairnstore/cairn/engine"
)

// LoginsConfig sets how many failed sign-ins Logins lets through; zero
// fields take the defaults.
type LoginsConfig struct {
	// PerAddress: failed sign-ins one client address may make a minute,
	// whatever identity it tries, in bursts of as many; default 10.
	PerAddress float64
	// PerIdentity: failed sign-ins an identity may take a minute from
	// addresses that never signed in as it, in bursts of six times as
	// many (so that one address alone, stopped by PerAddress first, does
	// not stop the identity for everyone); default 5.
	PerIdentity float64
	// Known is how long an address that signed in as an identity stays
	// exempt from that identity's limit; default 30 days.
	Known time.Duration
	// Engine, if its store is shared by several nodes, keeps the counts
	// and the addresses known, so that the limits hold for the whole
	// deployment, not each node.
	Engine *engine.Engine
}

// Logins slows down password guessing: a client address that keeps
// failing, whichever identities it tries, and an identity that keeps
// being failed at, from however many addresses. Once either has used up
// its failures, attempts are refused (429, with how long to wait) before
// the password is even checked, so guessing costs the server nothing.
//
// An attacker cannot use it to lock the real user out for good: the
// identity's limit does not apply to addresses that have signed in as it
// (for Known), so its owner goes on signing in from where they always do;
// from a new address they wait at most the minute or so a failure takes
// to come back. Safe for concurrent use.
type Logins struct {
	cfg LoginsConfig

	mu    sync.Mutex
	addr  *Rate
	ident *Rate
	// known are the identity\x00address pairs that signed in, and when.
	known map[string]time.Time
	swept time.Time
}

// NewLogins returns a limiter of failed sign-ins.
func NewLogins(cfg LoginsConfig) *Logins {
	if cfg.PerAddress <= 0 {
		cfg.PerAddress = 10
	}
	if cfg.PerIdentity <= 0 {
		cfg.PerIdentity = 5
	}
	if cfg.Known <= 0 {
		cfg.Known = 30 * 24 * time.Hour
	}
	return &Logins{
		cfg:   cfg,
		addr:  NewRate(cfg.PerAddress, int(max(1, cfg.PerAddress))).SharedBy("logins.address", cfg.Engine),
		ident: NewRate(cfg.PerIdentity, int(max(1, 6*cfg.PerIdentity))).SharedBy("logins.identity", cfg.Engine),
		known: map[string]time.Time{},
	}
}

// maxKnown bounds the pairs remembered; past it the oldest are forgotten.
const maxKnown = 100_000

// Allow reports whether a sign-in as identity from addr may be tried at
// now; if not, it returns how long to wait. identity is named by the API
// ("storageapi:ann@example.com"), known to exist or not.
func (l *Logins) Allow(addr, identity string, now time.Time) (bool, time.Duration) {
	if ok, wait := l.addr.Peek(addr, now); !ok {
		return false, wait
	}
	if l.isKnown(addr, identity, now) {
		return true, 0
	}
	return l.ident.Peek(identity, now)
}

// Failed records a failed sign-in.
func (l *Logins) Failed(addr, identity string, now time.Time) {
	l.addr.Take(addr, now)
	if !l.isKnown(addr, identity, now) {
		l.ident.Take(identity, now)
	}
}

// Succeeded records a sign-in: addr is known for identity from now on.
func (l *Logins) Succeeded(addr, identity string, now time.Time) {
	if e := l.cfg.Engine; e != nil && e.Shared() {
		if err := e.Mark("known:"+identity+"\x00"+addr, now); err != nil {
			slog.Warn("recording a sign-in's address", "err", err)
		}
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Hour || len(l.known) >= maxKnown {
		l.swept = now
		for k, at := range l.known {
			if now.Sub(at) > l.cfg.Known {
				delete(l.known, k)
			}
		}
		if len(l.known) >= maxKnown {
			clear(l.known)
		}
	}
	l.known[identity+"\x00"+addr] = now
}

func (l *Logins) isKnown(addr, identity string, now time.Time) bool {
	if e := l.cfg.Engine; e != nil && e.Shared() {
		at, ok, err := e.Marked("known:" + identity + "\x00" + addr)
		return err == nil && ok && now.Sub(at) <= l.cfg.Known
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.known[identity+"\x00"+addr]
	return ok && now.Sub(at) <= l.cfg.Known
}

// Rate is a token bucket per key (a client address, an identity).
// Buckets idle long enough to have refilled are dropped, so the map stays
// bounded by the keys active in the last few minutes. Safe for
// concurrent use.
type Rate struct {
	// shared, if set, keeps the buckets (named name:key) where every
	// node of the store sees them (SharedBy).
	shared *engine.Engine
	name   string

	mu      sync.Mutex
	every   rate.Limit
	burst   int
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

// NewRate allows perMinute events per key, in bursts of up to burst.
func NewRate(perMinute float64, burst int) *Rate {
	return &Rate{every: rate.Limit(perMinute / 60), burst: burst, buckets: map[string]*bucket{}}
}

// SharedBy makes the limit hold for every node of e's store together,
// if several share it: the buckets, named name:key, are kept in its
// index's database (engine.Engine.Rate). Otherwise it does nothing.
func (l *Rate) SharedBy(name string, e *engine.Engine) *Rate {
	if e != nil && e.Shared() {
		l.shared, l.name = e, name
	}
	return l
}

// sharedOp is Allow, Peek or Take on the shared bucket. A database that
// does not answer fails closed: a second's wait (the request itself
// would need the database too).
func (l *Rate) sharedOp(key string, now time.Time, op engine.RateOp) (bool, time.Duration) {
	ok, wait, err := l.shared.Rate(l.name+":"+key, float64(l.every), float64(l.burst), now, op)
	if err != nil {
		return false, time.Second
	}
	return ok, wait
}

// Allow takes one event for key at now; when none is left it returns
// false and how long until one is.
func (l *Rate) Allow(key string, now time.Time) (bool, time.Duration) {
	if l.shared != nil {
		return l.sharedOp(key, now, engine.RateAllow)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucket(key, now)
	r := b.l.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Hour
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Peek reports whether key has an event left at now, without taking it;
// if not, how long until it has.
func (l *Rate) Peek(key string, now time.Time) (bool, time.Duration) {
	if l.shared != nil {
		return l.sharedOp(key, now, engine.RatePeek)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		return true, 0
	}
	if t := b.l.TokensAt(now); t < 1 {
		return false, time.Duration((1 - t) / float64(l.every) * float64(time.Second))
	}
	return true, 0
}

// Take takes an event for key at now, whether or not one is left.
func (l *Rate) Take(key string, now time.Time) {
	if l.shared != nil {
		l.sharedOp(key, now, engine.RateTake)
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bucket(key, now).l.ReserveN(now, 1)
}

// bucket returns key's bucket, made full if it is new. Guarded by mu.
func (l *Rate) bucket(key string, now time.Time) *bucket {
	l.sweep(now)
	b := l.buckets[key]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(l.every, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	return b
}

// sweep drops buckets that are full again, at most once a minute.
// Guarded by mu.
func (l *Rate) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Minute {
		return
	}
	l.swept = now
	refill := time.Duration(math.Ceil(float64(l.burst)/float64(l.every))) * time.Second
	for key, b := range l.buckets {
		if now.Sub(b.seen) > refill {
			delete(l.buckets, key)
		}
	}
}

// RetryAfter is a wait as the Retry-After header gives it: whole seconds,
// at least one.
func RetryAfter(wait time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(wait.Seconds()))))
}

// ErrThrottled: a sign-in was not even tried, after too many failed ones
// from the client's address or at the identity. The error is a
// *ThrottledError, which says how long to wait; Status answers 429.
var ErrThrottled = errors.New("too many failed sign-ins; retry later")

// ErrSignIn: the credentials of a sign-in are wrong (the identity is
// unknown, or the secret is not its own: the two are not told apart).
var ErrSignIn = errors.New("the credentials do not authenticate")

// ThrottledError is ErrThrottled with the wait before the next try.
type ThrottledError struct{ Wait time.Duration }

func (e *ThrottledError) Error() string        { return ErrThrottled.Error() }
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// SignIn tries one sign-in as identity ("storageapi:ann@example.com")
// from r's client address: verify checks the credentials, and is not
// called at all when the address or the identity failed too often
// (*ThrottledError). It returns nil or ErrSignIn, and counts the attempt.
func (l *Logins) SignIn(r *http.Request, identity string, now time.Time, verify func() bool) error {
	addr := ClientAddr(r)
	if ok, wait := l.Allow(addr, identity, now); !ok {
		return &ThrottledError{Wait: wait}
	}
	if !verify() {
		l.Failed(addr, identity, now)
		return ErrSignIn
	}
	l.Succeeded(addr, identity, now)
	return nil
}

// SetRetryAfter sets the Retry-After header an error calls for: the wait
// of a *ThrottledError (the middleware gives other 429 and 503 answers
// its default).
func SetRetryAfter(w http.ResponseWriter, err error) {
	var te *ThrottledError
	if errors.As(err, &te) {
		w.Header().Set("Retry-After", RetryAfter(te.Wait))
	}
}
