// Package jsonstream reads a JSON upload body as a stream.
//
// The body is a flat JSON object whose one large field is a base64
// string (an upload's content); that field is decoded as a stream
// while it arrives so the body is never held whole; every other value is
// small, bounded, and handed over as raw JSON for the caller to decode.
//
// Functions here are safe for concurrent use.
//
//	err := jsonstream.Parse(r.Body, "content", func(content io.Reader) error {
//		_, err := store.Upload(ctx, content)
//		return err
//	}, func(key string, raw json.RawMessage) error { ... })
package jsonstream

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	simd "github.com/segmentio/asm/base64"
)

var (
	// ErrSyntax: the body is not a JSON object of the expected shape.
	ErrSyntax = errors.New("the body is not a valid JSON object")
	// ErrBase64: the large field is not a base64 string.
	ErrBase64 = errors.New("not valid base64")
	// ErrNotString: the large field is not a string.
	ErrNotString = errors.New("not a base64 string")
)

// MaxSmall bounds the bytes of everything in the body but the large field.
const MaxSmall = 64 << 10

// Parse reads the JSON object from r. When the value of the field named
// big begins, onBig is called with a reader of its base64-decoded bytes
// and must read it to its end or fail; its failure, or the field not being
// base64, ends the parse with that error (wrapped with ErrBase64 or
// ErrNotString for the latter). Every other field is passed to onSmall as
// raw JSON, in order. A second big field is a syntax error.
func Parse(r io.Reader, big string, onBig func(io.Reader) error, onSmall func(key string, raw json.RawMessage) error) error {
	p := &parser{r: bufio.NewReaderSize(r, 64<<10)}
	if err := p.expect('{'); err != nil {
		return err
	}
	if c, err := p.peek(); err != nil {
		return err
	} else if c == '}' {
		p.next()
		return p.end()
	}
	seen := false
	for {
		if err := p.expect('"'); err != nil {
			return err
		}
		k, err := p.smallString()
		if err != nil {
			return err
		}
		if err := p.expect(':'); err != nil {
			return err
		}
		if k == big {
			if seen {
				return fmt.Errorf("%w: %s given twice", ErrSyntax, big)
			}
			seen = true
			c, err := p.peek()
			if err != nil {
				return err
			}
			if c != '"' {
				if err := p.skipValue(0); err != nil {
					return err
				}
				if p.lastLiteral == "null" {
					if err := onSmall(k, json.RawMessage("null")); err != nil {
						return err
					}
				} else {
					return fmt.Errorf("%s: %w", big, ErrNotString)
				}
			} else {
				p.next()
				sr := &stringReader{p: p}
				err = onBig(newDecoder(sr))
				var corrupt base64.CorruptInputError
				switch {
				case sr.err != nil && (errors.Is(sr.err, ErrBase64) || errors.Is(sr.err, ErrSyntax)):
					return fmt.Errorf("%s: %w", big, sr.err)
				case errors.As(err, &corrupt), sr.done && errors.Is(err, io.ErrUnexpectedEOF):
					return fmt.Errorf("%s: %w", big, ErrBase64)
				case err != nil:
					return err
				case sr.err != nil:
					return sr.err
				case !sr.done:
					return fmt.Errorf("%w: %s not read to its end", ErrSyntax, big)
				}
			}
		} else {
			p.capture = p.capture[:0]
			p.capturing = true
			err := p.skipValue(0)
			p.capturing = false
			if err != nil {
				return err
			}
			if err := onSmall(k, json.RawMessage(strings.TrimSpace(string(p.capture)))); err != nil {
				return err
			}
		}
		c, err := p.nonSpace()
		if err != nil {
			return err
		}
		switch c {
		case ',':
			continue
		case '}':
			return p.end()
		}
		return fmt.Errorf("%w: unexpected %q after a value", ErrSyntax, c)
	}
}

type parser struct {
	r           *bufio.Reader
	small       int // bytes read outside the big string
	lastLiteral string
	// capture collects the bytes of a small value while capturing.
	capture   []byte
	capturing bool
}

func (p *parser) next() (byte, error) {
	c, err := p.r.ReadByte()
	if err == io.EOF {
		return 0, fmt.Errorf("%w: unexpected end", ErrSyntax)
	}
	if err != nil {
		return 0, err
	}
	if p.small++; p.small > MaxSmall {
		return 0, fmt.Errorf("%w: too much besides the content", ErrSyntax)
	}
	if p.capturing {
		p.capture = append(p.capture, c)
	}
	return c, nil
}

