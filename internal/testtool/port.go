package testtool

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
)

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago,
// for a server another process (MinIO, PostgreSQL, cairn) will listen
// on. Between the check and that server's own bind the port is nobody's,
// so it is drawn at random from below the kernel's ephemeral range, the
// range bind to port 0 and every outgoing connection take theirs from:
// the listeners and clients of the tests running beside this one never
// take it in that moment; only another FreeAddr could, by a 1 in 20 000
// chance.
func FreeAddr(t testing.TB) string {
	t.Helper()
	lo := ephemeralLow()
	const from = 10000
	for range 100 {
		if lo <= from+1000 {
			break
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", from+rand.IntN(lo-from)))
		if err == nil {
			l.Close()
			return l.Addr().String()
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	return l.Addr().String()
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux;
// 32768, its default, where that cannot be read).
func ephemeralLow() int {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &lo)
	}
	return lo
}
