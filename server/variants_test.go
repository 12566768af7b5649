package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/gen2brain/avif" // registers AVIF with image.Decode
	_ "github.com/gen2brain/webp" // registers WebP with image.Decode

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/internal/keyspace"
	"github.com/cairnstore/cairn/internal/testtool"
	"github.com/cairnstore/cairn/internal/variant"
	"github.com/cairnstore/cairn/server"
	"github.com/cairnstore/cairn/server/internal/publink"
)

// upload stores body at the cloud storage path p of bucket 1.
func upload(t *testing.T, base, tok, p, ctype string, body []byte) {
	t.Helper()
	res, b, err := request(t, "POST", base+"/"+p, tok, bytes.NewReader(body), "Content-Type", ctype)
	if err != nil || res.StatusCode/100 != 2 {
		t.Fatalf("upload %s: %v %v %s", p, res, err, b)
	}
}

// decoded decodes a variant's body and checks its format and size.
func decoded(t *testing.T, body []byte, format string, w, h int) image.Image {
	t.Helper()
	img, f, err := image.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the variant does not decode: %v (%d bytes)", err, len(body))
	}
	if b := img.Bounds(); f != format || b.Dx() != w || b.Dy() != h {
		t.Fatalf("variant %s %dx%d, want %s %dx%d", f, b.Dx(), b.Dy(), format, w, h)
	}
	return img
}

