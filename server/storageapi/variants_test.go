package storageapi_test

import (
	"bytes"
	"image"
	"testing"

	_ "github.com/gen2brain/webp" // registers WebP with image.Decode

	"github.com/cairnstore/cairn/internal/testtool"
	"github.com/cairnstore/cairn/server/storageapi"
)

// TestImageVariants: a file's download and its public URL serve image
// variants; refused options are the API's 400, and another user's file
// is the 404 of a missing one whatever the options.
func TestImageVariants(t *testing.T) {
	v := newEnv(t, storageapi.Config{})
	v.addUser("alice@example.com", nil)
	v.addUser("bob@example.com", nil)
	jpg := testtool.JPEG(t, testtool.Picture(640, 480))
	f := v.upload("user", "alice", "photo.jpg", jpg)
	base := "/storage/user/files/" + f.FileID
	size := func(b []byte, format string) (int, int) {
		t.Helper()
		img, got, err := image.Decode(bytes.NewReader(b))
		if err != nil || got != format {
			t.Fatalf("a %s variant: %s, %v", format, got, err)
		}
		return img.Bounds().Dx(), img.Bounds().Dy()
	}
	r := v.do(req{method: "GET", path: base + "?w=320&format=webp", token: "alice"})
	v.want(r, 200)
	if w, h := size(r.body, "webp"); w != 320 || h != 240 || r.h.Get("Content-Type") != "image/webp" {
		t.Errorf("variant %dx%d, %s", w, h, r.h.Get("Content-Type"))
	}
	v.want(v.do(req{method: "GET", path: base + "?w=333", token: "alice"}), 400, "bad_request")
	v.want(v.do(req{method: "GET", path: base + "?w=320&format=tiff", token: "alice"}), 400, "bad_request")
	v.want(v.do(req{method: "GET", path: base + "?w=320", token: "bob"}), 404, "not_found")
	v.want(v.do(req{method: "GET", path: base + "?w=333", token: "bob"}), 404, "not_found")

	p := v.upload("public", "", "pub.jpg", jpg)
	code, body := fetch(t, p.URL+"?w=320&format=png")
	if code != 200 {
		t.Fatalf("a public URL's variant: %d %s", code, body)
	}
	if w, h := size(body, "png"); w != 320 || h != 240 {
		t.Errorf("public variant %dx%d", w, h)
	}
	r = v.do(req{method: "GET", path: "/storage/public/files/" + p.FileID + "?preset=thumb", hdr: []string{"Accept", "image/webp"}})
	v.want(r, 200)
	if w, h := size(r.body, "webp"); w != 200 || h != 200 || r.h.Get("Vary") == "" {
		t.Errorf("thumb %dx%d, Vary %q", w, h, r.h.Values("Vary"))
	}
}
