package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupCommands: cairn backup through a running server's admin
// socket, then cairn restore to a new folder, which serves the upload.
func TestBackupCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	newStore(t, data)
	cairn := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), args, noEnv, &out, &out)
		return out.String(), err
	}
	if _, err := cairn("user", "add", "alice", "--data", data); err != nil {
		t.Fatal(err)
	}
	if _, err := cairn("user", "grant", "alice", "b", "WRITE", "--data", data); err != nil {
		t.Fatal(err)
	}
	tok, err := cairn("user", "token", "alice", "--ttl", "1h", "--data", data)
	if err != nil {
		t.Fatal(err)
	}
	tok = strings.TrimSpace(tok)
	body := make([]byte, 3<<20)
	rand.Read(body)
	do := func(base, method string, b []byte) (int, []byte) {
		req, _ := http.NewRequest(method, base+"/protected/b/file.bin", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		got, _ := io.ReadAll(res.Body)
		return res.StatusCode, got
	}
	if _, err := cairn("backup", "relative/dir", "--data", data); !errors.Is(err, errRelativeBackup) {
		t.Fatalf("a relative backup folder: %v", err)
	}
	base, stop := startServe(t, []string{"--data", data}, noEnv)
	if code, _ := do(base, "POST", body); code != 201 {
		t.Fatalf("upload: %d", code)
	}
	backup := filepath.Join(t.TempDir(), "backup")
	if out, err := cairn("backup", backup, "--data", data); err != nil || !strings.Contains(out, "backup: "+backup) {
		t.Fatalf("backup through the server: %v\n%s", err, out)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if out, err := cairn("restore", backup, "--data", restored); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if out, err := cairn("check", "--data", restored); err != nil {
		t.Fatalf("check of the restored store: %v\n%s", err, out)
	}
	base, _ = startServe(t, []string{"--data", restored}, noEnv)
	if code, got := do(base, "GET", nil); code != 200 || !bytes.Equal(got, body) {
		t.Fatalf("the restored store serves %d, %d bytes", code, len(got))
	}
}
