package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
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
// synced) beside one of 4 MiB no one has (content=new), in the same run;
// with the engine hiding deduplication (its default) and not. The ratio
// of stored to new is what a client timing its uploads can tell.
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
	for _, c := range []string{"new", "stored"} {
		b.Run("content="+c, func(b *testing.B) {
			b.SetBytes(int64(size))
			i := 0
			for b.Loop() {
				body := stored[i%len(stored)]
				if c == "new" {
					b.StopTimer()
					r.Read(fresh)
					body = fresh
					b.StartTimer()
				}
				put(prober, fmt.Sprintf("/protected/b/%s-%d", c, i), body)
				i++
			}
		})
	}
}
