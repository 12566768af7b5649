package mediaservice

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/server/internal/web"
	"github.com/cairnstore/cairn/server/mediaservice/query"
)

// BenchmarkList lists a tenant of 10^5 assets with the common filters:
// each looks up candidates in index records, so its cost follows the
// matches, not the tenant. filter=none (a full scan with a q on an
// unindexed field) is there for contrast.
func BenchmarkList(b *testing.B) {
	const n = 100_000
	e := enginetest.Open(b, engine.Options{MinFreeBytes: -1})
	a := New(Config{Deps: web.Deps{Engine: e}})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	for start := 0; start < n; start += 2000 {
		err := e.Update(ctx, func(tx *engine.Tx) error {
			for i := start; i < start+2000; i++ {
				at := t0.Add(time.Duration(i) * time.Second).Format(timeLayout)
				access := "PUBLIC"
				if i%2 == 1 {
					access = "PRIVATE"
				}
				st := &stored{Asset: Asset{
					ID: fmt.Sprintf("%024x", i), Type: "LINK", Access: access, URL: fmt.Sprintf("https://x.example/%d", i),
					RefIDs:   []RefID{{ID: fmt.Sprint("cat-", i%5000), Type: "CATEGORY"}},
					Details:  &Details{MimeType: fmt.Sprint("image/t", i%50)},
					Metadata: Metadata{Version: 1, CreatedAt: at, ModifiedAt: at},
				}}
				if err := putAsset(tx, "acme", st, nil, nil, engine.Record{}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	req := httptest.NewRequest("GET", "/", nil)
	for _, tc := range []struct{ name, q string }{
		{"refIds.id", "refIds.id:cat-42"},                                                          // 20 matches
		{"mimeType", "details.mimeType:image/t7"},                                                  // 2,000 matches
		{"createdAt", `metadata.createdAt:(>="2026-01-01T10:00:00Z" AND <"2026-01-01T10:01:00Z")`}, // 60
		{"access+refIds", "access:PUBLIC refIds.id:cat-42"},                                        // 10
		{"none", "url:https://x.example/777"},                                                      // full scan
	} {
		b.Run("assets=1e5/filter="+tc.name, func(b *testing.B) {
			q, err := query.Parse(tc.q)
			if err != nil {
				b.Fatal(err)
			}
			var found int
			b.ReportAllocs()
			for b.Loop() {
				docs, total, err := a.matching(ctx, "acme", q, false, true, 60)
				if err != nil {
					b.Fatal(err)
				}
				sortDocs(docs, nil)
				for i := range min(60, len(docs)) {
					a.render(req, "acme", docs[i].st)
				}
				found = total
			}
			b.ReportMetric(float64(found), "matches")
		})
	}
}
