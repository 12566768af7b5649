package oceanmedia_test

import (
	"testing"
)

// TestPagingBounds: page is bounded (400), never multiplied by page_size
// into an overflow and a panic; past the last medium a page is empty,
// as the original's OFFSET was.
func TestPagingBounds(t *testing.T) {
	v := newEnv(t)
	v.want(v.do("POST", "/v1/media", "writer", newMedium("shop", "ui", "a", "sv-SE", "image/png", "a.png")), 201, "")
	for _, q := range []string{"page=9223372036854775807", "page=9223372036854775807&page_size=1000", "page=99999999999999999999", "page=1000001", "page=4611686018427387904&group=app"} {
		v.want(v.do("GET", "/v1/media?"+q, "reader", nil), 400, `{"_api_error":["page must be at most 1000000"]}`)
	}
	v.want(v.do("GET", "/v1/media?page=1000000&page_size=1000", "reader", nil), 200, "[]")
	v.want(v.do("GET", "/v1/media?page=-3", "reader", nil), 200, "[]")
}