// TestVariants: image variants through the cloud storage API, served by
// the one download path: made from the upright image, of the size and
// format asked for, with their own ETag, ranges and 304s, and Vary:
// Accept for format=auto; refused with the API's 400 for options off the
// lists, non-images and decompression bombs, with nothing stored lost.
func TestVariants(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	base, tok := start(t, server.Config{Engine: e})
	// 800×400 stored, EXIF orientation 6: upright it is 400×800, red on top.
	photo := testtool.WithOrientation(testtool.JPEG(t, testtool.Picture(800, 400)), 6)
	upload(t, base, tok, "public/1/photo.jpg", "image/jpeg", photo)
	upload(t, base, tok, "public/1/notes.txt", "text/plain", []byte("not an image"))
	upload(t, base, tok, "public/1/bomb.png", "image/png", testtool.PNGBomb(60_000, 60_000))
	url := base + "/public/1/photo.jpg"

	res, body, err := request(t, "GET", url+"?w=200&format=webp", "", nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET ?w=200&format=webp: %v %v %s", res, err, body)
	}
	img := decoded(t, body, "webp", 200, 400)
	if r, _, b, _ := img.At(100, 50).RGBA(); r < b {
		t.Error("the variant is not upright: red is not on top")
	}
	if bytes.Contains(body, []byte("Exif")) || bytes.Contains(body, []byte("ACM")) {
		t.Error("the variant carries the original's EXIF")
	}
	if ct, cd := res.Header.Get("Content-Type"), res.Header.Get("Content-Disposition"); ct != "image/webp" || !strings.Contains(cd, "photo.webp") {
		t.Errorf("Content-Type %q, Content-Disposition %q", ct, cd)
	}
	etag := res.Header.Get("ETag")
	if etag == "" || etag == `"`+blob.Sum(photo).String()+`"` || etag != `"`+blob.Sum(body).String()+`"` {
		t.Errorf("ETag %s is not the variant's BLAKE3", etag)
	}
	if strings.Contains(res.Header.Get("Vary"), "Accept") {
		t.Error("Vary: Accept without format=auto")
	}
	// The same variant, asked for in another order and with defaults
	// spelt out, is the same one; a conditional GET is 304, a range 206.
	res, _, _ = request(t, "GET", url+"?format=webp&fit=inside&q=75&w=200", "", nil, "If-None-Match", etag)
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", res.StatusCode)
	}
	res, part, _ := request(t, "GET", url+"?w=200&format=webp", "", nil, "Range", "bytes=4-11")
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(part, body[4:12]) {
		t.Errorf("Range: %d %q, want 206 %q", res.StatusCode, part, body[4:12])
	}
	res, head, _ := request(t, "HEAD", url+"?w=200&format=webp", "", nil)
	if res.StatusCode != 200 || len(head) != 0 || res.ContentLength != int64(len(body)) {
		t.Errorf("HEAD: %d, length %d", res.StatusCode, res.ContentLength)
	}

	// format=auto: AVIF for a browser that takes it, else WebP, else the
	// original's format; each with Vary: Accept.
	for _, c := range []struct{ accept, format string }{
		{"image/avif,image/webp,image/apng,*/*;q=0.8", "avif"},
		{"image/webp,*/*", "webp"},
		{"*/*", "jpeg"},
	} {
		res, body, _ := request(t, "GET", url+"?h=400&format=auto", "", nil, "Accept", c.accept)
		if res.StatusCode != 200 || !strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Accept") {
			t.Fatalf("format=auto, Accept %s: %d, Vary %q", c.accept, res.StatusCode, res.Header.Values("Vary"))
		}
		decoded(t, body, c.format, 200, 400)
	}
	res, body, _ = request(t, "GET", url+"?preset=thumb", "", nil, "Accept", "image/webp")
	if res.StatusCode != 200 {
		t.Fatalf("preset=thumb: %d %s", res.StatusCode, body)
	}
	decoded(t, body, "webp", 200, 200)

	// Refused, in the API's error shape, with a message saying why.
	for _, c := range []struct{ path, query, want string }{
		{"photo.jpg", "w=401", "sizes are"},
		{"photo.jpg", "w=200&w=400", "more than once"},
		{"photo.jpg", "w=200&fit=stretch", "fit=stretch"},
		{"photo.jpg", "w=200&format=bmp", "format=bmp"},
		{"photo.jpg", "w=200&q=33", "qualities are"},
		{"photo.jpg", "preset=huge", "no preset"},
		{"photo.jpg", "fit=cover&w=200", "needs both"},
		{"notes.txt", "w=200", "variants are made of"},
		{"bomb.png", "w=200", "over this server's limit"},
	} {
		res, body, _ := request(t, "GET", base+"/public/1/"+c.path+"?"+c.query, "", nil)
		var ae struct{ Error, Message string }
		if res.StatusCode != 400 || json.Unmarshal(body, &ae) != nil || ae.Error != "bad_request" || !strings.Contains(ae.Message, c.want) {
			t.Errorf("%s?%s: %d %s; want 400 bad_request saying %q", c.path, c.query, res.StatusCode, body, c.want)
		}
	}
	// Other query parameters are not variant options.
	res, body, _ = request(t, "GET", url+"?download=1", "", nil)
	if res.StatusCode != 200 || !bytes.Equal(body, photo) {
		t.Errorf("?download=1: %d, %d bytes", res.StatusCode, len(body))
	}
	// Nothing stored was lost, and the refusals stored nothing.
	rec, err := e.GetRecord(engine.Key{Namespace: keyspace.CloudStorage, Tenant: "public/1", Name: "photo.jpg"})
	if err != nil {
		t.Fatal(err)
	}
	names, err := e.Variants(rec)
	if err != nil || len(names) != 5 {
		t.Errorf("variants stored: %q, %v; want 5 (webp 200, avif, webp and jpeg at h=400, thumb)", names, err)
	}
	for _, p := range []string{"notes.txt", "bomb.png"} {
		r, err := e.GetRecord(engine.Key{Namespace: keyspace.CloudStorage, Tenant: "public/1", Name: p})
		if err != nil {
			t.Fatal(err)
		}
		if names, _ := e.Variants(r); len(names) != 0 {
			t.Errorf("%s has variants %q", p, names)
		}
	}
}

// TestVariantMadeOnce: many clients asking at once for a variant not yet
// made get the same bytes, and it is made once.
func TestVariantMadeOnce(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	srv, base, tok := startServer(t, server.Config{Engine: e, Logger: enginetest.Logger(t)})
	upload(t, base, tok, "protected/1/big.jpg", "image/jpeg", testtool.JPEG(t, testtool.Picture(1600, 1200)))
	var wg sync.WaitGroup
	bodies := make([][]byte, 12)
	for i := range bodies {
		wg.Go(func() {
			res, body, err := request(t, "GET", base+"/protected/1/big.jpg?w=400&format=avif", tok, nil)
			if err != nil || res.StatusCode != 200 {
				t.Errorf("GET: %v %v %s", res, err, body)
				return
			}
			bodies[i] = body
		})
	}
	wg.Wait()
	for _, b := range bodies[1:] {
		if !bytes.Equal(b, bodies[0]) {
			t.Fatal("clients got different bytes for one variant")
		}
	}
	if made := metric(t, srv, "cairn_image_variants_made_total"); made != "1" {
		t.Errorf("the variant was made %s times, want 1", made)
	}
	// Protected media's variants need the token too.
	if res, _, _ := request(t, "GET", base+"/protected/1/big.jpg?w=400&format=avif", "", nil); res.StatusCode != 401 {
		t.Errorf("a protected variant without a token: %d", res.StatusCode)
	}
}

