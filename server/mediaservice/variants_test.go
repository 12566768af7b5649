package mediaservice_test

import (
	"bytes"
	"encoding/json"
	"image"
	_ "image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/testtool"
)

// TestImageVariants: an asset's download serves image variants, refused
// options answer the API's 400 shape, and a PUBLIC asset's redirect
// carries the variant options to its public URL.
func TestImageVariants(t *testing.T) {
	v := newEnv(t, 1<<20)
	jpg := testtool.JPEG(t, testtool.Picture(640, 480))
	body, ct := multipartBody(`{"type":"BLOB","access":"PRIVATE","details":{"filename":"photo.jpg"}}`, "photo.jpg", jpg)
	id := idOf(t, v.do("POST", "/media/acme/assets", "manager", body, ct))
	r := v.do("GET", "/media/acme/assets/"+id+"/download?w=320&format=png", "reader", nil, "")
	if r.code != 200 || r.h.Get("Content-Type") != "image/png" {
		t.Fatalf("variant: %s", r)
	}
	if img, _, err := image.Decode(bytes.NewReader(r.body)); err != nil || img.Bounds().Dx() != 320 || img.Bounds().Dy() != 240 {
		t.Fatalf("variant does not decode to 320x240: %v", err)
	}
	r = v.do("GET", "/media/acme/assets/"+id+"/download?w=321", "reader", nil, "")
	var e struct {
		Code            int
		Status, Message string
	}
	if r.code != 400 || json.Unmarshal(r.body, &e) != nil || e.Code != 400 || !strings.Contains(e.Message, "w=321") {
		t.Fatalf("a refused option: %s", r)
	}

	body, ct = multipartBody(`{"type":"BLOB","access":"PUBLIC"}`, "pub.jpg", jpg)
	pub := idOf(t, v.do("POST", "/media/acme/assets", "manager", body, ct))
	r = v.do("GET", "/media/acme/assets/"+pub+"/download?w=320&format=png&unrelated=1", "reader", nil, "")
	loc := r.h.Get("Location")
	if r.code != 301 || !strings.Contains(loc, "/f/") || !strings.HasSuffix(loc, "?format=png&w=320") {
		t.Fatalf("a PUBLIC asset's variant: %s, Location %q", r, loc)
	}
	res, err := http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if img, _, err := image.Decode(res.Body); err != nil || img.Bounds().Dx() != 320 {
		t.Fatalf("the public URL's variant: %d %v", res.StatusCode, err)
	}
}
