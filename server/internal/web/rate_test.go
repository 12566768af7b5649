package web

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestRate(t *testing.T) {
	l := NewRate(6, 2) // one per 10 s, bursts of 2
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, want := range []bool{true, true, false} {
		if ok, _ := l.Allow("a", now); ok != want {
			t.Fatalf("event %d: %v", i, ok)
		}
	}
	if ok, wait := l.Allow("a", now); ok || wait != 10*time.Second {
		t.Fatalf("a third event: %v, wait %v", ok, wait)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Fatal("another address shares a's bucket")
	}
	if ok, _ := l.Allow("a", now.Add(10*time.Second)); !ok {
		t.Fatal("no event after the wait")
	}

	// Many addresses, concurrently; idle buckets are dropped later.
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				l.Allow(fmt.Sprint(g, ".", i), now)
			}
		})
	}
	wg.Wait()
	if n := len(l.buckets); n != 4002 {
		t.Fatalf("%d buckets", n)
	}
	l.Allow("c", now.Add(time.Hour))
	if n := len(l.buckets); n != 1 {
		t.Fatalf("%d buckets after an hour idle, want 1", n)
	}
}
