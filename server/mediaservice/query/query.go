// Package query is the media service's q language.
//
// A query is space-separated terms, all of which must hold, each
// `path:condition`:
//
//	id:abc                          exact value (numbers and booleans typed)
//	id:(a,b)                        any of several values
//	details.bytes:>200              > < >= <= on numbers; on dates (quoted)
//	metadata.createdAt:(>="2021-05-18T07:27:27.455Z" AND <"2021-05-20T00:00:00Z")
//	url:null  url:exists  url:missing
//	id:~AB12   id:(~AB CD)           RE2 regular expression (bounded)
//	refIds.id:5                     dotted paths into objects and arrays
//
// Parse returns a Query that String prints back in canonical form (parse,
// print and parse again give the same query) and Match evaluates against a
// JSON document. Errors wrap ErrSyntax with a message fit for a 400.
//
// What one query may cost is bounded: at most MaxTerms terms of at most
// MaxValues values, regular expressions of at most MaxRegex bytes that
// compile to at most MaxRegexInsts RE2 instructions and are tried only on
// strings of at most MaxRegexInput bytes (RE2 runs in time linear in the
// string times the program), and Match charges a Budget for the work it
// does, failing with ErrTooCostly once it is spent.
//
// query.go parses and prints a query, match.go evaluates it.
//
// Queries are immutable and safe for concurrent use; a Budget is not.
package query

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

var (
	// ErrSyntax is wrapped by every parse error.
	ErrSyntax = errors.New("invalid q")
	// ErrTooCostly: evaluating the query spent its Budget.
	ErrTooCostly = errors.New("q is too costly to evaluate")
	// ErrTooComplex: a regular expression compiles to more than
	// MaxRegexInsts instructions. Parse wraps it with ErrSyntax.
	ErrTooComplex = errors.New("too complex")
)

// Limits on a query, so that one request cannot cost much.
const (
	MaxLen    = 4096
	MaxTerms  = 32
	MaxValues = 100
	MaxRegex  = 256
	// MaxRegexInsts bounds the RE2 program a regular expression
	// compiles to (x{200} is 200 instructions).
	MaxRegexInsts = 1000
	// MaxRegexInput: a regular expression never matches a longer string.
	MaxRegexInput = 2048
)

// Budget is the work Match may still do, in units of about a nanosecond
// of CPU (measured on a 2-core EPYC): a regular expression tried on a
// string costs its length times its program's instructions times 3, any
// other comparison 20, a date comparison 200. A request makes one and
// passes it to every Match.
type Budget struct{ left int64 }

// NewBudget returns a budget of n units.
func NewBudget(n int64) *Budget { return &Budget{left: n} }

// spend takes n units; it reports false once the budget is spent.
func (b *Budget) spend(n int64) bool {
	if b == nil {
		return true
	}
	b.left -= n
	return b.left >= 0
}

// Costs in Budget units.
const (
	costCompare = 20
	costDate    = 200
)

// Kind is what a term tests.
type Kind int

const (
	Equal   Kind = iota // any of Values
	Null                // absent or null
	Exists              // present, not null, not empty
	Missing             // absent
	Regex               // matches Pattern
	Range               // every one of Conds
)

// Value is a literal: Quoted ones are strings; bare ones are numbers or
// booleans when they read as such, strings otherwise.
type Value struct {
	Text   string
	Quoted bool
}

// Cond is one comparison of a range.
type Cond struct {
	Op    string // > < >= <=
	Value Value
}

// Term is one `path:condition`.
type Term struct {
	Path    []string
	Kind    Kind
	Values  []Value
	Conds   []Cond
	Pattern string
	re      *regexp.Regexp
	insts   int64 // the size of re's RE2 program
}

// Query is a parsed q: all of Terms.
type Query struct{ Terms []Term }

func errorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSyntax}, args...)...)
}

// Parse parses q; the empty q matches everything.
func Parse(q string) (*Query, error) {
	if len(q) > MaxLen {
		return nil, errorf("longer than %d bytes", MaxLen)
	}
	p := &parser{s: q}
	out := &Query{}
	for {
		p.space()
		if p.eof() {
			return out, nil
		}
		if len(out.Terms) == MaxTerms {
			return nil, errorf("more than %d terms", MaxTerms)
		}
		t, err := p.term()
		if err != nil {
			return nil, err
		}
		out.Terms = append(out.Terms, t)
		if !p.eof() && p.s[p.i] != ' ' {
			return nil, errorf("unexpected %q at %d: terms are separated by spaces", p.s[p.i], p.i)
		}
	}
}

