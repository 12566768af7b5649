package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/testtool"
)

// TestServeIndexInPostgres runs cairn as a deployment with its index in
// PostgreSQL would: `cairn init` and `cairn serve` with --index, an admin
// command given the database by CAIRN_INDEX through the running server,
// an upload, a restart, the upload still there, and `cairn check` clean.
func TestServeIndexInPostgres(t *testing.T) {
	dsn := testtool.SharedPostgres(t).NewDatabase(t)
	data := filepath.Join(t.TempDir(), "data")
	getenv := func(k string) string {
		if k == "CAIRN_INDEX" {
			return dsn
		}
		return ""
	}
	cairn := func(args ...string) (string, error) {
		var out strings.Builder
		err := run(context.Background(), append(args, "--data", data), getenv, &out, io.Discard)
		return out.String(), err
	}
	if out, err := cairn("init"); err != nil {
		t.Fatalf("init: %q, %v", out, err)
	}
	if out, err := cairn("user", "add", "alice"); err != nil {
		t.Fatalf("user add: %q, %v", out, err)
	}
	if _, err := cairn("user", "grant", "alice", "277", "WRITE"); err != nil {
		t.Fatal(err)
	}
	// Without the database the folder is refused.
	var out strings.Builder
	if err := run(context.Background(), []string{"check", "--data", data}, noEnv, &out, io.Discard); !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("check without --index: %v, want engine.ErrInvalid (the folder's index is in PostgreSQL)", err)
	}

	content := bytes.Repeat([]byte("an index in postgres\n"), 100_000)
	for round := range 2 {
		base, stop := startServe(t, []string{"--data", data, "--index", dsn}, noEnv)
		tok, err := cairn("user", "token", "alice") // through the server's admin socket
		if err != nil {
			t.Fatal(err)
		}
		auth := "Bearer " + strings.TrimSpace(tok)
		if round == 0 {
			req, _ := http.NewRequest("POST", base+"/protected/277/big.txt", bytes.NewReader(content))
			req.Header.Set("Authorization", auth)
			res, err := http.DefaultClient.Do(req)
			if err != nil || res.StatusCode != 201 {
				t.Fatalf("upload: %v %v", res, err)
			}
			res.Body.Close()
		}
		req, _ := http.NewRequest("GET", base+"/protected/277/big.txt", nil)
		req.Header.Set("Authorization", auth)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !bytes.Equal(got, content) {
			t.Fatalf("round %d: GET %d, %d bytes", round, res.StatusCode, len(got))
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := cairn("check"); err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("check: %q, %v", out, err)
	}
}
