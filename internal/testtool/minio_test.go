package testtool

import (
	"net"
	"strconv"
	"testing"
)

// TestFreeAddr: the port is below the ephemeral range (where nothing else
// running takes one unasked) and can be listened on.
func TestFreeAddr(t *testing.T) {
	for range 20 {
		addr := FreeAddr(t)
		_, port, _ := net.SplitHostPort(addr)
		if p, _ := strconv.Atoi(port); p >= ephemeralLow() || p < 10000 {
			t.Errorf("port %d: not below the ephemeral range %d", p, ephemeralLow())
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
	}
}

// TestMinIOAddressTaken: a MinIO whose address another one holds does not
// pass as started, whether it exits first or the other answers first
// (refusing its credentials).
func TestMinIOAddressTaken(t *testing.T) {
	m := StartMinIO(t)
	other := &MinIO{t: t, bin: m.bin, dir: t.TempDir(), Addr: m.Addr,
		AccessKey: "cairn-other", SecretKey: "cairn-other-secret", Bucket: "cairn"}
	t.Cleanup(other.Stop)
	if err := other.start(); err == nil {
		t.Fatal("a second MinIO on a taken address started")
	} else {
		t.Log(err)
	}
	if other.cmd != nil {
		t.Error("the second MinIO still runs")
	}
}
