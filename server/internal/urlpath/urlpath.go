// Package urlpath is the one parser of request paths.
//
// It turns a request's escaped URL path into one canonical list of
// segments, the only form the APIs use to name things: every
// spelling of a name (percent-escapes, `\` for `/`, NFD or NFC Unicode)
// canonicalises to the same segments, and what cannot name anything safely
// (`.`, `..`, empty segments, NUL and control characters, invalid UTF-8,
// overlong paths) is rejected with an error wrapping ErrInvalid, which the
// APIs answer with 400.
//
// Functions here are pure and safe for concurrent use.
//
//	segs, dir, err := urlpath.Split(r.URL.EscapedPath())
//	// "/public/277/images%5Cmy%20image.jpeg" → ["public" "277" "images" "my image.jpeg"]
package urlpath

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxLen bounds a path, escaped and decoded: longer ones are invalid.
const MaxLen = 4096

// ErrInvalid is what every error of Split is (errors.Is): an *Error,
// which says why.
var ErrInvalid = errors.New("urlpath: invalid path")

// Error is an invalid path and why, in words a client may read.
type Error struct{ Reason string }

func (e *Error) Error() string        { return ErrInvalid.Error() + ": " + e.Reason }
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Invalid returns an *Error whose reason is the formatted text.
func Invalid(format string, args ...any) error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

// Split parses an escaped path (as from url.URL.EscapedPath) once: it
// decodes percent-escapes, treats `\` as `/`, normalises each segment to
// NFC and validates it. It returns the segments and whether the path
// ended in a slash ("/public/277/" is ["public" "277"], dir true). "/" is
// no segments.
func Split(escaped string) (segs []string, dir bool, err error) {
	if len(escaped) > MaxLen*3 {
		return nil, false, Invalid("longer than %d bytes", MaxLen)
	}
	p, err := url.PathUnescape(escaped)
	if err != nil {
		return nil, false, Invalid("bad escape")
	}
	if !utf8.ValidString(p) {
		return nil, false, Invalid("not UTF-8")
	}
	p = norm.NFC.String(strings.ReplaceAll(p, `\`, "/"))
	if len(p) > MaxLen {
		return nil, false, Invalid("longer than %d bytes", MaxLen)
	}
	if !strings.HasPrefix(p, "/") {
		return nil, false, Invalid("does not begin with /")
	}
	p = p[1:]
	if p == "" {
		return nil, true, nil
	}
	if strings.HasSuffix(p, "/") {
		dir = true
		p = p[:len(p)-1]
	}
	segs = strings.Split(p, "/")
	for _, s := range segs {
		if err := checkSegment(s); err != nil {
			return nil, false, err
		}
	}
	return segs, dir, nil
}

// Name validates a relative name given in a request body (a move's
// destination): the same rules as Split, one leading `/` allowed, no
// trailing one. It returns the canonical segments.
func Name(s string) ([]string, error) {
	if !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, `\`) {
		s = "/" + s
	}
	segs, dir, err := Split(url.PathEscape(s))
	switch {
	case err != nil:
		return nil, err
	case dir || len(segs) == 0:
		return nil, Invalid("a name cannot end with /")
	}
	return segs, nil
}

func checkSegment(s string) error {
	switch s {
	case "":
		return Invalid("empty segment")
	case ".", "..":
		return Invalid("%q segment", s)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return Invalid("control character %U", r)
		}
	}
	return nil
}

// Join is the canonical name of segments: joined by `/`.
func Join(segs []string) string { return strings.Join(segs, "/") }

// Escape is the escaped URL path of segments, each escaped as a path
// segment and joined by `/`, without a leading slash.
func Escape(segs []string) string {
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = url.PathEscape(s)
	}
	return strings.Join(out, "/")
}
