// Package urlpath turns a request's escaped URL path into one canonical
// list of segments, the only form the APIs use to name things: every
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

// ErrInvalid is wrapped by every error of Split.
var ErrInvalid = errors.New("urlpath: invalid path")

// Split parses an escaped path (as from url.URL.EscapedPath) once: it
// decodes percent-escapes, treats `\` as `/`, normalises each segment to
// NFC and validates it. It returns the segments and whether the path
// ended in a slash ("/public/277/" is ["public" "277"], dir true). "/" is
// no segments.
func Split(escaped string) (segs []string, dir bool, err error) {
	if len(escaped) > MaxLen*3 {
		return nil, false, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxLen)
	}
	p, err := url.PathUnescape(escaped)
	if err != nil {
		return nil, false, fmt.Errorf("%w: bad escape", ErrInvalid)
	}
	if !utf8.ValidString(p) {
		return nil, false, fmt.Errorf("%w: not UTF-8", ErrInvalid)
	}
	p = norm.NFC.String(strings.ReplaceAll(p, `\`, "/"))
	if len(p) > MaxLen {
		return nil, false, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxLen)
	}
	if !strings.HasPrefix(p, "/") {
		return nil, false, fmt.Errorf("%w: does not begin with /", ErrInvalid)
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
		return nil, fmt.Errorf("%w: a name cannot end with /", ErrInvalid)
	}
	return segs, nil
}

func checkSegment(s string) error {
	switch s {
	case "":
		return fmt.Errorf("%w: empty segment", ErrInvalid)
	case ".", "..":
		return fmt.Errorf("%w: %q segment", ErrInvalid, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: control character %U", ErrInvalid, r)
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
