package web

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cairnstore/cairn/internal/variant"

	"github.com/cairnstore/cairn/engine"
)

// Deps are what every API is built on, given it by the server: the
// store, the log, the clock, the base of its absolute URLs and the limits
// on what one client may take.
type Deps struct {
	Engine *engine.Engine
	Logger *slog.Logger
	Now    func() time.Time
	// PublicURL is the base of the absolute URLs the API returns
	// ("https://media.example"); default each request's scheme and host.
	PublicURL string
	// Limits are what one client may take (upload and download slots,
	// failed sign-ins); any missing take their defaults.
	Limits Limits
	// PublicMaxAge is how long browsers and shared caches may keep public
	// media without asking again (0: they ask each time, by ETag).
	PublicMaxAge time.Duration
	// Variants makes the image variants downloads ask for; nil: none are
	// made, and asking for one is refused (400).
	Variants *variant.Maker
}

// WithDefaults returns d with what it lacks (but the engine) filled in:
// the default logger, the system clock, and default limits.
func (d Deps) WithDefaults() Deps {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	d.Limits = d.Limits.WithDefaults()
	return d
}

// BaseURL is the base of the absolute URLs of an answer to r, with no
// trailing slash: PublicURL, or the request's own scheme and host.
func (d Deps) BaseURL(r *http.Request) string {
	if d.PublicURL != "" {
		return strings.TrimSuffix(d.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if s, ok := r.Context().Value(schemeKey{}).(string); ok {
		scheme = s
	}
	return scheme + "://" + r.Host
}

type schemeKey struct{}

type clientKey struct{}

// WithClient returns r with its client's address (ClientAddr) in its
// context, for what sees only the context (ClientOf).
func WithClient(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), clientKey{}, ClientAddr(r)))
}

// ClientOf is the client address WithClient put in ctx, or "".
func ClientOf(ctx context.Context) string {
	s, _ := ctx.Value(clientKey{}).(string)
	return s
}

// WithScheme returns r as asked for with scheme, which BaseURL uses: what
// a trusted reverse proxy said (the server decides whom to trust).
func WithScheme(r *http.Request, scheme string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), schemeKey{}, scheme))
}
