package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/server"
	"github.com/cairnstore/cairn/server/cloudstorage"
)

// BenchmarkDedupOracle measures the timing oracle deduplication leaves
// (README, Security): one tenant's upload, over loopback, of 4 MiB that
// another tenant stored before (content=stored: no chunk is written or
// synced) beside one of 4 MiB no one has (new), alternating, each timed
// (medians); with the engine hiding deduplication (its default) and not.
// The ratio of stored to new is what a client timing its uploads can
// tell.
func BenchmarkDedupOracle(b *testing.B) {
	for _, hide := range []bool{true, false} {
		for _, s := range []struct {
			name string
			n    int
		}{{"4KiB", 4 << 10}, {"4MiB", 4 << 20}} {
			b.Run(fmt.Sprintf("hide=%v/size=%s", hide, s.name), func(b *testing.B) { dedupOracle(b, hide, s.n) })
		}
	}
}

func dedupOracle(b *testing.B, hide bool, size int) {
	e := enginetest.Open(b, engine.Options{MinFreeBytes: -1, RevealDedup: !hide})
	ts := httptest.NewServer(server.New(server.Config{Engine: e, Logger: enginetest.Logger(b)}))
	b.Cleanup(ts.Close)
	ctx := context.Background()
	users := cloudstorage.NewUsers(e)
	token := func(user, bucket string) string {
		users.Add(ctx, user, "")
		users.Grant(ctx, user, bucket, cloudstorage.Write)
		tok, err := users.Token(user, time.Now(), time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		return tok
	}
	owner, prober := token("owner", "a"), token("prober", "b")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	put := func(tok, path string, body []byte) {
		req, _ := http.NewRequest("POST", ts.URL+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 201 && res.StatusCode != 200 {
			b.Fatalf("POST %s: %d", path, res.StatusCode)
		}
	}
	r := rand.NewChaCha8([32]byte{9})
	stored := make([][]byte, 16)
	for i := range stored {
		stored[i] = make([]byte, size)
		r.Read(stored[i])
		put(owner, fmt.Sprintf("/protected/a/%d", i), stored[i])
	}
	fresh := make([]byte, size)
	// New and stored uploads alternate, each timed on its own, so that
	// both meet the same background (the disk writing back what earlier
	// ones wrote) and the client does the same work for both.
	var tNew, tStored []time.Duration
	i := 0
	b.SetBytes(int64(2 * size))
	for b.Loop() {
		r.Read(fresh)
		start := time.Now()
		put(prober, fmt.Sprintf("/protected/b/new-%d", i), fresh)
		tNew = append(tNew, time.Since(start))
		start = time.Now()
		put(prober, fmt.Sprintf("/protected/b/stored-%d", i), stored[i%len(stored)])
		tStored = append(tStored, time.Since(start))
		i++
	}
	mNew, mStored := median(tNew), median(tStored)
	b.ReportMetric(float64(mNew.Microseconds()), "new-µs")
	b.ReportMetric(float64(mStored.Microseconds()), "stored-µs")
	b.ReportMetric(float64(mStored)/float64(mNew), "stored/new")
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
