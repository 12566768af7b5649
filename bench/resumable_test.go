package bench

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkResumable is a Storage API upload through its tus endpoints
// (a POST that creates the upload, then the bytes in 8 MiB PATCHes, the
// last answered with the file) beside the plain multipart upload of the
// same bytes, in the same run, one client, at 1 MiB and 64 MiB. The
// public mode: no token to make. Read each row against mode=plain.
func BenchmarkResumable(b *testing.B) {
	for _, size := range []int{1 << 20, 64 << 20} {
		for _, mode := range []string{"plain", "tus"} {
			b.Run(fmt.Sprintf("size=%dMiB/mode=%s", size>>20, mode), func(b *testing.B) {
				h := newAPIEnv(b)
				r := rand.NewChaCha8([32]byte{3})
				buf := make([]byte, size)
				meta := "filename " + base64.StdEncoding.EncodeToString([]byte("f.bin"))
				b.SetBytes(int64(size))
				b.ResetTimer()
				for range b.N {
					content(r, "random", buf)
					if mode == "plain" {
						body, ctype := form("file", "f.bin", buf)
						h.post(b, "/storage/public/files", ctype, body, "", 201, nil)
						continue
					}
					req, _ := http.NewRequest("POST", h.url+"/storage/public/uploads", nil)
					req.Header.Set("Tus-Resumable", "1.0.0")
					req.Header.Set("Upload-Length", fmt.Sprint(size))
					req.Header.Set("Upload-Metadata", meta)
					loc := h.send(b, req, 201, nil).Get("Location")
					for off := 0; off < size; off += 8 << 20 {
						end := min(size, off+8<<20)
						req, _ := http.NewRequest("PATCH", loc, strings.NewReader(string(buf[off:end])))
						req.Header.Set("Tus-Resumable", "1.0.0")
						req.Header.Set("Upload-Offset", fmt.Sprint(off))
						req.Header.Set("Content-Type", "application/offset+octet-stream")
						want := 204
						if end == size {
							want = 200
						}
						h.send(b, req, want, nil)
					}
				}
			})
		}
	}
}
