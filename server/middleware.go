package server

import (
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
		s.metrics.inflight.Inc()
		defer s.metrics.inflight.Dec()

		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		rc := http.NewResponseController(w)
		rw := &responseWriter{ResponseWriter: w, rc: rc, idle: s.cfg.BodyIdleTimeout}
		body := &bodyReader{rc: rc, idle: s.cfg.BodyIdleTimeout}
		switch {
		case r.ContentLength > limit:
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
			s.log.Log(r.Context(), level, "request",
				"request_id", id, "api", api, "method", r.Method, "path", r.URL.EscapedPath(),
				"status", code, "in", body.n, "out", rw.n, "duration", d, "remote", r.RemoteAddr)
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
// ahead of the last progress, so a slow upload that keeps sending is
// never cut off and a stalled one is.
type bodyReader struct {
	r        io.Reader
	rc       *http.ResponseController
	idle     time.Duration
	n        int64
	extended time.Time
	eof      bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if n > 0 && err == nil && time.Since(b.extended) >= extendEvery(b.idle) {
		b.extend()
	}
	switch {
	case err == io.EOF:
		b.release()
	case err != nil:
		// Leave the deadline where it is: net/http may try to discard the
		// rest of the body before answering, and that must not wait
		// longer than the idle timeout for a client that has stalled.
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) {
			err = fmt.Errorf("reading the request body: %w", err)
		}
	}
	return n, err
}

func (b *bodyReader) Close() error { return nil } // net/http closes the real body

func (b *bodyReader) extend() {
	b.extended = time.Now()
	b.rc.SetReadDeadline(b.extended.Add(b.idle))
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

// responseWriter records the status and size of a response, and keeps
// its write deadline idle ahead of the last progress, so a client that
// stops reading a download is eventually dropped.
type responseWriter struct {
	http.ResponseWriter
	rc       *http.ResponseController
	idle     time.Duration
	code     int
	n        int64
	wrote    bool
	extended time.Time
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.code, w.wrote = http.StatusOK, true
	}
	if time.Since(w.extended) >= extendEvery(w.idle) {
		w.extended = time.Now()
		w.rc.SetWriteDeadline(w.extended.Add(w.idle))
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *responseWriter) done() {
	if !w.extended.IsZero() {
		w.rc.SetWriteDeadline(time.Time{})
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
