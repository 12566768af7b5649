package query

import (
	"strconv"
	"strings"
	"time"
)

// Match reports whether doc (a decoded JSON object) satisfies every term,
// spending b (nil: unbounded); it fails with ErrTooCostly once b is spent.
func (q *Query) Match(doc map[string]any, b *Budget) (bool, error) {
	for _, t := range q.Terms {
		ok, err := t.match(doc, b)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// leaves resolves a dotted path, through arrays (any element), to the
// values found; found is false when the path leads nowhere.
func leaves(v any, path []string, out []any) ([]any, bool) {
	if len(path) == 0 {
		if arr, ok := v.([]any); ok {
			return append(out, arr...), true
		}
		return append(out, v), true
	}
	switch x := v.(type) {
	case map[string]any:
		next, ok := x[path[0]]
		if !ok {
			return out, false
		}
		return leaves(next, path[1:], out)
	case []any:
		found := false
		for _, e := range x {
			var ok bool
			out, ok = leaves(e, path, out)
			found = found || ok
		}
		return out, found
	}
	return out, false
}

func (t Term) match(doc map[string]any, b *Budget) (bool, error) {
	vals, found := leaves(doc, t.Path, nil)
	if !b.spend(costCompare * int64(1+len(vals))) {
		return false, ErrTooCostly
	}
	switch t.Kind {
	case Missing:
		return !found, nil
	case Null:
		if !found {
			return true, nil
		}
		for _, v := range vals {
			if v != nil {
				return false, nil
			}
		}
		return true, nil
	case Exists:
		for _, v := range vals {
			if v != nil && v != "" {
				return true, nil
			}
		}
		return false, nil
	}
	for _, v := range vals {
		switch t.Kind {
		case Equal:
			if !b.spend(costCompare * int64(len(t.Values))) {
				return false, ErrTooCostly
			}
			for _, want := range t.Values {
				if equal(v, want) {
					return true, nil
				}
			}
		case Regex:
			s, ok := v.(string)
			if !ok || len(s) > MaxRegexInput {
				continue
			}
			if !b.spend(1 + 3*int64(len(s))*t.insts) {
				return false, ErrTooCostly
			}
			if t.re.MatchString(s) {
				return true, nil
			}
		case Range:
			if !b.spend(costDate * int64(len(t.Conds))) {
				return false, ErrTooCostly
			}
			ok := true
			for _, c := range t.Conds {
				if !compare(v, c) {
					ok = false
					break
				}
			}
			if ok {
				return true, nil
			}
		}
	}
	return false, nil
}

func equal(v any, want Value) bool {
	switch x := v.(type) {
	case string:
		return x == want.Text
	case float64:
		f, err := strconv.ParseFloat(want.Text, 64)
		return !want.Quoted && err == nil && f == x
	case bool:
		return !want.Quoted && strconv.FormatBool(x) == want.Text
	}
	return false
}

// compare tests v against one range condition: numbers numerically,
// dates (RFC 3339) in time order, other strings lexically.
func compare(v any, c Cond) bool {
	var d int
	switch x := v.(type) {
	case float64:
		f, err := strconv.ParseFloat(c.Value.Text, 64)
		if err != nil {
			return false
		}
		d = cmpFloat(x, f)
	case string:
		a, aerr := time.Parse(time.RFC3339Nano, x)
		b, berr := time.Parse(time.RFC3339Nano, c.Value.Text)
		if aerr == nil && berr == nil {
			d = a.Compare(b)
		} else if c.Value.Quoted {
			d = strings.Compare(x, c.Value.Text)
		} else {
			return false
		}
	default:
		return false
	}
	switch c.Op {
	case ">":
		return d > 0
	case "<":
		return d < 0
	case ">=":
		return d >= 0
	case "<=":
		return d <= 0
	}
	return false
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Exact returns the values an Equal term on path requires, if q has one:
// what an index can look up.
func (q *Query) Exact(path string) ([]string, bool) {
	for _, t := range q.Terms {
		if t.Kind == Equal && strings.Join(t.Path, ".") == path {
			vals := make([]string, len(t.Values))
			for i, v := range t.Values {
				vals[i] = v.Text
			}
			return vals, true
		}
	}
	return nil, false
}

// Bounds returns the time range a Range term on path requires, if q has
// one with date bounds: lo and hi are zero where unbounded.
func (q *Query) Bounds(path string) (lo, hi time.Time, ok bool) {
	for _, t := range q.Terms {
		if t.Kind != Range || strings.Join(t.Path, ".") != path {
			continue
		}
		for _, c := range t.Conds {
			at, err := time.Parse(time.RFC3339Nano, c.Value.Text)
			if err != nil {
				return time.Time{}, time.Time{}, false
			}
			switch c.Op {
			case ">", ">=":
				if lo.IsZero() || at.After(lo) {
					lo = at
				}
			case "<", "<=":
				if hi.IsZero() || at.Before(hi) {
					hi = at
				}
			}
		}
		return lo, hi, true
	}
	return time.Time{}, time.Time{}, false
}
