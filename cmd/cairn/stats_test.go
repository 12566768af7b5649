package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/engine"
)

// TestStats: cairn stats says what clients stored, what is distinct, and
// what the folder takes on disk and why, on a stopped store and through a
// running server.
func TestStats(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	e, err := engine.Open(data, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	content := make([]byte, 300<<10)
	rand.NewChaCha8([32]byte{1}).Read(content)
	for _, name := range []string{"a", "b"} { // the same bytes twice
		if _, err := e.PutRecord(context.Background(), engine.Key{Namespace: "ns", Tenant: "t", Name: name}, bytes.NewReader(content), engine.Write{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	check := func(how string) {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), []string{"stats", "--data", data}, noEnv, &out, &out); err != nil {
			t.Fatalf("stats %s: %v\n%s", how, err, out.String())
		}
		text := out.String()
		for _, want := range []string{
			"records:             ", // and the server's own: its signing keys
			fmt.Sprintf("logical bytes:       614.4 kB (%d bytes)", 2*len(content)),
			fmt.Sprintf("unique bytes:        307.2 kB (%d bytes) (1 distinct contents)", len(content)),
			"allocated on disk:   ",
			"next GC reclaims:    ",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("stats %s lacks %q:\n%s", how, want, text)
			}
		}
	}
	check("on a stopped store")
	_, stop := startServe(t, []string{"--data", data}, noEnv)
	defer stop()
	check("through the running server")
}

// TestAPIsFlag: --apis mounts only the APIs named; the others answer 404
// as any unknown path does, and a name that is no API is refused.
func TestAPIsFlag(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	base, stop := startServe(t, []string{"--data", data, "--apis", "storageapi,mediaupload"}, noEnv)
	defer stop()
	for path, want := range map[string]int{
		"/storage/openapi.json":      200, // the Storage API
		"/openapi/mediaupload.json":  200,
		"/openapi/cloudstorage.json": 404,
		"/public/1/anything":         404, // cloud storage, not mounted
		"/media/shop/assets":         404, // media service
		"/v1/media?app=a&context=c":  404, // /v1/media
		"/livez":                     200,
	} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET %s with --apis storageapi,mediaupload: %d, want %d", path, res.StatusCode, want)
		}
	}
	var out bytes.Buffer
	err := run(context.Background(), []string{"serve", "--data", data, "--apis", "storageapi,ftp"}, noEnv, &out, &out)
	if !errors.Is(err, errUnknownAPI) {
		t.Errorf("--apis with an unknown API: %v", err)
	}
}
