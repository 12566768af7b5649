package blob

import (
	"errors"
	"strings"
	"testing"
)

// Known answers from the BLAKE3 reference (b3sum): pinned so an accidental
// change of hash or encoding cannot go unnoticed.
func TestKnownAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
		{"hello", "hello", "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"},
		{"abc", "abc", "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Sum([]byte(tc.in)).String(); got != tc.want {
				t.Errorf("Sum(%q) = %s, want %s", tc.in, got, tc.want)
			}
			h := New()
			for i := range len(tc.in) {
				h.Write([]byte{tc.in[i]})
			}
			if got := h.ID().String(); got != tc.want {
				t.Errorf("streamed Sum(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
	if Empty.String() != "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262" {
		t.Errorf("Empty = %s", Empty)
	}
}

func TestParseRoundTrip(t *testing.T) {
	id := Sum([]byte("round trip"))
	got, err := ParseID(id.String())
	if err != nil || got != id {
		t.Fatalf("ParseID(%s) = %v, %v", id, got, err)
	}
	up, err := ParseID(strings.ToUpper(id.String()))
	if err != nil || up != id {
		t.Fatalf("ParseID(upper) = %v, %v", up, err)
	}
	text, _ := id.MarshalText()
	var back ID
	if err := back.UnmarshalText(text); err != nil || back != id {
		t.Fatalf("UnmarshalText = %v, %v", back, err)
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"short", "abcd"},
		{"long", strings.Repeat("a", 65)},
		{"not hex", strings.Repeat("g", 64)},
		{"zero", strings.Repeat("0", 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseID(tc.in); !errors.Is(err, ErrInvalidID) {
				t.Errorf("ParseID(%q) error = %v, want ErrInvalidID", tc.in, err)
			}
		})
	}
	if _, err := FromBytes(make([]byte, 31)); !errors.Is(err, ErrInvalidID) {
		t.Errorf("FromBytes(31 bytes) error = %v", err)
	}
}
