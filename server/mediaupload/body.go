package mediaupload

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The upload body is {"content": "<base64>", "expirationDate": "YYYY-MM-DD"},
// up to ~133 MB for 100 MB of content. It is parsed as a stream: the
// content string is decoded from base64 while it is read and handed to
// the store, never held whole; every other value is small and bounded.

var (
	errSyntax = errors.New("the body is not a valid JSON object")
	// errBase64 marks content that is not base64.
	errBase64 = errors.New("content is not valid base64")
)

// maxSmall bounds the bytes of everything in the body but the content.
const maxSmall = 64 << 10

// uploadBody is what parseUpload found besides the content.
type uploadBody struct {
	hasContent     bool
	expirationDate *string
	// contentErr is the content's problem (not base64, too large, not a
	// string), reported as a validation reason.
	contentErr error
}

// parseUpload reads the JSON object from r. When the content value
// begins, onContent is called with a reader of the decoded bytes and must
// read it to its end or fail.
func parseUpload(r io.Reader, onContent func(io.Reader) error) (uploadBody, error) {
	p := &parser{r: bufio.NewReaderSize(r, 64<<10)}
	var out uploadBody
	if err := p.expect('{'); err != nil {
		return out, err
	}
	if c, err := p.peek(); err != nil {
		return out, err
	} else if c == '}' {
		p.next()
		return out, p.end()
	}
	for {
		if err := p.expect('"'); err != nil {
			return out, err
		}
		k, err := p.smallString()
		if err != nil {
			return out, err
		}
		if err := p.expect(':'); err != nil {
			return out, err
		}
		switch k {
		case "content":
			if out.hasContent {
				return out, fmt.Errorf("%w: content given twice", errSyntax)
			}
			out.hasContent = true
			c, err := p.peek()
			if err != nil {
				return out, err
			}
			if c != '"' {
				out.contentErr = errors.New("content must be a base64 string")
				if err := p.skipValue(0); err != nil {
					return out, err
				}
				break
			}
			p.next()
			sr := &stringReader{p: p}
			err = onContent(base64.NewDecoder(base64.StdEncoding, sr))
			if sr.err != nil {
				if errors.Is(sr.err, errBase64) {
					out.contentErr = errBase64
					return out, nil // the rest of the body is not worth reading
				}
				return out, sr.err
			}
			if err != nil {
				out.contentErr = err
				return out, nil
			}
			if !sr.done {
				return out, fmt.Errorf("%w: content string not consumed", errSyntax)
			}
		case "expirationDate":
			c, err := p.peek()
			if err != nil {
				return out, err
			}
			if c == '"' {
				p.next()
				s, err := p.smallString()
				if err != nil {
					return out, err
				}
				out.expirationDate = &s
			} else {
				bad := "not a string"
				if err := p.skipValue(0); err != nil {
					return out, err
				}
				if p.lastLiteral != "null" {
					out.expirationDate = &bad
				}
			}
		default:
			if err := p.skipValue(0); err != nil {
				return out, err
			}
		}
		c, err := p.nonSpace()
		if err != nil {
			return out, err
		}
		switch c {
		case ',':
			continue
		case '}':
			return out, p.end()
		}
		return out, fmt.Errorf("%w: unexpected %q after a value", errSyntax, c)
	}
}

type parser struct {
	r           *bufio.Reader
	small       int // bytes read outside the content string
	lastLiteral string
}

func (p *parser) next() (byte, error) {
	c, err := p.r.ReadByte()
	if err == io.EOF {
		return 0, fmt.Errorf("%w: unexpected end", errSyntax)
	}
	if err != nil {
		return 0, err
	}
	if p.small++; p.small > maxSmall {
		return 0, fmt.Errorf("%w: too much besides the content", errSyntax)
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
	return c, nil
}

func (p *parser) expect(want byte) error {
	c, err := p.nonSpace()
	if err != nil {
		return err
	}
	if c != want {
		return fmt.Errorf("%w: want %q, got %q", errSyntax, want, c)
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
			return fmt.Errorf("%w: data after the object", errSyntax)
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
			return "", fmt.Errorf("%w: control character in a string", errSyntax)
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
					return "", fmt.Errorf("%w: bad \\u escape", errSyntax)
				}
				b.WriteRune(r)
			default:
				return "", fmt.Errorf("%w: bad escape \\%c", errSyntax, e)
			}
		default:
			b.WriteByte(c)
		}
	}
}

// skipValue reads past one JSON value of any kind.
func (p *parser) skipValue(depth int) error {
	if depth > 32 {
		return fmt.Errorf("%w: nested too deeply", errSyntax)
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
				return fmt.Errorf("%w: want , or %c", errSyntax, closing)
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
			if p.small++; p.small > maxSmall {
				return fmt.Errorf("%w: too much besides the content", errSyntax)
			}
			lit = append(lit, d)
		}
		s := string(lit)
		p.lastLiteral = s
		if (c == 't' && s != "true") || (c == 'f' && s != "false") || (c == 'n' && s != "null") {
			return fmt.Errorf("%w: bad literal %q", errSyntax, s)
		}
		return nil
	}
	return fmt.Errorf("%w: unexpected %q", errSyntax, c)
}

// stringReader yields the raw bytes of a JSON string being read (the
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
		c, err := s.p.r.ReadByte()
		if err == io.EOF {
			s.err = fmt.Errorf("%w: the body ends inside content", errSyntax)
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
				s.err = fmt.Errorf("%w: the body ends inside content", errSyntax)
				return n, s.err
			}
			switch e {
			case '/':
				b[n] = '/'
				n++
			case 'n', 'r':
				// a line break in the base64: skipped
			default:
				s.err = errBase64
				return n, s.err
			}
		case c < 0x20:
			s.err = errBase64
			return n, s.err
		default:
			b[n] = c
			n++
		}
	}
	return n, nil
}
