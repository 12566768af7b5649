package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/engine"
)

// TestSealedSecrets: the signing secrets kept in the index are sealed
// with the store's key file, so no file of the store holds them in clear
// and a copy of the folder without its key file mints no token; a secret
// an earlier version kept in clear is sealed when the server starts, and
// still signs.
func TestSealedSecrets(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	newStore(t, data)
	cairn := func(data, stdin string, args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := runEnv(context.Background(), append(args, "--data", data), &env{getenv: noEnv, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb})
		return out.String() + errb.String(), err
	}
	secret := "alice-secret-" + strings.Repeat("k", 40)
	if _, err := cairn(data, secret+"\n", "user", "add", "alice", "--secret-file", "-"); err != nil {
		t.Fatal(err)
	}
	_, stop := startServe(t, []string{"--data", data}, noEnv) // makes the HS256 keys
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds alice's secret in clear", path)
		}
		return nil
	})
	e, err := engine.Open(data, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"mediaservice.key", "storageapi.key"} {
		rec, err := e.GetRecord(engine.Key{Namespace: ns, Name: "hs256"})
		if err != nil || !bytes.HasPrefix(rec.Meta, []byte("sealed:v1:")) {
			t.Errorf("%s: %.20q, %v; want it sealed", ns, rec.Meta, err)
		}
	}
	e.Close()

	// A copy of the folder without its key file mints no token.
	cp := func(dst string, withKey bool) {
		if out, err := exec.Command("cp", "-a", data, dst).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		if !withKey {
			os.Remove(filepath.Join(dst, engine.KeyFileName))
		}
	}
	stolen := filepath.Join(t.TempDir(), "stolen")
	cp(stolen, false)
	if out, err := cairn(stolen, "", "user", "token", "alice"); !errors.Is(err, engine.ErrSealed) {
		t.Errorf("user token on a copy without the key file: %q, %v; want ErrSealed", out, err)
	}
	backup := filepath.Join(t.TempDir(), "backup")
	cp(backup, true)
	if out, err := cairn(backup, "", "user", "token", "alice"); err != nil || strings.Count(out, ".") != 2 {
		t.Errorf("user token on a copy with its key file: %q, %v", out, err)
	}

	// The key kept apart from the folder, named by --key-file.
	apart := filepath.Join(t.TempDir(), "cairn.key")
	if err := os.Rename(filepath.Join(backup, engine.KeyFileName), apart); err != nil {
		t.Fatal(err)
	}
	if out, err := cairn(backup, "", "user", "token", "alice", "--key-file", apart); err != nil || strings.Count(out, ".") != 2 {
		t.Errorf("user token with --key-file: %q, %v", out, err)
	}

	// A secret kept in clear, as an earlier version did.
	e, err = engine.Open(data, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	old := "bob-secret-kept-in-clear-" + strings.Repeat("c", 20)
	meta, _ := json.Marshal(map[string]any{"id": "bob", "secret": old, "buckets": map[string]string{"9": "WRITE"}})
	if _, err := e.PutRecord(context.Background(), engine.Key{Namespace: "cloudstorage.users", Name: "bob"}, strings.NewReader(""), engine.Write{Meta: meta}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	tok, err := cairn(data, "", "user", "token", "bob")
	if err != nil {
		t.Fatalf("a token of a user with a secret in clear: %v", err)
	}
	base, stop := startServe(t, []string{"--data", data}, noEnv)
	req, _ := http.NewRequest("POST", base+"/protected/9/x", strings.NewReader("x"))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Errorf("bob's token after his secret was sealed: %d", res.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	e, err = engine.Open(data, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rec, err := e.GetRecord(engine.Key{Namespace: "cloudstorage.users", Name: "bob"})
	if err != nil || bytes.Contains(rec.Meta, []byte(old)) {
		t.Errorf("bob's record after serve: %q, %v; want his secret sealed", rec.Meta, err)
	}
}
