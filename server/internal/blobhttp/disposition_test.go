package blobhttp

import (
	"mime"
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
