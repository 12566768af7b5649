package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/testtool"
	"github.com/cairnstore/cairn/objstore"
)

// TestServeObjects: cairn serve --store s3://… on a real MinIO. Uploads
// through the cloud storage API land in the bucket; the store serves
// them, also with its folder's segment copies gone; the admin commands
// find the bucket from the folder; /readyz follows the object store; and
// an upload during an outage is a 503 that leaves nothing behind.
func TestServeObjects(t *testing.T) {
	m := testtool.StartMinIO(t)
	getenv := m.Getenv
	data := filepath.Join(t.TempDir(), "data")
	store := "s3://" + m.Bucket + "/cairn"
	cairn := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append(args, "--data", data), getenv, &out, &out)
		return out.String(), err
	}
	if out, err := cairn("init", "--store", store); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	if _, err := cairn("user", "add", "alice", "--secret", "alice-secret-alice-secret-alice-secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := cairn("user", "grant", "alice", "b", "WRITE"); err != nil {
		t.Fatal(err)
	}
	tok, err := cairn("user", "token", "alice", "--ttl", "1h")
	if err != nil {
		t.Fatal(err)
	}
	tok = strings.TrimSpace(tok)
	put := func(base, name string, body []byte) int {
		req, _ := http.NewRequest("POST", base+"/protected/b/"+name, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	getBody := func(base, name string) (int, []byte) {
		req, _ := http.NewRequest("GET", base+"/protected/b/"+name, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	big := make([]byte, 5<<20)
	rand.Read(big)
	small := []byte("hello from the bucket")

	base, stop := startServe(t, []string{"--data", data, "--store", store, "--cache-size", "1"}, getenv)
	if code := put(base, "big.bin", big); code != 201 {
		t.Fatalf("upload: %d", code)
	}
	if code := put(base, "small.txt", small); code != 201 {
		t.Fatalf("upload: %d", code)
	}
	if code, b := getBody(base, "big.bin"); code != 200 || !bytes.Equal(b, big) {
		t.Fatalf("download: %d, %d bytes", code, len(b))
	}
	if code, body := get(t, metricsURL(base)); code != 200 || !strings.Contains(body, "cairn_store_object_puts_total") {
		t.Fatalf("metrics: %d", code)
	}
	// An outage: not ready, uploads 503 and invisible; back: all works.
	m.Stop()
	if code := put(base, "lost.bin", big[:1<<20]); code != 503 {
		t.Errorf("upload during an outage: %d, want 503", code)
	}
	if code, _ := get(t, base+"/readyz"); code != 503 {
		t.Errorf("/readyz during an outage: %d, want 503", code)
	}
	m.Start()
	if code, _ := getBody(base, "lost.bin"); code != 404 {
		t.Errorf("an upload refused during the outage is visible: %d", code)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	b, err := objstore.Open(context.Background(), mustConfig(t, store, getenv))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := b.List(context.Background(), "segments/")
	if err != nil || len(objs) == 0 {
		t.Fatalf("no segment objects in the bucket: %v", err)
	}
	// The folder's copies of the segments lost: the bytes come from the
	// bucket. The admin commands find it from the folder.
	if err := os.RemoveAll(filepath.Join(data, "segments")); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check"}, {"scrub"}, {"gc"}} {
		if out, err := cairn(args...); err != nil {
			t.Fatalf("cairn %v: %v\n%s", args, err, out)
		}
	}
	if err := run(context.Background(), []string{"check", "--data", data}, noEnv, io.Discard, io.Discard); err == nil {
		t.Fatal("check without the bucket's credentials succeeded")
	}
	base, _ = startServe(t, []string{"--data", data, "--store", store}, getenv)
	if code, b := getBody(base, "big.bin"); code != 200 || !bytes.Equal(b, big) {
		t.Fatalf("download from the bucket alone: %d, %d bytes", code, len(b))
	}
	if code, b := getBody(base, "small.txt"); code != 200 || !bytes.Equal(b, small) {
		t.Fatalf("download from the bucket alone: %d, %q", code, b)
	}
}

func mustConfig(t *testing.T, store string, getenv func(string) string) objstore.Config {
	t.Helper()
	cfg, err := objstore.FromEnv(store, "", getenv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
