// Package blobhttp is the one download path every API uses.
//
// It serves a record's verified bytes with http.ServeContent, so Range (single,
// multiple, suffix), If-Range, If-None-Match and If-Modified-Since answer
// 206, 416 and 304 exactly as net/http does. The ETag is the quoted blob
// ID (the BLAKE3 of the bytes, so it changes exactly when they do).
//
// Several ranges are first sorted and merged where they overlap or lie
// near each other, and more than MaxRanges get the whole content, so that
// a request of thousands of tiny ranges costs what its bytes do and reads
// each chunk once.
//
// Only the types in one allow-list (images, audio and video a browser
// plays, PDF, plain text and JSON) are served inline; everything else
// (HTML, SVG, XML, scripts under any of their names, anything unknown)
// is an attachment under a sandboxing Content-Security-Policy, and every
// response carries X-Content-Type-Options: nosniff, so an upload can
// never become a stored XSS on the server's origin.
//
// A chunk found corrupt before the response has begun is returned as an
// error (the API answers 500); found mid-stream, it aborts the connection
// (http.ErrAbortHandler) so the client sees a truncated transfer, never
// wrong bytes.
//
// Serve is safe for concurrent use.
package blobhttp

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/internal/variant"
)

// Caching says who may keep a download: its reader alone, storing it
// nowhere (Private, the server's default), or anyone (Public).
type Caching struct {
	public bool
	maxAge time.Duration
}

// Private content is for its reader alone: no cache stores it.
func Private() Caching { return Caching{} }

// Public content (anyone may read it at this URL) may be kept by browsers
// and shared caches for maxAge without asking again; after that, or with
// a maxAge of 0, they must check it is unchanged (its ETag, a 304)
// before they serve it again. No cairn URL names the content itself (a
// record's content can change under its URL), so none is "immutable".
func Public(maxAge time.Duration) Caching { return Caching{public: true, maxAge: max(maxAge, 0)} }

func (c Caching) header() string {
	switch {
	case !c.public:
		return ""
	case c.maxAge < time.Second:
		return "public, no-cache"
	}
	return "public, max-age=" + strconv.FormatInt(int64(c.maxAge/time.Second), 10)
}

// Serve answers r with the content of rec. name is the file name offered
// in Content-Disposition; caching says who may keep it. A request with
// variant options (variant.Params) is answered with that image variant of
// rec (Variant), made by m, served as any content is: its own ETag, ranges
// and conditional requests, and Vary: Accept if it depends on that.
func Serve(w http.ResponseWriter, r *http.Request, e *engine.Engine, rec engine.Record, name string, caching Caching, m *variant.Maker) error {
	if r.URL.RawQuery != "" && variant.Asked(r.URL.Query()) {
		v, vary, err := Variant(r, e, rec, m)
		var re *variant.RateError
		if errors.As(err, &re) {
			w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(re.Wait.Seconds())))))
		}
		if err != nil {
			return err
		}
		if vary {
			w.Header().Add("Vary", "Accept")
		}
		rec, name = v, variantName(name, strings.TrimPrefix(v.ContentType, "image/"))
	}
	// The content is opened at its first read: a HEAD or a 304 reads
	// none, and costs no lookup of the blob.
	src := &errReader{e: e, rec: rec}
	defer src.close()
	h := w.Header()
	// The values share one array: a header each would be an allocation
	// each, a fifth of a small download's. The keys are canonical, as
	// Header.Set would make them (so that ServeContent finds "Etag").
	vals := make([]string, 0, 6)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	set("Etag", etag(rec.Blob))
	if cc := caching.header(); cc != "" {
		set("Cache-Control", cc)
	}
	set("X-Content-Type-Options", "nosniff")
	ctype := rec.ContentType
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	set("Content-Type", ctype)
	disposition := "inline"
	if !Inline(ctype) {
		disposition = "attachment"
		set("Content-Security-Policy", "sandbox; default-src 'none'")
	}
	set("Content-Disposition", contentDisposition(disposition, name))

	if rh := r.Header.Get("Range"); rh != "" {
		if h, ok := coalesce(rh, rec.Size); ok && h == "" {
			r.Header.Del("Range")
		} else if ok {
			r.Header.Set("Range", h)
		}
	}
	dw := &deferredWriter{w: w}
	http.ServeContent(dw, r, "", rec.Modified, src)
	if src.err != nil {
		if !dw.started {
			for _, k := range []string{"Content-Length", "Content-Range", "Content-Disposition", "Content-Security-Policy", "ETag", "Last-Modified", "Accept-Ranges", "Cache-Control"} {
				h.Del(k)
			}
			return src.err
		}
		panic(http.ErrAbortHandler)
	}
	dw.flush()
	return nil
}

// etag is the ETag of content id: its quoted hex.
func etag(id blob.ID) string {
	var b [2 + 2*len(id)]byte
	b[0], b[len(b)-1] = '"', '"'
	hex.Encode(b[1:], id[:])
	return string(b[:])
}

// contentDisposition is the Content-Disposition header offering name,
// as mime.FormatMediaType writes it; a name of token characters alone
// (most are) is written without it, which costs a map and a builder.
func contentDisposition(disposition, name string) string {
	switch {
	case name == "":
		return disposition
	case isToken(name):
		return disposition + "; filename=" + name
	}
	return mime.FormatMediaType(disposition, map[string]string{"filename": name})
}

