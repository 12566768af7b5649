package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/cairnstore/cairn/server/internal/web"
)

// wrap is the middleware every route runs in.
func (s *Server) wrap(api string, rt web.Route) httprouter.Handle {
	limit := rt.MaxBody
	if limit <= 0 {
		limit = web.DefaultMaxBody
	}
	requests := s.metrics.requests
	duration := s.metrics.duration.WithLabelValues(api, rt.Path, rt.Method)
	reqBytes := s.metrics.reqBytes.WithLabelValues(api, rt.Path)
	respBytes := s.metrics.respBytes.WithLabelValues(api, rt.Path)
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		start := time.Now()
		r = web.WithClient(fromProxy(r, s.cfg.TrustedProxies))
		s.metrics.inflight.Inc()
		defer s.metrics.inflight.Dec()

		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		r = s.cors(w.Header(), r)
		rc := http.NewResponseController(w)
		body := &bodyReader{rc: rc, hdr: w.Header(), idle: s.cfg.BodyIdleTimeout, rate: s.cfg.BodyMinRate, window: s.cfg.BodyRateWindow,
			declared: r.ContentLength, expect: web.HasToken(r.Header.Get("Expect"), "100-continue")}
		rw := &responseWriter{ResponseWriter: w, rc: rc, limit: s.cfg.BodyIdleTimeout, body: body}
		if s.cfg.BodyMinRate > 0 {
			rw.limit, rw.minPiece = s.cfg.BodyRateWindow, int(body.need())
			rw.piece = rw.minPiece
		}
		switch {
		case r.ContentLength > limit:
			// Refused from its headers, before a byte of it is read (and
			// before a 100 Continue): the handler answers 413, which goes
			// out at once to a client waiting for a 100 Continue, and
			// within a second to one sending (see answering).
			body.r = errReader{&http.MaxBytesError{Limit: limit}}
		case r.Body != nil && r.Body != http.NoBody:
			body.r = http.MaxBytesReader(rw, r.Body, limit)
			body.extend()
		default:
			body.r = http.NoBody
		}
		r.Body = body

		defer func() {
			p := recover()
			if p != nil && p != http.ErrAbortHandler {
				s.log.Error("panic serving request", "request_id", id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !rw.wrote {
					textError(rw, http.StatusInternalServerError, "internal error")
				}
			}
			rw.done()
			code := rw.code
			if code == 0 {
				code = http.StatusOK
			}
			if p == http.ErrAbortHandler {
				code = 0 // aborted mid-response; the status line said otherwise
			}
			d := time.Since(start)
			requests.WithLabelValues(api, rt.Path, rt.Method, strconv.Itoa(code)).Inc()
			duration.Observe(d.Seconds())
			reqBytes.Add(float64(body.n))
			respBytes.Add(float64(rw.n))
			level := slog.LevelInfo
			if code >= 500 || code == 0 {
				level = slog.LevelWarn
			}
			// Asked first: the arguments of a line not logged are not built.
			if s.log.Enabled(r.Context(), level) {
				s.log.Log(r.Context(), level, "request",
					"request_id", id, "api", api, "method", r.Method, "path", r.URL.EscapedPath(),
					"status", code, "in", body.n, "out", rw.n, "duration", d, "remote", r.RemoteAddr)
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
		}()
		rt.Handle(rw, r, ps)
	}
}

// errReader fails every read with err.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// extendEvery throttles deadline updates to one per second, or a quarter
// of the idle timeout if that is shorter.
func extendEvery(idle time.Duration) time.Duration { return min(time.Second, idle/4) }

// bodyReader counts a request body and keeps its read deadline idle
// ahead of the last progress, so that a stalled upload is cut off; and
// it cuts off one that arrives slower than rate bytes a second, measured
// over window of the time the handler spends waiting for it (time the
// handler spends elsewhere, waiting for an upload slot say, is not the
// client's), so that a client trickling a byte now and then cannot hold
// an upload slot for long.
type bodyReader struct {
	r    io.Reader
	rc   *http.ResponseController
	hdr  http.Header // the response's
	idle time.Duration
	// rate is the minimum bytes a second (0: none) over window.
	rate   int64
	window time.Duration
	n      int64
	// extended is when the read deadline was last set, to deadline.
	extended, deadline time.Time
	// waited is the time spent in Read in this window, got the bytes.
	waited time.Duration
	got    int64
	eof    bool
	// declared is the request's Content-Length, -1 if unknown (chunked).
	declared int64
	// expect: the client waits for a 100 Continue before it sends the
	// body, which net/http sends on the first read of it.
	expect bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.eof {
		return b.r.Read(p)
	}
	b.arm()
	start := time.Now()
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.rate > 0 {
		b.waited += time.Since(start)
		b.got += int64(n)
		if b.waited >= b.window {
			if b.got < b.need() && err == nil {
				err = fmt.Errorf("%w: %d bytes in %v, at least %d bytes/s wanted", web.ErrTooSlow, b.got, b.waited.Round(time.Millisecond), b.rate)
			}
			b.waited, b.got = 0, 0
		}
	}
	switch {
	case err == io.EOF:
		b.release()
	case err != nil:
		// Whatever is left of the body is not read; answering bounds what
		// net/http waits for it.
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) && !errors.Is(err, web.ErrTooSlow) {
			err = fmt.Errorf("reading the request body: %w", err)
		}
	}
	return n, err
}