// metric reads one unlabelled sample of the server's /metrics.
func metric(t *testing.T, srv *server.Server, name string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return ""
}

// TestVariantsFollowTheirOriginal: a variant is of the content it was
// made of: content written over the original gets variants of its own,
// and deleting the original gives its variants' space back at the next
// GC.
func TestVariantsFollowTheirOriginal(t *testing.T) {
	var skew atomic.Int64 // the store's clock, moved on for GC on a shared store
	e := enginetest.Open(t, engine.Options{Now: func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }})
	base, tok := start(t, server.Config{Engine: e})
	key := engine.Key{Namespace: keyspace.CloudStorage, Tenant: "public/1", Name: "a.png"}
	before, err := e.Stats()
	if err != nil {
		t.Fatal(err)
	}
	get := func(q string) []byte {
		res, body, err := request(t, "GET", base+"/public/1/a.png?"+q, "", nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("GET ?%s: %v %v %s", q, res, err, body)
		}
		return body
	}
	var png1 bytes.Buffer
	if err := png.Encode(&png1, testtool.Picture(640, 480)); err != nil {
		t.Fatal(err)
	}
	upload(t, base, tok, "public/1/a.png", "image/png", png1.Bytes())
	first := get("w=320&format=jpeg")
	get("w=160&format=webp")
	decoded(t, first, "jpeg", 320, 240)

	// Other content at the same path: another picture, other variants.
	upload(t, base, tok, "public/1/a.png", "image/png", testtool.JPEG(t, testtool.Picture(480, 640)))
	second := get("w=320&format=jpeg")
	decoded(t, second, "jpeg", 320, 427)
	rec, err := e.GetRecord(key)
	if err != nil {
		t.Fatal(err)
	}
	if names, _ := e.Variants(rec); len(names) != 1 {
		t.Errorf("the new content has variants %q, want its one", names)
	}
	rep, err := e.GC(context.Background(), false)
	if err != nil || rep.Variants != 2 {
		t.Errorf("GC deleted %d variants (%v), want the first content's 2", rep.Variants, err)
	}

	// Deleted: its variants go at the next GC, and the store is back to
	// where it was before any of this.
	if res, _, _ := request(t, "DELETE", base+"/public/1/a.png", tok, nil); res.StatusCode/100 != 2 {
		t.Fatalf("DELETE: %d", res.StatusCode)
	}
	if res, _, _ := request(t, "GET", base+"/public/1/a.png?w=320&format=jpeg", "", nil); res.StatusCode != 404 {
		t.Errorf("a variant of a deleted original: %d, want 404", res.StatusCode)
	}
	rep, err = e.GC(context.Background(), false)
	if err != nil || rep.Variants != 1 {
		t.Errorf("GC after the delete deleted %d variants (%v), want 1", rep.Variants, err)
	}
	enginetest.Collect(t, e, func(d time.Duration) { skew.Add(int64(d)) })
	after, err := e.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if after.Records != before.Records || after.Blobs != before.Blobs || after.ChunkBytes != before.ChunkBytes {
		t.Errorf("after GC: %d records, %d blobs, %d chunk bytes; before the uploads %d, %d, %d",
			after.Records, after.Blobs, after.ChunkBytes, before.Records, before.Blobs, before.ChunkBytes)
	}
}

