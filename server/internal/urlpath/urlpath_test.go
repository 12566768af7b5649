package urlpath

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		dir  bool
		bad  bool
	}{
		{in: "/", dir: true},
		{in: "/public/277", want: []string{"public", "277"}},
		{in: "/public/277/", want: []string{"public", "277"}, dir: true},
		{in: "/public/277/images/a.jpeg", want: []string{"public", "277", "images", "a.jpeg"}},
		{in: `/public/277/images\a.jpeg`, want: []string{"public", "277", "images", "a.jpeg"}},
		{in: "/public/277/images%5Ca.jpeg", want: []string{"public", "277", "images", "a.jpeg"}},
		{in: "/public/277/images%2Fa.jpeg", want: []string{"public", "277", "images", "a.jpeg"}},
		{in: "/p/my%20file.jpeg", want: []string{"p", "my file.jpeg"}},
		{in: "/p/caf%C3%A9", want: []string{"p", "café"}},    // NFC already
		{in: "/p/cafe%CC%81", want: []string{"p", "café"}},   // NFD → NFC
		{in: "/p/%E2%82%AC+%25", want: []string{"p", "€+%"}}, // + is not a space in paths
		{in: "/p/%EF%BF%BD", want: []string{"p", "\uFFFD"}},  // a real U+FFFD is a character
		{in: "/p/a..b/.c/c.", want: []string{"p", "a..b", ".c", "c."}},
		{in: "/p/../x", bad: true},
		{in: "/p/./x", bad: true},
		{in: "/p/%2e%2e/x", bad: true},
		{in: "/p/%2E/x", bad: true},
		{in: `/p/..\x`, bad: true},
		{in: "/p/a%5C..%5Cx", bad: true},
		{in: "/p//x", bad: true},
		{in: "/p/a%2F%2Fb", bad: true},
		{in: "//p", bad: true},
		{in: "/p/a%00b", bad: true},
		{in: "/p/a%0Ab", bad: true},
		{in: "/p/a%7Fb", bad: true},
		{in: "/p/a%C2%85b", bad: true}, // C1 control NEL
		{in: "/p/%FF", bad: true},
		{in: "/p/%C3", bad: true},
		{in: "/p/%zz", bad: true},
		{in: "/p/%", bad: true},
		{in: "p/x", bad: true},
		{in: "", bad: true},
		{in: "/" + strings.Repeat("a", MaxLen), bad: true},
		{in: "/" + strings.Repeat("%61", MaxLen), bad: true},
	} {
		name := tc.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			got, dir, err := Split(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("Split(%q) = %q, want an error", tc.in, got)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Split(%q) error %v does not match ErrInvalid", tc.in, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) || dir != tc.dir {
				t.Fatalf("Split(%q) = %q, %v, %v; want %q, %v", tc.in, got, dir, err, tc.want, tc.dir)
			}
		})
	}
}

func TestName(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		bad  bool
	}{
		{in: "/images/b.jpeg", want: "images/b.jpeg"},
		{in: "images/b.jpeg", want: "images/b.jpeg"},
		{in: `\images\b.jpeg`, want: "images/b.jpeg"},
		{in: "100%25.txt", want: "100%25.txt"}, // body strings are not percent-decoded
		{in: "cafe\u0301", want: "café"},
		{in: "/", bad: true},
		{in: "", bad: true},
		{in: "a/", bad: true},
		{in: "../b", bad: true},
		{in: "a//b", bad: true},
		{in: "a\x00", bad: true},
	} {
		got, err := Name(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("Name(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || Join(got) != tc.want {
			t.Errorf("Name(%q) = %q, %v; want %q", tc.in, Join(got), err, tc.want)
		}
	}
}

// FuzzSplit checks on arbitrary paths that Split never panics, that its
// output is canonical (splitting the escaped segments again gives them
// back), and that no segment can climb out of its parent.
func FuzzSplit(f *testing.F) {
	for _, s := range []string{"/public/277/images/a.jpeg", `/a\b`, "/a%2Fb/", "/%2e%2e", "/cafe%CC%81", "/a%00", "//", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		segs, dir, err := Split(in)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Split(%q): error %v does not match ErrInvalid", in, err)
			}
			return
		}
		for _, s := range segs {
			if s == "" || s == "." || s == ".." || strings.ContainsAny(s, `/\`) || !utf8.ValidString(s) {
				t.Fatalf("Split(%q) gave segment %q", in, s)
			}
		}
		if len(Join(segs)) > MaxLen {
			t.Fatalf("Split(%q) gave %d bytes", in, len(Join(segs)))
		}
		esc := "/" + Escape(segs)
		if dir && len(segs) > 0 {
			esc += "/"
		}
		again, dir2, err := Split(esc)
		if err != nil || !slices.Equal(again, segs) || dir2 != dir {
			t.Fatalf("Split(%q) = %q; re-split of %q = %q, %v, %v", in, segs, esc, again, dir2, err)
		}
	})
}
