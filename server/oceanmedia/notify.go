package oceanmedia

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/smtp"
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
	addr, from string
	log        *slog.Logger
	now        func() time.Time
	all, to    *web.Rate
	queue      chan notice
	start      sync.Once
}

type notice struct{ to, subject, body string }

func newNotifier(addr, from string, log *slog.Logger, now func() time.Time) *notifier {
	return &notifier{
		addr: addr, from: from, log: log, now: now,
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

func (n *notifier) run() {
	for m := range n.queue {
		if err := n.send(m); err != nil {
			n.log.Error("autodelete notification not sent", "to", m.to, "err", err)
		}
	}
}

// send is smtp.SendMail with a deadline: a relay that does not answer
// holds the sender for mailTimeout at most.
func (n *notifier) send(m notice) error {
	conn, err := net.DialTimeout("tcp", n.addr, mailTimeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(mailTimeout))
	host, _, _ := net.SplitHostPort(n.addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host}); err != nil {
			return err
		}
	}
	if err := c.Mail(n.from); err != nil {
		return err
	}
	if err := c.Rcpt(m.to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s",
		n.from, m.to, mime.QEncoding.Encode("utf-8", m.subject), n.now().UTC().Format(time.RFC1123Z), m.body)
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
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