// TestVariantsEagerAndOff: eager presets are made when an image is
// stored; with variants off every request for one is refused.
func TestVariantsEagerAndOff(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	cfg := variant.DefaultConfig()
	cfg.Eager = []string{"thumb"}
	base, tok := start(t, server.Config{Engine: e, Variants: &cfg})
	upload(t, base, tok, "public/1/eager.jpg", "image/jpeg", testtool.JPEG(t, testtool.Picture(600, 300)))
	rec, err := e.GetRecord(engine.Key{Namespace: keyspace.CloudStorage, Tenant: "public/1", Name: "eager.jpg"})
	if err != nil {
		t.Fatal(err)
	}
	// thumb is format=auto: its AVIF, WebP and JPEG.
	deadline := time.Now().Add(30 * time.Second)
	for {
		names, err := e.Variants(rec)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("eager variants after 30 s: %q, want 3", names)
		}
		time.Sleep(20 * time.Millisecond)
	}

	off, tok2 := start(t, server.Config{Engine: enginetest.Open(t, engine.Options{}), NoVariants: true})
	upload(t, off, tok2, "public/1/x.jpg", "image/jpeg", testtool.JPEG(t, testtool.Picture(64, 64)))
	res, body, _ := request(t, "GET", off+"/public/1/x.jpg?w=64", "", nil)
	if res.StatusCode != 400 || !strings.Contains(string(body), "not enabled") {
		t.Errorf("variants off: %d %s", res.StatusCode, body)
	}
	if res, body, _ := request(t, "GET", off+"/public/1/x.jpg", "", nil); res.StatusCode != 200 {
		t.Errorf("the original with variants off: %d %s", res.StatusCode, body)
	}
}

// TestVariantPublicLink: public links (/f/…) serve variants too, and
// refuse bad options with a plain-text 400 like their other errors.
func TestVariantPublicLink(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	base, tok := start(t, server.Config{Engine: e})
	upload(t, base, tok, "protected/1/p.jpg", "image/jpeg", testtool.JPEG(t, testtool.Picture(640, 480)))
	link := publink.NewID()
	err := e.Update(context.Background(), func(tx *engine.Tx) error {
		return publink.Put(tx, link, engine.Key{Namespace: keyspace.CloudStorage, Tenant: "protected/1", Name: "p.jpg"}, time.Time{})
	})
	if err != nil {
		t.Fatal(err)
	}
	res, body, _ := request(t, "GET", base+"/f/"+link+"/p.jpg?w=320&format=png", "", nil)
	if res.StatusCode != 200 {
		t.Fatalf("a public link's variant: %d %s", res.StatusCode, body)
	}
	decoded(t, body, "png", 320, 240)
	if cc := res.Header.Get("Cache-Control"); !strings.HasPrefix(cc, "public") {
		t.Errorf("Cache-Control %q", cc)
	}
	res, body, _ = request(t, "GET", base+"/f/"+link+"/p.jpg?w=321", "", nil)
	if res.StatusCode != 400 || !strings.Contains(string(body), "w=321 is not allowed") {
		t.Errorf("a refused option on a public link: %d %s", res.StatusCode, body)
	}
	if res, _, _ := request(t, "GET", base+"/f/"+publink.NewID()+"/p.jpg?w=320", "", nil); res.StatusCode != 404 {
		t.Errorf("a variant of no link: %d, want 404", res.StatusCode)
	}
}

// TestVariantLimits: the variants kept of one image are bounded (presets
// aside), and so are the new variants one client may have made a minute
// (429 with Retry-After); stored variants are served whatever the limits.
func TestVariantLimits(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	cfg := variant.DefaultConfig()
	cfg.MaxPerImage = 2
	base, tok := start(t, server.Config{Engine: e, Variants: &cfg, VariantsPerMinute: 4})
	jpg := testtool.JPEG(t, testtool.Picture(320, 240))
	upload(t, base, tok, "public/1/a.jpg", "image/jpeg", jpg)
	upload(t, base, tok, "public/1/b.jpg", "image/jpeg", jpg)
	get := func(q string, want int, says string) *http.Response {
		t.Helper()
		res, body, err := request(t, "GET", base+"/public/1/"+q, "", nil, "Accept", "image/webp")
		if err != nil || res.StatusCode != want || !strings.Contains(string(body), says) {
			t.Fatalf("GET %s: %v %v %.200s; want %d saying %q", q, res, err, body, want, says)
		}
		return res
	}
	get("a.jpg?w=64", 200, "")
	get("a.jpg?w=128", 200, "")
	get("a.jpg?w=160", 400, "this image has 2 variants")
	get("a.jpg?preset=thumb", 200, "") // presets are not counted
	get("a.jpg?w=64", 200, "")         // stored: not made again, not counted
	get("b.jpg?w=64", 200, "")         // the fourth made this minute
	res := get("b.jpg?w=128", 429, "")
	if ra := res.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	get("a.jpg?w=128", 200, "") // stored variants are still served
	get("b.jpg", 200, "")       // and so are originals
}
