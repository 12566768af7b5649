package blobhttp

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func TestCoalesce(t *testing.T) {
	const size = 10000
	many := func(n, step int64) string {
		var parts []string
		for i := range n {
			parts = append(parts, fmt.Sprintf("%d-%d", i*step, i*step))
		}
		return "bytes=" + strings.Join(parts, ",")
	}
	for _, tc := range []struct {
		name, in, want string
		ok             bool
	}{
		{"one range", "bytes=0-99", "", false},
		{"suffix alone", "bytes=-500", "", false},
		{"not bytes", "items=0-1,2-3", "", false},
		{"bad syntax", "bytes=0-1,x-2", "", false},
		{"backwards", "bytes=5-1,7-8", "", false},
		{"all outside", "bytes=20000-20001,30000-", "", false},
		{"sorted and kept", "bytes=5000-5099,0-99", "bytes=0-99,5000-5099", true},
		{"overlapping", "bytes=0-99,50-199,150-250", "bytes=0-250", true},
		{"near", "bytes=0-0,100-100", "bytes=0-100", true},
		{"suffix and open", "bytes=9000-,-100,0-9", "bytes=0-9,9000-9999", true},
		{"past the end clipped", "bytes=9990-20000,0-0", "bytes=0-0,9990-9999", true},
		{"one outside dropped", "bytes=0-0,50000-50001", "bytes=0-0", true},
		{"alternating ends", "bytes=0-0,9999-9999,2-2,9997-9997,4-4,9995-9995", "bytes=0-4,9995-9999", true},
		{"too many after merging", many(100, 150), "", true},
		{"many that merge", many(1000, 5), "bytes=0-4995", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := coalesce(tc.in, size)
			if got != tc.want || ok != tc.ok {
				t.Errorf("coalesce(%.80q, %d) = %q, %v; want %q, %v", tc.in, size, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// FuzzCoalesce: on any header, coalesce never panics, and what it
// rewrites is at most MaxRanges sorted, disjoint, non-adjacent ranges
// inside the content, which coalesce leaves as they are.
func FuzzCoalesce(f *testing.F) {
	for _, s := range []string{"bytes=0-0,9-9", "bytes=-5,0-", "bytes=1-2,3-4,5-", "bytes= 0 - 1 , , 4-", "bytes=0-1,18446744073709551615-", "bytes=0-0,-0"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		out, ok := coalesce(h, size)
		if !ok || out == "" {
			return
		}
		specs := strings.Split(strings.TrimPrefix(out, "bytes="), ",")
		if len(specs) > MaxRanges {
			t.Fatalf("coalesce(%q, %d) = %d ranges", h, size, len(specs))
		}
		prev := int64(-1)
		for _, s := range specs {
			a, b, _ := strings.Cut(s, "-")
			first, err1 := strconv.ParseInt(a, 10, 64)
			last, err2 := strconv.ParseInt(b, 10, 64)
			if err1 != nil || err2 != nil || first > last || prev >= 0 && first-prev <= nearGap || last >= size {
				t.Fatalf("coalesce(%q, %d) = %q: range %q", h, size, out, s)
			}
			prev = last
		}
		if len(specs) > 1 {
			if again, ok := coalesce(out, size); !ok || again != out {
				t.Fatalf("coalesce(%q) = %q, coalesce of that = %q, %v", h, out, again, ok)
			}
		}
	})
}
