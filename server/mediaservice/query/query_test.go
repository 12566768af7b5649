package query

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var doc = func() map[string]any {
	var m map[string]any
	json.Unmarshal([]byte(`{
		"id": "53ac81fd0cce8b26b36f3492", "type": "BLOB", "access": "PUBLIC", "url": null, "empty": "",
		"refIds": [{"id": "cat-1", "type": "CATEGORY"}, {"id": "prod-9", "type": "PRODUCT"}],
		"details": {"filename": "banner.png", "mimeType": "image/png", "bytes": 250, "public": true},
		"metadata": {"version": 3, "createdAt": "2021-05-19T07:27:27.455Z"}
	}`), &m)
	return m
}()

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		q    string
		want bool
	}{
		{"", true},
		{"id:53ac81fd0cce8b26b36f3492", true},
		{"id:other", false},
		{"id:(x,53ac81fd0cce8b26b36f3492)", true},
		{"id:(x, y)", false},
		{"type:BLOB access:PUBLIC", true},
		{"type:BLOB access:PRIVATE", false},
		{"details.bytes:>200", true},
		{"details.bytes:>250", false},
		{"details.bytes:>=250", true},
		{"details.bytes:<=249", false},
		{"details.bytes:(>=100 AND <=300)", true},
		{"details.bytes:(>=100 AND <200)", false},
		{"details.bytes:250", true},
		{`details.bytes:"250"`, false},
		{`metadata.createdAt:(>="2021-05-18T07:27:27.455Z" AND <"2021-05-20T07:27:27.455Z")`, true},
		{`metadata.createdAt:>"2021-05-19T08:00:00+01:00"`, true},
		{`metadata.createdAt:<"2021-05-19T07:27:27Z"`, false},
		{"url:null", true},
		{"nothere:null", true},
		{"id:null", false},
		{"url:missing", false},
		{"nothere:missing", true},
		{"url:exists", false},
		{"empty:exists", false},
		{"id:exists", true},
		{"details.public:true", true},
		{"details.public:false", false},
		{"id:~^53ac", true},
		{"id:~ABCD", false},
		{"details.filename:(~ban ner|banner)", true},
		{"refIds.id:prod-9", true},
		{"refIds.id:prod-1", false},
		{"refIds.type:(LABEL,PRODUCT)", true},
		{"details.mimeType:image/png", true},
	} {
		q, err := Parse(tc.q)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.q, err)
			continue
		}
		if got, err := q.Match(doc, nil); got != tc.want || err != nil {
			t.Errorf("%q: Match = %v, %v; want %v", tc.q, got, err, tc.want)
		}
		again, err := Parse(q.String())
		if err != nil || again.String() != q.String() {
			t.Errorf("%q printed as %q, which re-parses to %v, %v", tc.q, q.String(), again, err)
		}
	}
}

func TestSyntaxErrors(t *testing.T) {
	for _, q := range []string{
		"id", "id:", ":x", "id: x", "id:(a,b", "id:(>1 OR <2)", "id:(>1 AND", `id:"open`, "id:~(", "a.b.c.d.e.f.g.h.i:1",
		"id:>abc", "id:~", "x:1" + strings.Repeat(" x:1", MaxTerms), "id:~" + strings.Repeat("a", MaxRegex+1),
		strings.Repeat("a", MaxLen+1), "id:a\"b", "i d:1", "id:(a b)",
	} {
		if _, err := Parse(q); !errors.Is(err, ErrSyntax) {
			t.Errorf("Parse(%.40q) = %v, want ErrSyntax", q, err)
		}
	}
}

func TestIndexHints(t *testing.T) {
	q, _ := Parse(`refIds.id:(a,b) metadata.createdAt:(>="2021-01-01T00:00:00Z" AND <"2022-01-01T00:00:00Z")`)
	if v, ok := q.Exact("refIds.id"); !ok || strings.Join(v, ",") != "a,b" {
		t.Errorf("Exact = %v, %v", v, ok)
	}
	lo, hi, ok := q.Bounds("metadata.createdAt")
	if !ok || lo.Year() != 2021 || hi.Year() != 2022 {
		t.Errorf("Bounds = %v, %v, %v", lo, hi, ok)
	}
}

// FuzzQuery: Parse never panics; what it accepts prints canonically
// (print, parse, print gives the same text) and evaluates without panic.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"id:a", "id:(a,b) x.y:>3", `d:(>="2021-05-18T07:27:27.455Z" AND <"x")`, "u:null v:exists w:missing", "id:~a.b", "f:(~a b)", `s:"q\"x"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("Parse(%q): %v is not ErrSyntax", s, err)
			}
			return
		}
		printed := q.String()
		again, err := Parse(printed)
		if err != nil {
			t.Fatalf("Parse(%q) printed %q, which does not parse: %v", s, printed, err)
		}
		if again.String() != printed {
			t.Fatalf("Parse(%q): printed %q, then %q", s, printed, again.String())
		}
		if _, err := q.Match(doc, NewBudget(1<<20)); err != nil && !errors.Is(err, ErrTooCostly) {
			t.Fatalf("Match(%q): %v", s, err)
		}
	})
}

// TestCost: a query of a few costly regular expressions over an asset
// with many long refIds spends its budget and fails (the request answers
// 400), instead of taking hundreds of milliseconds; one that compiles to
// a huge program is refused when parsed; and ordinary queries cost little.
func TestCost(t *testing.T) {
	var refs []any
	for i := range 100 {
		refs = append(refs, map[string]any{"id": strings.Repeat(fmt.Sprint(i%10), 256), "type": "PRODUCT"})
	}
	big := map[string]any{"id": "x", "refIds": refs}

	if _, err := Parse(`refIds.id:~(.{0,30}){0,30}z`); !errors.Is(err, ErrSyntax) || !errors.Is(err, ErrTooComplex) {
		t.Errorf("a regular expression of ~1900 instructions: %v, want too complex", err)
	}
	// Seven terms that match only the last refId, and one that never
	// does: every one of them scans all 100.
	refs[99].(map[string]any)["id"] = strings.Repeat("9", 255) + "x"
	q, err := Parse(strings.TrimSpace(strings.Repeat(`refIds.id:~[0-9a-z]{200}x `, 7) + `refIds.id:~[0-9a-z]{200}y`))
	if err != nil {
		t.Fatal(err)
	}
	const budget = 50_000_000
	start := time.Now()
	_, err = q.Match(big, NewBudget(budget))
	d := time.Since(start)
	if !errors.Is(err, ErrTooCostly) {
		t.Fatalf("8 regular expressions of 200 instructions over 100 refIds of 256 bytes: %v, want ErrTooCostly", err)
	}
	t.Logf("a budget of %d units spent in %v", budget, d)
	if _, err := q.Match(big, nil); err != nil {
		t.Fatal(err)
	}
	t.Logf("the same match unbounded: %v", time.Since(start)-d)

	cheap, _ := Parse("refIds.id:p-100 type:BLOB id:~^5c")
	b := NewBudget(budget)
	for i := range 10_000 {
		if _, err := cheap.Match(doc, b); err != nil {
			t.Fatalf("an ordinary query ran out of budget on its %dth asset", i)
		}
	}
}
