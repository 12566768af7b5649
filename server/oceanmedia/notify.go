package oceanmedia

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/cairnstore/cairn/server/internal/web"
)

// Limits on autodelete notifications. A write user chooses both a
// medium's email and its delete_at, so without them it could have the
// server mail any address at will.
const (
	// mailQueue bounds the notifications waiting to be sent; past it,
	// they are dropped (and logged).
	mailQueue = 256
	// mailsPerMinute are sent at most, to all recipients together, in
	// bursts of as many.
	mailsPerMinute = 60
	// recipientPerHour are sent at most to one address, in bursts of
	// recipientBurst.
	recipientPerHour, recipientBurst = 6, 10
	// mailTimeout bounds the sending of one mail, from dialing on.
	mailTimeout = 30 * time.Second
)

// notifier sends autodelete notifications off the sweeper's path: a
// bounded queue, one sender, a deadline per mail, and limits per
// recipient and in all. Safe for concurrent use.
type notifier struct {
	send    func(ctx context.Context, to, subject, body string) error
	log     *slog.Logger
	now     func() time.Time
	all, to *web.Rate
	queue   chan notice
	start   sync.Once
}

type notice struct{ to, subject, body string }

func newNotifier(send func(ctx context.Context, to, subject, body string) error, log *slog.Logger, now func() time.Time) *notifier {
	return &notifier{
		send: send, log: log, now: now,
		all:   web.NewRate(mailsPerMinute, mailsPerMinute),
		to:    web.NewRate(float64(recipientPerHour)/60, recipientBurst),
		queue: make(chan notice, mailQueue),
	}
}

// notify queues a mail to the address to; it never waits.
func (n *notifier) notify(to, subject, body string) {
	now := n.now()
	if ok, _ := n.to.Allow(strings.ToLower(to), now); !ok {
		n.log.Warn("autodelete notification dropped: too many to this address", "to", to)
		return
	}
	if ok, _ := n.all.Allow("", now); !ok {
		n.log.Warn("autodelete notification dropped: too many at once", "to", to)
		return
	}
	n.start.Do(func() { go n.run() })
	select {
	case n.queue <- notice{to: to, subject: subject, body: body}:
	default:
		n.log.Warn("autodelete notification dropped: the queue is full", "to", to)
	}
}

// run sends the queued mails one at a time, each within mailTimeout: a
// relay that does not answer holds the sender that long at most.
func (n *notifier) run() {
	for m := range n.queue {
		ctx, cancel := context.WithTimeout(context.Background(), mailTimeout)
		if err := n.send(ctx, m.to, m.subject, m.body); err != nil {
			n.log.Error("autodelete notification not sent", "to", m.to, "err", err)
		}
		cancel()
	}
}

// plain is s without control characters, for a mail: fields are
// validated without them, but media stored before may have some.
func plain(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}