func (p *parser) nonSpace() (byte, error) {
	for {
		c, err := p.next()
		if err != nil {
			return 0, err
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, nil
		}
	}
}

func (p *parser) peek() (byte, error) {
	c, err := p.nonSpace()
	if err != nil {
		return 0, err
	}
	p.r.UnreadByte()
	p.small--
	if p.capturing {
		p.capture = p.capture[:len(p.capture)-1]
	}
	return c, nil
}

func (p *parser) expect(want byte) error {
	c, err := p.nonSpace()
	if err != nil {
		return err
	}
	if c != want {
		return fmt.Errorf("%w: want %q, got %q", ErrSyntax, want, c)
	}
	return nil
}

// end checks that nothing but white space follows the object.
func (p *parser) end() error {
	for {
		c, err := p.r.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return fmt.Errorf("%w: data after the object", ErrSyntax)
		}
	}
}

// smallString reads a string's rest after its opening quote, escapes
// decoded, bounded by maxSmall.
func (p *parser) smallString() (string, error) {
	var b strings.Builder
	for {
		c, err := p.next()
		if err != nil {
			return "", err
		}
		switch {
		case c == '"':
			return b.String(), nil
		case c < 0x20:
			return "", fmt.Errorf("%w: control character in a string", ErrSyntax)
		case c == '\\':
			e, err := p.next()
			if err != nil {
				return "", err
			}
			switch e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b', 'f', 'n', 'r', 't':
				b.WriteByte(map[byte]byte{'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}[e])
			case 'u':
				var hex [4]byte
				for i := range hex {
					if hex[i], err = p.next(); err != nil {
						return "", err
					}
				}
				var r rune
				if _, err := fmt.Sscanf(string(hex[:]), "%04x", &r); err != nil {
					return "", fmt.Errorf("%w: bad \\u escape", ErrSyntax)
				}
				b.WriteRune(r)
			default:
				return "", fmt.Errorf("%w: bad escape \\%c", ErrSyntax, e)
			}
		default:
			b.WriteByte(c)
		}
	}
}

// skipValue reads past one JSON value of any kind.
func (p *parser) skipValue(depth int) error {
	if depth > 32 {
		return fmt.Errorf("%w: nested too deeply", ErrSyntax)
	}
	c, err := p.nonSpace()
	if err != nil {
		return err
	}
	switch {
	case c == '"':
		_, err := p.smallString()
		return err
	case c == '{' || c == '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		if n, err := p.peek(); err != nil {
			return err
		} else if n == closing {
			p.next()
			return nil
		}
		for {
			if c == '{' {
				if err := p.expect('"'); err != nil {
					return err
				}
				if _, err := p.smallString(); err != nil {
					return err
				}
				if err := p.expect(':'); err != nil {
					return err
				}
			}
			if err := p.skipValue(depth + 1); err != nil {
				return err
			}
			d, err := p.nonSpace()
			if err != nil {
				return err
			}
			if d == closing {
				return nil
			}
			if d != ',' {
				return fmt.Errorf("%w: want , or %c", ErrSyntax, closing)
			}
		}
	case c == '-' || c >= '0' && c <= '9' || c == 't' || c == 'f' || c == 'n':
		lit := []byte{c}
		for {
			d, err := p.r.ReadByte()
			if err != nil {
				break
			}
			if !(d == '.' || d == '+' || d == '-' || d >= '0' && d <= '9' || d >= 'a' && d <= 'z' || d >= 'A' && d <= 'Z') {
				p.r.UnreadByte()
				break
			}
			if p.small++; p.small > MaxSmall {
				return fmt.Errorf("%w: too much besides the content", ErrSyntax)
			}
			if p.capturing {
				p.capture = append(p.capture, d)
			}
			lit = append(lit, d)
		}
		s := string(lit)
		p.lastLiteral = s
		if (c == 't' && s != "true") || (c == 'f' && s != "false") || (c == 'n' && s != "null") {
			return fmt.Errorf("%w: bad literal %q", ErrSyntax, s)
		}
		return nil
	}
	return fmt.Errorf("%w: unexpected %q", ErrSyntax, c)
}

