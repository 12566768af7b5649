// Package web is the HTTP plumbing the API packages share.
//
// With it each API is only its handlers, wire types and one error
// writer: Handler and Routes (a handler returns its error, the API's
// ErrorWriter answers it), Deps (the engine, logger, clock and public base
// URL every API is built on), the status an engine error maps to, JSON
// responses and streamed arrays (Array), cursor pages (Page), reading an
// upload body with its declared or detected content type and a multipart
// file part (ReadForm), and the per-client limits (Slots, Rate, Logins)
// that keep one client from taking the server.
//
// Everything here is safe for concurrent use.
//
//	func (a *API) Routes() []web.Route {
//		return []web.Route{{Method: "GET", Path: "/public/:bucket/*path", Handle: a.get}}
//	}
package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"

	"github.com/cairnstore/cairn/internal/variant"

	"github.com/gabriel-vasile/mimetype"
	"github.com/julienschmidt/httprouter"

	"github.com/cairnstore/cairn/engine"
)

// Route is one endpoint of an API. The server wraps Handle with the
// shared middleware: request ID, access log, metrics labelled with the
// API and Path, panic recovery, and the body limit.
type Route struct {
	Method, Path string
	Handle       httprouter.Handle
	// MaxBody bounds the request body: a longer one is answered 413 by
	// the handler's error mapping (http.MaxBytesError). Zero means no
	// body is expected and the limit is a few KiB.
	MaxBody int64
}

// DefaultMaxBody bounds the bodies of routes that set no MaxBody: JSON
// requests, not uploads.
const DefaultMaxBody = 64 << 10

// Status is the HTTP status for an error from the engine or the body
// reader. Errors it does not know are 500; APIs map their own first.
func Status(err error) int {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe), errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, engine.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, engine.ErrNoSpace):
		return http.StatusInsufficientStorage
	case errors.Is(err, ErrTooMany), errors.Is(err, ErrThrottled), errors.Is(err, variant.ErrRate):
		return http.StatusTooManyRequests
	case errors.Is(err, engine.ErrReadOnly), errors.Is(err, engine.ErrClosed), errors.Is(err, engine.ErrUnavailable),
		errors.Is(err, engine.ErrBusy), errors.Is(err, ErrBusy):
		return http.StatusServiceUnavailable
	case errors.Is(err, engine.ErrExists):
		return http.StatusConflict
	case errors.Is(err, engine.ErrInvalid), errors.Is(err, variant.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, variant.ErrBusy):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrTooSlow), errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		// The client stopped sending the body.
		return http.StatusRequestTimeout
	case errors.Is(err, io.ErrUnexpectedEOF):
		// The client went away or sent less than it declared.
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// JSON writes v as a JSON response with the given status.
func JSON(w http.ResponseWriter, status int, v any) {
	// Not HTML-escaped: the answer is application/json under nosniff,
	// never HTML, and a URL's & stays & for clients that read it with
	// sed (the README's examples) as the original services wrote it.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "encoding the response failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// DecodeJSON reads a JSON request body into v: the body must be one JSON
// value and nothing after it.
func DecodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// sniffLen is how much of a body content-type detection reads first.
const sniffLen = 3072

// Content returns the content type to store for a body, and a reader that
// yields the whole body. A declared type (the request's Content-Type)
// wins when it is a valid media type other than the generic ones clients
// send without meaning them (application/octet-stream, and the
// form-urlencoded type curl sends with --data-binary); otherwise the type
// is detected from the first bytes.
func Content(declared string, body io.Reader) (string, io.Reader, error) {
	if t, ok := meaningful(declared); ok {
		return t, body, nil
	}
	br := bufio.NewReaderSize(body, sniffLen)
	head, err := br.Peek(sniffLen)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return "", nil, err
	}
	return mimetype.Detect(head).String(), br, nil
}

func meaningful(declared string) (string, bool) {
	if declared == "" {
		return "", false
	}
	t, params, err := mime.ParseMediaType(declared)
	if err != nil {
		return "", false
	}
	switch t {
	case "application/octet-stream", "application/x-www-form-urlencoded", "multipart/form-data":
		return "", false
	}
	return mime.FormatMediaType(t, params), true
}

// HasToken reports whether a comma-separated header value lists token.
func HasToken(header, token string) bool {
	for _, v := range strings.Split(header, ",") {
		if strings.EqualFold(strings.TrimSpace(v), token) {
			return true
		}
	}
	return false
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// ErrTooLarge is returned by a LimitReader once its limit is passed;
// Status maps it to 413.
var ErrTooLarge = errors.New("content is larger than the limit")

// ErrTooSlow: the request body arrived slower than the server's minimum
// rate, and was cut off. Status maps it to 408.
var ErrTooSlow = errors.New("the request body arrived slower than the minimum rate")

// LimitReader returns a reader of r that fails with ErrTooLarge once more
// than n bytes were read. Unlike io.LimitReader it does not end quietly
// at the limit: an upload that is too large must fail, not be cut short.
func LimitReader(r io.Reader, n int64) io.Reader { return &limitReader{r: r, n: n} }

type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if l.n -= int64(n); l.n < 0 {
		return n, ErrTooLarge
	}
	return n, err
}

// Document serves an API's OpenAPI document (JSON), to anyone: it
// describes the API, never what is stored in it.
func Document(raw []byte) httprouter.Handle {
	return func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "public, no-cache")
		w.Write(raw)
	}
}

// IsTokenChar reports whether c may appear in an HTTP token (RFC 9110
// section 5.6.2): a header name, a method.
func IsTokenChar(c rune) bool {
	return c < 127 && c > 32 && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c)
}

type corsResourceKey struct{}

// WithCORSResource returns r carrying f, which CORSResource calls.
func WithCORSResource(r *http.Request, f func(kind, name string)) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), corsResourceKey{}, f))
}

// CORSResource tells the server the resource a request acts on (kind
// "org" and the organization's ID), once a handler knows it from the
// request's token, so that the resource's CORS rule applies to the
// answer. Call it before writing the answer.
func CORSResource(r *http.Request, kind, name string) {
	if f, ok := r.Context().Value(corsResourceKey{}).(func(string, string)); ok {
		f(kind, name)
	}
}
