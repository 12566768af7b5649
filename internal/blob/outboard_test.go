package blob

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// TestOutboard: the outboard's root is the content's ID, every
// group-aligned part verifies at its own offset and at no other, and a
// changed byte of the part or of the outboard's nodes on its path fails.
func TestOutboard(t *testing.T) {
	for _, n := range []int{1, OutboardGroup - 1, OutboardGroup, OutboardGroup + 1, 5*OutboardGroup + 777, 64 * OutboardGroup, 1<<20 + 12345} {
		data := make([]byte, n)
		rand.NewChaCha8([32]byte{byte(n)}).Read(data)
		id, ob := Outboard(data)
		if id != Sum(data) {
			t.Fatalf("n=%d: outboard root %s, content ID %s", n, id, Sum(data))
		}
		groups := (n + OutboardGroup - 1) / OutboardGroup
		r := rand.New(rand.NewPCG(uint64(n), 1))
		for range 20 {
			g0 := r.IntN(groups)
			g1 := g0 + 1 + r.IntN(groups-g0)
			from, to := g0*OutboardGroup, min(g1*OutboardGroup, n)
			part := data[from:to]
			if !VerifyPart(part, ob, int64(from), id) {
				t.Fatalf("n=%d: groups [%d,%d) do not verify", n, g0, g1)
			}
			if groups > 1 && VerifyPart(part, ob, int64((g0+1)%groups*OutboardGroup), id) {
				t.Fatalf("n=%d: groups [%d,%d) verify at another offset", n, g0, g1)
			}
			bad := bytes.Clone(part)
			bad[r.IntN(len(bad))] ^= 1 << r.IntN(8)
			if VerifyPart(bad, ob, int64(from), id) {
				t.Fatalf("n=%d: a changed byte verifies", n)
			}
			if len(ob) > 8 {
				// The root's two children are on every part's path.
				badOb := bytes.Clone(ob)
				badOb[8+r.IntN(64)] ^= 1
				if VerifyPart(part, badOb, int64(from), id) {
					t.Fatalf("n=%d: a changed outboard verifies a part", n)
				}
			}
		}
		if n > OutboardGroup && VerifyPart(data[1:OutboardGroup+1], ob, 1, id) {
			t.Fatalf("n=%d: a part not aligned to a group verifies", n)
		}
		if VerifyPart(data, ob, 0, Sum([]byte("other"))) {
			t.Fatalf("n=%d: verifies against another ID", n)
		}
	}
}

// TestHasher: whatever the writes (the first small or large), the
// streaming ID is Sum of their concatenation.
func TestHasher(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{4}).Read(data)
	for range 50 {
		n := r.IntN(len(data))
		h := New()
		for off := 0; off < n; {
			w := min(n-off, 1+r.IntN(200<<10))
			h.Write(data[off : off+w])
			off += w
		}
		if got, want := h.ID(), Sum(data[:n]); got != want {
			t.Fatalf("%d bytes streamed: %s, want %s", n, got, want)
		}
	}
	if New().ID() != Empty {
		t.Fatal("nothing written is not Empty")
	}
}