// stringReader yields the raw bytes of the big JSON string being read (the
// base64 text), stopping at its closing quote. Base64 needs no escapes
// but `\/` (which some encoders write for '/'), and `\n` and `\r` (line
// breaks, which the base64 decoder skips); anything else is not base64.
type stringReader struct {
	p    *parser
	done bool
	err  error
}

func (s *stringReader) Read(b []byte) (int, error) {
	if s.done {
		return 0, io.EOF
	}
	if s.err != nil {
		return 0, s.err
	}
	n := 0
	for n < len(b) {
		if n > 0 && s.p.r.Buffered() == 0 {
			break // return what we have rather than block
		}
		// The plain run of what is buffered is copied at once: base64
		// has no byte that needs a look of its own.
		if _, err := s.p.r.Peek(1); err == nil {
			run, _ := s.p.r.Peek(min(s.p.r.Buffered(), len(b)-n))
			i := plainRun(run)
			n += copy(b[n:], run[:i])
			s.p.r.Discard(i)
			if i == len(run) {
				continue
			}
		}
		c, err := s.p.r.ReadByte()
		if err == io.EOF {
			s.err = fmt.Errorf("%w: the body ends inside content", ErrSyntax)
			return n, s.err
		}
		if err != nil {
			s.err = err
			return n, err
		}
		switch {
		case c == '"':
			s.done = true
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		case c == '\\':
			e, err := s.p.r.ReadByte()
			if err != nil {
				s.err = fmt.Errorf("%w: the body ends inside content", ErrSyntax)
				return n, s.err
			}
			switch e {
			case '/':
				b[n] = '/'
				n++
			case 'n', 'r':
				// a line break in the base64: skipped
			default:
				s.err = ErrBase64
				return n, s.err
			}
		default: // c < 0x20
			s.err = ErrBase64
			return n, s.err
		}
	}
	return n, nil
}

// plainRun returns the length of the run of b before its first special
// byte: eight bytes at a time while none of them is (a word with a byte
// under 0x20, a '"' or a '\\' has a high bit set in these expressions,
// and a byte of 0x80 or more never does), then byte by byte.
func plainRun(b []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		quote, backslash := x^(ones*'"'), x^(ones*'\\')
		if (x-ones*0x20)&^x&highs|(quote-ones)&^quote&highs|(backslash-ones)&^backslash&highs != 0 {
			break
		}
	}
	for i < len(b) && !special[b[i]] {
		i++
	}
	return i
}

// special are the bytes a JSON string's reader must look at one by one:
// its end, an escape, and control characters (not allowed raw).
var special = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// decoder decodes standard, padded base64 read from r in blocks, without
// the line-break filtering of base64.NewDecoder (the string reader has
// removed line breaks already). Like DecodeString of the whole text, it
// fails on anything after padding and on a last quantum cut short.
type decoder struct {
	r      io.Reader
	in     [32 << 10]byte
	nin    int // undecoded bytes at the start of in
	outbuf [24 << 10]byte
	out    []byte // decoded, not yet returned
	padded bool   // a quantum ended with '=': nothing may follow
	read   int64  // base64 bytes decoded so far, for error offsets
	err    error
}

func newDecoder(r io.Reader) *decoder { return &decoder{r: r} }

func (d *decoder) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		n, err := d.r.Read(d.in[d.nin:])
		d.nin += n
		if q := d.nin / 4 * 4; q > 0 {
			if d.padded {
				d.err = base64.CorruptInputError(d.read)
				return 0, d.err
			}
			// Straight into p when it holds the block (the chunker's
			// buffer, as a rule), else into outbuf for the reads after.
			dst := d.outbuf[:]
			if len(p) >= q/4*3 {
				dst = p
			}
			m, derr := simd.StdEncoding.Decode(dst, d.in[:q])
			if derr != nil {
				var ce base64.CorruptInputError
				if errors.As(derr, &ce) {
					derr = base64.CorruptInputError(d.read + int64(ce))
				} else {
					derr = base64.CorruptInputError(d.read)
				}
				d.err = derr
				return 0, d.err
			}
			d.padded = d.in[q-1] == '='
			d.read += int64(q)
			d.nin = copy(d.in[:], d.in[q:d.nin])
			if len(p) >= q/4*3 {
				if m > 0 {
					return m, nil
				}
			} else {
				d.out = d.outbuf[:m]
			}
		}
		switch {
		case err == io.EOF && d.nin > 0:
			d.err = base64.CorruptInputError(d.read) // a quantum cut short
		case err != nil:
			d.err = err
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}
