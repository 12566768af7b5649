package web

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

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
	return scheme + "://" + r.Host
}