// need is how many bytes a window must bring.
func (b *bodyReader) need() int64 { return int64(float64(b.rate) * b.window.Seconds()) }

// arm sets the read deadline before a Read: the idle timeout ahead, or
// sooner, at the end of the window, while the window still lacks bytes.
// It is moved later at most once a second (or a quarter of the idle
// timeout), and sooner whenever needed.
func (b *bodyReader) arm() {
	now := time.Now()
	want := now.Add(b.idle)
	if b.rate > 0 && b.got < b.need() {
		if left := b.window - b.waited; left < b.idle {
			want = now.Add(left)
		}
	}
	if want.Before(b.deadline) || now.Sub(b.extended) >= extendEvery(b.idle) {
		b.extended, b.deadline = now, want
		b.rc.SetReadDeadline(want)
	}
}

func (b *bodyReader) Close() error { return nil } // net/http closes the real body

func (b *bodyReader) extend() {
	b.extended = time.Now()
	b.deadline = b.extended.Add(b.idle)
	b.rc.SetReadDeadline(b.deadline)
}

// answering is called as the response's header goes out, for a body the
// handler left unread. A client waiting for a 100 Continue has sent
// nothing: the connection closes after the answer (discarding the body
// would send it the 100 Continue, and have it send everything). Any other
// client may be sending already: net/http reads and discards up to
// 256 KiB of the rest before it answers (then keeps the connection, or
// closes it if more is left), so that the client reads the answer rather
// than a reset; from a client that trickles or sends nothing that could
// take forever, so it gets a second.
func (b *bodyReader) answering() {
	switch {
	case b.eof || b.declared == 0 || b.hdr.Get("Connection") == "close":
	case b.expect && b.n == 0:
		b.hdr.Set("Connection", "close")
	default:
		b.rc.SetReadDeadline(time.Now().Add(time.Second))
	}
}

// release clears the deadline once the body has been read to its end, so
// that it cannot fire on net/http's background read of the idle
// connection. A body not read to its end keeps its deadline: net/http
// discards the rest, or closes the connection, within it.
func (b *bodyReader) release() {
	if !b.eof && !b.extended.IsZero() {
		b.eof = true
		b.rc.SetReadDeadline(time.Time{})
	}
}

// responseWriter records the status and size of a response, and cuts
// off a client that reads it slower than the minimum rate: the response
// goes out in pieces of minPiece bytes (the rate times its window), each
// of which must be written within limit (the window). Without a minimum
// rate, each write must be within limit, the idle timeout. A client that
// stops reading, or reads a few bytes now and then, cannot hold its
// connection and download open for long.
//
// A piece the socket took at once (the client keeps up) makes the next
// one twice as large, up to maxPiece; one that had to wait for the client
// makes the next one minPiece again. A fast client's download so costs a
// write (a system call) per 256 KiB, not per 20 KiB, which took GETs of
// 1 MiB from 0.8× to 1.2× the throughput of a plain net/http server
// (BenchmarkHTTPRead); a slow one is held to the rate as before, once the
// piece it was given while it kept up is through.
type responseWriter struct {
	http.ResponseWriter
	rc       *http.ResponseController
	body     *bodyReader
	limit    time.Duration
	minPiece int // 0: writes are not split
	piece    int // the next piece's size, minPiece to maxPiece
	code     int
	n        int64
	wrote    bool
	extended time.Time
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
		w.body.answering()
		if h := w.Header(); h.Get("Cache-Control") == "" {
			// What an API answers is its client's alone, unless it says
			// otherwise (public downloads): no shared cache may serve one
			// client's view to another.
			h.Set("Cache-Control", "private, no-store")
		}
		if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
			// Every API's "not now" says when to come back.
			if h := w.Header(); h.Get("Retry-After") == "" {
				h.Set("Retry-After", "5")
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n := 0
	for {
		piece := p[n:]
		if w.minPiece > 0 && len(piece) > w.piece {
			piece = piece[:w.piece]
		}
		now := time.Now()
		if now.Sub(w.extended) >= extendEvery(w.limit) {
			w.extended = now
			w.rc.SetWriteDeadline(w.extended.Add(w.limit))
		}
		m, err := w.ResponseWriter.Write(piece)
		if w.minPiece > 0 {
			if time.Since(now) < keptUp {
				w.piece = max(w.minPiece, min(2*w.piece, maxPiece))
			} else {
				w.piece = w.minPiece
			}
		}
		n += m
		w.n += int64(m)
		if err != nil || n == len(p) {
			return n, err
		}
	}
}

// maxPiece bounds the pieces a response is written in; keptUp is how soon
// the socket must take a piece for the next to grow.
const (
	maxPiece = 256 << 10
	keptUp   = 5 * time.Millisecond
)

func (w *responseWriter) done() {
	if !w.extended.IsZero() {
		w.rc.SetWriteDeadline(time.Time{})
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func textError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write([]byte(msg + "\n"))
}

// newRequestID returns a random request ID.
func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validRequestID accepts a client's X-Request-Id when it is short and
// plain, so that it can be logged and echoed safely.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
