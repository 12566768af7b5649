package resumable

import (
	"net/http"
	"testing"
)

// FuzzChecksum: any Upload-Checksum header is refused or taken whole: a
// known algorithm and a digest of its size.
func FuzzChecksum(f *testing.F) {
	for _, s := range []string{"", "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=", "blake3 AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "md5 1B2M2Y8AsgTpgAmY7PhCfg==", "sha1", " sha1  x", "sha1 !!!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r, _ := http.NewRequest("PATCH", "/", nil)
		r.Header.Set("Upload-Checksum", h)
		r2, ok := withChecksum(r)
		sum, has := r2.Context().Value(checksumKey{}).(checksum)
		switch {
		case !ok && has:
			t.Fatalf("%q refused but kept", h)
		case has && len(sum.digest) != checksumAlgorithms[sum.algo]:
			t.Fatalf("%q: %s digest of %d bytes", h, sum.algo, len(sum.digest))
		}
	})
}