type parser struct {
	s string
	i int
}

func (p *parser) eof() bool { return p.i >= len(p.s) }

func (p *parser) space() {
	for !p.eof() && p.s[p.i] == ' ' {
		p.i++
	}
}

func isIdent(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

func (p *parser) term() (Term, error) {
	var t Term
	for {
		start := p.i
		for !p.eof() && isIdent(p.s[p.i]) {
			p.i++
		}
		if p.i == start {
			return t, errorf("a field name is expected at %d", start)
		}
		t.Path = append(t.Path, p.s[start:p.i])
		if p.eof() {
			return t, errorf("%q has no condition: write field:value", strings.Join(t.Path, "."))
		}
		if p.s[p.i] == '.' {
			p.i++
			continue
		}
		if p.s[p.i] != ':' {
			return t, errorf("unexpected %q at %d in a field name", p.s[p.i], p.i)
		}
		p.i++
		break
	}
	if len(t.Path) > 8 {
		return t, errorf("field path deeper than 8")
	}
	if p.eof() || p.s[p.i] == ' ' {
		return t, errorf("%q has an empty condition", strings.Join(t.Path, "."))
	}
	switch c := p.s[p.i]; {
	case c == '(':
		p.i++
		return p.group(t)
	case c == '~':
		p.i++
		start := p.i
		for !p.eof() && p.s[p.i] != ' ' {
			p.i++
		}
		return t.regex(p.s[start:p.i])
	case c == '>' || c == '<':
		cond, err := p.cond()
		if err != nil {
			return t, err
		}
		t.Kind, t.Conds = Range, []Cond{cond}
		return t, nil
	}
	v, err := p.value(" ")
	if err != nil {
		return t, err
	}
	if !v.Quoted {
		switch v.Text {
		case "null":
			t.Kind = Null
			return t, nil
		case "exists":
			t.Kind = Exists
			return t, nil
		case "missing":
			t.Kind = Missing
			return t, nil
		}
	}
	t.Kind, t.Values = Equal, []Value{v}
	return t, nil
}

func (t Term) regex(pattern string) (Term, error) {
	if pattern == "" {
		return t, errorf("empty regular expression")
	}
	if len(pattern) > MaxRegex {
		return t, errorf("regular expression longer than %d bytes", MaxRegex)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return t, errorf("bad regular expression %q: %v", pattern, err)
	}
	// The same program regexp runs: the parse it does, simplified.
	parsed, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return t, errorf("bad regular expression %q: %v", pattern, err)
	}
	prog, err := syntax.Compile(parsed.Simplify())
	if err != nil {
		return t, errorf("bad regular expression %q: %v", pattern, err)
	}
	if len(prog.Inst) > MaxRegexInsts {
		return t, fmt.Errorf("%w: regular expression %q is %w (%d instructions, at most %d)", ErrSyntax, pattern, ErrTooComplex, len(prog.Inst), MaxRegexInsts)
	}
	t.Kind, t.Pattern, t.re, t.insts = Regex, pattern, re, int64(len(prog.Inst))
	return t, nil
}