// isToken reports whether s is an RFC 2045 token, which
// mime.FormatMediaType writes unquoted.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

// inline are the types served inline: ones a browser shows or plays but
// never runs as a document or a script of the server's origin.
var inline = map[string]bool{
	"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true, "image/avif": true,
	"image/bmp": true, "image/x-icon": true, "image/vnd.microsoft.icon": true, "image/heic": true, "image/heif": true,
	"image/tiff": true, "image/apng": true,
	"video/mp4": true, "video/webm": true, "video/ogg": true, "video/quicktime": true, "video/mpeg": true,
	"audio/mpeg": true, "audio/ogg": true, "audio/wav": true, "audio/x-wav": true, "audio/webm": true,
	"audio/aac": true, "audio/flac": true, "audio/mp4": true, "audio/x-m4a": true,
	"application/pdf": true,
	"text/plain":      true, "text/csv": true,
	"application/json": true,
}

// Inline reports whether content of type ctype is served inline; any
// other is served as an attachment, sandboxed.
func Inline(ctype string) bool {
	if !strings.Contains(ctype, ";") {
		// What ParseMediaType would return, without its map of
		// parameters; a type in the list is a valid one.
		return inline[strings.ToLower(strings.TrimSpace(ctype))]
	}
	t, _, err := mime.ParseMediaType(ctype)
	return err == nil && inline[t]
}

// errReader reads rec's content, opening it at the first read (so that
// an answer without a body opens nothing), and remembers the first error
// that is not EOF: content gone since the record was read, a corrupt
// chunk, a missing segment.
type errReader struct {
	e   *engine.Engine
	rec engine.Record
	r   *engine.Reader // nil until the first read
	pos int64          // the position Seek set before the first read
	err error
}

// reader opens the content, at the position sought, if it is not open.
func (e *errReader) reader() (*engine.Reader, error) {
	if e.r != nil {
		return e.r, nil
	}
	r, err := e.e.OpenRecord(e.rec)
	if err == nil {
		if _, err = r.Seek(e.pos, io.SeekStart); err != nil {
			r.Close()
		}
	}
	if err != nil {
		if e.err == nil {
			e.err = fmt.Errorf("blobhttp: opening content: %w", err)
		}
		return nil, err
	}
	e.r = r
	return r, nil
}

func (e *errReader) Read(p []byte) (int, error) {
	r, err := e.reader()
	if err != nil {
		return 0, err
	}
	n, err := r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && e.err == nil {
		e.err = fmt.Errorf("blobhttp: reading content: %w", err)
	}
	return n, err
}

func (e *errReader) Seek(off int64, whence int) (int64, error) {
	if e.r != nil {
		return e.r.Seek(off, whence)
	}
	abs := off
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		abs += e.pos
	case io.SeekEnd:
		abs += e.rec.Size
	default:
		return 0, fmt.Errorf("blobhttp: seek: invalid whence %d", whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("blobhttp: seek: negative position %d", abs)
	}
	e.pos = abs
	return abs, nil
}

// window is engine.Reader.Window on the content, opened; an error opening
// it is Read's to report.
func (e *errReader) window(n int64) {
	if r, err := e.reader(); err == nil {
		r.Window(n)
	}
}

func (e *errReader) close() {
	if e.r != nil {
		e.r.Close()
	}
}

// deferredWriter holds back the status line until the first body byte is
// written, so that a read error before it can still become a 500.
type deferredWriter struct {
	w       http.ResponseWriter
	code    int
	started bool
}

func (d *deferredWriter) Header() http.Header { return d.w.Header() }

func (d *deferredWriter) WriteHeader(code int) {
	if d.code == 0 {
		d.code = code
	}
}

func (d *deferredWriter) Write(p []byte) (int, error) {
	d.flush()
	return d.w.Write(p)
}

// copyBufs are the buffers a download is copied through: bigger than
// io.Copy's 32 KiB, so a large body takes fewer writes to the socket.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// ReadFrom copies src through a buffer from copyBufs, unless it is small;
// http.ServeContent hands its body to it.
func (d *deferredWriter) ReadFrom(src io.Reader) (int64, error) {
	if lr, ok := src.(*io.LimitedReader); ok {
		// The bytes of one range: the engine reads only the part of a
		// chunk they need, verified by the chunk's outboard.
		if er, ok := lr.R.(*errReader); ok {
			er.window(lr.N)
		}
		if lr.N <= 32<<10 {
			return io.Copy(writerOnly{d}, src) // through a buffer of the body's size
		}
	}
	b := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(b)
	return io.CopyBuffer(writerOnly{d}, src, *b)
}

// writerOnly hides ReadFrom from io.CopyBuffer.
type writerOnly struct{ io.Writer }

func (d *deferredWriter) flush() {
	if d.started {
		return
	}
	d.started = true
	if d.code == 0 {
		d.code = http.StatusOK
	}
	d.w.WriteHeader(d.code)
}

// Unwrap lets http.ResponseController reach the connection.
func (d *deferredWriter) Unwrap() http.ResponseWriter { return d.w }
