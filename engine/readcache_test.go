package engine

import "testing"

// TestBufferClass: a class's buffer holds what it is for, at most a
// quarter more (past 4 KiB), and a buffer of a class's size is of that
// class.
func TestBufferClass(t *testing.T) {
	last := 0
	for n := 1; n <= 5<<20; n += 1 + n/97 {
		class, size := bufferClass(n)
		if size < n || n > 4<<10 && size > n+n/4+1 {
			t.Fatalf("n=%d: class %d of %d bytes", n, class, size)
		}
		if class < last || class >= len(buffers) {
			t.Fatalf("n=%d: class %d after %d (of %d)", n, class, last, len(buffers))
		}
		last = class
		if c, s := bufferClass(size); c != class || s != size {
			t.Fatalf("a buffer of %d bytes is of class %d (%d bytes), not %d", size, c, s, class)
		}
	}
}
