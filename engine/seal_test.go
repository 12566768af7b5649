package engine_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
)

// TestSeal: a sealed secret opens with the store's key, for the purpose
// it was sealed for only; the key file is made private on first open and
// kept; with another key file the secret does not open (ErrSealed); a
// value kept in clear by an earlier version passes through, unsealed.
func TestSeal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	e := enginetest.OpenDir(t, dir, engine.Options{})
	secret := []byte("the-signing-secret-of-alice-0123456789")
	box := e.Seal("users/alice", secret)
	if bytes.Contains(box, secret) {
		t.Fatalf("sealed value holds the secret: %q", box)
	}
	if got, sealed, err := e.Unseal("users/alice", box); err != nil || !sealed || !bytes.Equal(got, secret) {
		t.Fatalf("Unseal = %q, %v, %v", got, sealed, err)
	}
	if _, _, err := e.Unseal("users/bob", box); !errors.Is(err, engine.ErrSealed) {
		t.Errorf("alice's secret opened as bob's: %v", err)
	}
	if got, sealed, err := e.Unseal("users/old", []byte("kept-in-clear")); err != nil || sealed || string(got) != "kept-in-clear" {
		t.Errorf("a value in clear: %q, %v, %v", got, sealed, err)
	}
	fi, err := os.Stat(filepath.Join(dir, engine.KeyFileName))
	if err != nil || fi.Mode().Perm() != engine.FileMode {
		t.Fatalf("key file: %v, %v", fi, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e = enginetest.OpenDir(t, dir, engine.Options{})
	if got, _, err := e.Unseal("users/alice", box); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("after reopening: %q, %v", got, err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// Another key (the folder copied without its key file, say).
	other := filepath.Join(t.TempDir(), "other.key")
	e = enginetest.OpenDir(t, dir, engine.Options{KeyFile: other})
	if _, _, err := e.Unseal("users/alice", box); !errors.Is(err, engine.ErrSealed) {
		t.Errorf("opened with another key file: %v", err)
	}
	if fi, err := os.Stat(other); err != nil || fi.Mode().Perm() != engine.FileMode {
		t.Errorf("a key file made outside the folder: %v, %v", fi, err)
	}
}
