package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/blob"
)

// cutAfter gives n bytes of b, then fails: the client's connection
// drops midway through a PATCH.
type cutAfter struct {
	b []byte
	n int
}

func (c *cutAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errors.New("connection dropped")
	}
	k := copy(p, c.b[:min(len(c.b), c.n, len(p))])
	c.b, c.n = c.b[k:], c.n-k
	if len(c.b) == 0 {
		return k, io.EOF
	}
	return k, nil
}

// TestResumableRestart: a 200 MiB upload through the Storage API's tus
// endpoints from a Go client whose connection is cut at random points
// four times, and whose server is restarted once midway, resumes each
// time from the offset the server reports and finishes with the file: its
// BLAKE3 (the ETag) is the source's, and its bytes download whole.
func TestResumableRestart(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	args := []string{"--data", data, "--min-free-bytes", "-1"}
	base, stop := startServe(t, args, noEnv)
	defer func() { stop() }()
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("ann-long-password\n"), 0o600)
	var out strings.Builder
	if err := run(context.Background(), []string{"iam", "user", "add", "ann@example.com", "--password-file", pw, "--data", data}, noEnv, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	res, err := http.Post(base+"/storage/auth/login", "application/json", strings.NewReader(`{"email":"ann@example.com","password":"ann-long-password"}`))
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Token string }
	json.NewDecoder(res.Body).Decode(&login)
	res.Body.Close()
	auth := "Bearer " + login.Token

	content := make([]byte, 200<<20)
	rng := rand.NewChaCha8([32]byte{9})
	rng.Read(content)
	do := func(method, path string, body io.Reader, hdr ...string) (*http.Response, []byte, error) {
		req, _ := http.NewRequest(method, base+path, body)
		req.Header.Set("Authorization", auth)
		req.Header.Set("Tus-Resumable", "1.0.0")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res, b, err
	}
	meta := "filename " + base64.StdEncoding.EncodeToString([]byte("film.mkv"))
	res, _, err = do("POST", "/storage/user/uploads", nil, "Upload-Length", fmt.Sprint(len(content)), "Upload-Metadata", meta)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("create: %v %v", res, err)
	}
	loc, _ := strings.CutPrefix(res.Header.Get("Location"), base)
	r := rand.New(rand.NewPCG(3, 4))
	var final []byte
	cuts, restarted := 0, false
	for attempt := 0; final == nil; attempt++ {
		if attempt > 40 {
			t.Fatal("no end in sight")
		}
		res, _, err := do("HEAD", loc, nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("HEAD: %v %v", res, err)
		}
		off, _ := strconv.Atoi(res.Header.Get("Upload-Offset"))
		if cuts == 2 && !restarted {
			// The server restarts: what it had synced is the offset.
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			base, stop = startServe(t, args, noEnv)
			restarted = true
			if res, _, err := do("HEAD", loc, nil); err != nil || res.Header.Get("Upload-Offset") != strconv.Itoa(off) {
				t.Fatalf("after the restart: %v, offset %q, want %d", err, res.Header.Get("Upload-Offset"), off)
			}
		}
		rest := content[off:]
		var body io.Reader = bytes.NewReader(rest)
		if cuts < 4 && len(rest) > 8<<20 {
			body = &cutAfter{b: rest, n: 4<<20 + r.IntN(len(rest)/2)}
			cuts++
		}
		res, b, err := do("PATCH", loc, body, "Upload-Offset", strconv.Itoa(off), "Content-Type", "application/offset+octet-stream")
		switch {
		case err != nil: // cut: resume
		case res.StatusCode == 200:
			final = b
		case res.StatusCode == 204, res.StatusCode == 409: // 409: a cut PATCH was still storing
		default:
			t.Fatalf("PATCH at %d: %d %s", off, res.StatusCode, b)
		}
	}
	var f struct{ FileID, ETag string }
	if err := json.Unmarshal(final, &f); err != nil {
		t.Fatal(err)
	}
	if want := `"` + blob.Sum(content).String() + `"`; f.ETag != want {
		t.Fatalf("the file's BLAKE3 %s, the source's %s", f.ETag, want)
	}
	res, got, err := do("GET", "/storage/user/files/"+f.FileID, nil)
	if err != nil || res.StatusCode != 200 || !bytes.Equal(got, content) {
		t.Fatalf("download: %v, %d bytes", err, len(got))
	}
	t.Logf("200 MiB through %d cut connections and a restart", cuts)
}
