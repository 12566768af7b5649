package blobhttp

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// MaxRanges is the most ranges one response is made of. A request that
// asks for more, once overlapping and near ones are merged, gets the
// whole content (a server may ignore a Range header, RFC 9110 §14.2).
const MaxRanges = 64

// nearGap merges ranges separated by fewer bytes than this: less than
// the part headers a multipart response would spend between them.
const nearGap = 128

// span is an inclusive byte range.
type span struct{ first, last int64 }

// coalesce rewrites a Range header of several ranges so that serving it
// reads each chunk once, in order, and costs the server about what
// sending the bytes does: the ranges sorted, those that overlap or are
// near merged (RFC 9110 §14.2 allows both), and more than MaxRanges
// dropped for the whole content (ok with header ""). A single range,
// a header it cannot parse, or one whose ranges all lie outside the
// content, is left as it is (ok false): http.ServeContent answers it as
// the RFC says, 206 or 416.
func coalesce(header string, size int64) (string, bool) {
	specs, found := strings.CutPrefix(header, "bytes=")
	if !found || size <= 0 || !strings.Contains(specs, ",") {
		return "", false
	}
	var spans []span
	for spec := range strings.SplitSeq(specs, ",") {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		first, last, ok := strings.Cut(spec, "-")
		if !ok {
			return "", false
		}
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		var s span
		if first == "" { // the last n bytes
			n, err := strconv.ParseInt(last, 10, 64)
			if err != nil || n < 0 {
				return "", false
			}
			if n == 0 {
				continue
			}
			s = span{max(0, size-n), size - 1}
		} else {
			f, err := strconv.ParseInt(first, 10, 64)
			if err != nil || f < 0 {
				return "", false
			}
			s = span{f, size - 1}
			if last != "" {
				l, err := strconv.ParseInt(last, 10, 64)
				if err != nil || l < f {
					return "", false
				}
				s.last = min(l, size-1)
			}
			if f >= size {
				continue // outside the content: no part of the answer
			}
		}
		spans = append(spans, s)
	}
	if len(spans) == 0 {
		return "", false
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.first, b.first) })
	merged := spans[:1]
	for _, s := range spans[1:] {
		cur := &merged[len(merged)-1]
		if s.first-cur.last <= nearGap { // both are >= 0: no overflow
			cur.last = max(cur.last, s.last)
			continue
		}
		merged = append(merged, s)
	}
	if len(merged) > MaxRanges {
		return "", true
	}
	var b strings.Builder
	b.WriteString("bytes=")
	for i, s := range merged {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(s.first, 10))
		b.WriteByte('-')
		b.WriteString(strconv.FormatInt(s.last, 10))
	}
	return b.String(), true
}
