package testtool

import (
	"runtime"
	"sync/atomic"
	"time"
)

// HeapGrowth runs f and returns how far the heap in use rose above where
// it was before f (after a collection), sampled every millisecond while f
// runs: what f held at its peak, plus garbage not yet collected (a test
// that wants the first alone lowers the GC percent around it).
func HeapGrowth(f func()) int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	peak.Store(base)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	f()
	close(stop)
	<-done
	return int64(peak.Load()) - int64(base)
}