// group parses what follows '(': a regex, a range joined by AND, or a
// list of values.
func (p *parser) group(t Term) (Term, error) {
	p.space()
	if !p.eof() && p.s[p.i] == '~' {
		end := strings.IndexByte(p.s[p.i:], ')')
		if end < 0 {
			return t, errorf("unclosed (")
		}
		pattern := p.s[p.i+1 : p.i+end]
		p.i += end + 1
		return t.regex(pattern)
	}
	if !p.eof() && (p.s[p.i] == '>' || p.s[p.i] == '<') {
		t.Kind = Range
		for {
			cond, err := p.cond()
			if err != nil {
				return t, err
			}
			if len(t.Conds) == MaxValues {
				return t, errorf("more than %d conditions", MaxValues)
			}
			t.Conds = append(t.Conds, cond)
			p.space()
			if p.eof() {
				return t, errorf("unclosed (")
			}
			if p.s[p.i] == ')' {
				p.i++
				return t, nil
			}
			if !strings.HasPrefix(p.s[p.i:], "AND ") {
				return t, errorf("conditions in ( ) are joined by AND, at %d", p.i)
			}
			p.i += 4
			p.space()
		}
	}
	t.Kind = Equal
	for {
		p.space()
		v, err := p.value(",)")
		if err != nil {
			return t, err
		}
		if len(t.Values) == MaxValues {
			return t, errorf("more than %d values", MaxValues)
		}
		t.Values = append(t.Values, v)
		p.space()
		if p.eof() {
			return t, errorf("unclosed (")
		}
		switch p.s[p.i] {
		case ')':
			p.i++
			return t, nil
		case ',':
			p.i++
		default:
			return t, errorf("values in ( ) are separated by commas, at %d", p.i)
		}
	}
}

func (p *parser) cond() (Cond, error) {
	if p.eof() || (p.s[p.i] != '>' && p.s[p.i] != '<') {
		return Cond{}, errorf("a comparison (> < >= <=) is expected at %d", p.i)
	}
	op := p.s[p.i : p.i+1]
	p.i++
	if !p.eof() && p.s[p.i] == '=' {
		op += "="
		p.i++
	}
	v, err := p.value(" )")
	if err != nil {
		return Cond{}, err
	}
	if !v.Quoted {
		if _, err := strconv.ParseFloat(v.Text, 64); err != nil {
			return Cond{}, errorf("%s needs a number or a quoted date, not %q", op, v.Text)
		}
	}
	return Cond{Op: op, Value: v}, nil
}

// value reads a quoted string or a bare word ending at one of stops.
func (p *parser) value(stops string) (Value, error) {
	if p.eof() {
		return Value{}, errorf("a value is expected at the end")
	}
	if p.s[p.i] == '"' {
		var b strings.Builder
		p.i++
		for {
			if p.eof() {
				return Value{}, errorf("unclosed quote")
			}
			c := p.s[p.i]
			p.i++
			switch c {
			case '"':
				return Value{Text: b.String(), Quoted: true}, nil
			case '\\':
				if p.eof() {
					return Value{}, errorf("unclosed quote")
				}
				b.WriteByte(p.s[p.i])
				p.i++
			default:
				b.WriteByte(c)
			}
		}
	}
	start := p.i
	for !p.eof() && !strings.ContainsRune(stops, rune(p.s[p.i])) && p.s[p.i] != ' ' && p.s[p.i] != '"' && p.s[p.i] != '(' {
		p.i++
	}
	if p.i == start {
		return Value{}, errorf("a value is expected at %d", start)
	}
	return Value{Text: p.s[start:p.i]}, nil
}

// String prints q in canonical form.
func (q *Query) String() string {
	parts := make([]string, len(q.Terms))
	for i, t := range q.Terms {
		parts[i] = t.String()
	}
	return strings.Join(parts, " ")
}

func (v Value) String() string {
	if !v.Quoted && v.Text != "null" && v.Text != "exists" && v.Text != "missing" && !strings.HasPrefix(v.Text, "~") {
		return v.Text
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v.Text) + `"`
}

// String prints the term in canonical form.
func (t Term) String() string {
	path := strings.Join(t.Path, ".") + ":"
	switch t.Kind {
	case Null:
		return path + "null"
	case Exists:
		return path + "exists"
	case Missing:
		return path + "missing"
	case Regex:
		if strings.Contains(t.Pattern, " ") {
			return path + "(~" + t.Pattern + ")"
		}
		return path + "~" + t.Pattern
	case Range:
		conds := make([]string, len(t.Conds))
		for i, c := range t.Conds {
			conds[i] = c.Op + c.Value.String()
		}
		return path + "(" + strings.Join(conds, " AND ") + ")"
	}
	if len(t.Values) == 1 {
		return path + t.Values[0].String()
	}
	vals := make([]string, len(t.Values))
	for i, v := range t.Values {
		vals[i] = v.String()
	}
	return path + "(" + strings.Join(vals, ",") + ")"
}
