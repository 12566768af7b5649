package engine

import (
	"bytes"
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

// TestHideDedup: an upload of bytes already stored (by anyone) waits as
// writing them would have taken, so that its timing tells nothing: its
// stored bytes at the measured cost of a written byte, and a sync if it
// wrote nothing; with RevealDedup it does not wait.
func TestHideDedup(t *testing.T) {
	for _, reveal := range []bool{false, true} {
		e, err := Open(filepath.Join(t.TempDir(), "data"), Options{RevealDedup: reveal})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		data := make([]byte, 2<<20)
		rand.NewChaCha8([32]byte{3}).Read(data)
		// Another tenant's file.
		if _, err := e.PutRecord(context.Background(), Key{Namespace: "ns", Tenant: "other", Name: "f"}, bytes.NewReader(data), Write{}); err != nil {
			t.Fatal(err)
		}
		// As if writing were slow: 100 ns a byte, a sync of 50 ms.
		for range 20 {
			e.writeCost.observe(1<<20, 100<<20, 50*time.Millisecond)
		}
		again, err := e.Upload(context.Background(), bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		pad := e.writeCost.pad(again, e.opts.InlineMax)
		if want := time.Duration(float64(len(data))*current(&e.writeCost.perByte, 0) + current(&e.writeCost.sync, 0)); again.dedup != int64(len(data)) || again.written != 0 || pad != min(want, maxPad) {
			t.Fatalf("the same bytes again: %d found stored, %d written, pad %v (want %v)", again.dedup, again.written, pad, want)
		}
		again.Close()
		if pad < 200*time.Millisecond {
			t.Fatalf("pad %v for 2 MiB at 100 ns a byte", pad)
		}
		start := time.Now()
		third, err := e.Upload(context.Background(), bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		third.Close()
		took := time.Since(start)
		if !reveal && took < pad {
			t.Errorf("an upload of stored bytes returned after %v, sooner than the %v writing them would take", took, pad)
		}
		if reveal && took >= pad {
			t.Errorf("with RevealDedup, an upload of stored bytes took %v: it waited", took)
		}
	}
}
