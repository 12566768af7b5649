package blobhttp

import (
	"mime"
	"strings"
	"testing"
)

// contentDisposition writes what mime.FormatMediaType does, for names of
// every byte and the kinds uploads have.
func TestContentDisposition(t *testing.T) {
	names := []string{"", "f1", "photo.jpg", "a b.jpg", "été.png", `q"uote`, "semi;colon", "x=y", "tab\tname",
		"back\\slash", "slash/name", "(paren)", "a,b", "under_score-dash.tar.gz", "~tilde!#$%&'*+^`{|}"}
	for c := 0; c < 256; c++ {
		names = append(names, "a"+string(rune(c)), string([]byte{byte(c)}))
	}
	for _, disposition := range []string{"inline", "attachment"} {
		for _, name := range names {
			want := disposition
			if name != "" {
				want = mime.FormatMediaType(disposition, map[string]string{"filename": name})
			}
			if got := contentDisposition(disposition, name); got != want {
				t.Errorf("contentDisposition(%q, %q) = %q, want %q", disposition, name, got, want)
			}
		}
	}
}

// Inline answers what it answers through mime.ParseMediaType, for types
// with and without parameters, in any case and spacing, and broken ones.
func TestInline(t *testing.T) {
	types := []string{"", "image/png", "IMAGE/PNG", " image/png ", "image/png;", "image/png; q=1", "Image/Jpeg",
		"text/plain; charset=utf-8", "text/html", "text/html; charset=utf-8", "image/svg+xml", "application/pdf",
		"image/png/x", "image /png", "image/png\x00", "image/", "/png", "application/octet-stream", "video/mp4\t",
		"\u212aimage/png", "image/pn\u212a", "text/plain;charset=\"broken"}
	for k := range inline {
		types = append(types, k, strings.ToUpper(k), k+" ", k+";a=b", k+"x")
	}
	for _, ctype := range types {
		mt, _, err := mime.ParseMediaType(ctype)
		want := err == nil && inline[mt]
		if got := Inline(ctype); got != want {
			t.Errorf("Inline(%q) = %v, want %v", ctype, got, want)
		}
	}
}
