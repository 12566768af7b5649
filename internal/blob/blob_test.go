package blob

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/testtool"
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

// TestB3sum checks IDs against the b3sum tool on random files, so that
// `b3sum` on a downloaded file prints the blob's ID.
func TestB3sum(t *testing.T) {
	b3sum := testtool.Path(t, "b3sum", "apt-get install -y b3sum")
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(7, 7))
	for _, n := range []int{0, 1, 1023, 1024, 1025, 64<<10 - 1, 64 << 10, 1<<20 + 3} { // both sides of largeSum
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		path := filepath.Join(dir, fmt.Sprintf("f%d", n))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(b3sum, "--no-names", path).Output()
		if err != nil {
			t.Fatalf("b3sum %s: %v", path, err)
		}
		if got, want := strings.TrimSpace(string(out)), Sum(data).String(); got != want {
			t.Errorf("size %d: b3sum = %s, blob.Sum = %s", n, got, want)
		}
	}
}
