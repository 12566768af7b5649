package engine

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/cairnstore/cairn/segment"
)

// Secrets the APIs must keep usable, not only hashed (the HS256 keys that
// sign tokens, cloud storage users' signing secrets), are kept sealed:
// AES-256-GCM under the store's key, a file of its own outside the index
// (Options.KeyFile). A copy of the index alone mints no token; the key
// file is the one thing to keep apart (and back up) to keep it so.
//
// A sealed value is sealedPrefix and the base64 of nonce || ciphertext;
// its purpose (what it is the secret of) is authenticated with it, so a
// sealed value moved to another record does not open.

const sealedPrefix = "sealed:v1:"

// KeyFileName is the key file's name in the data folder, by default.
const KeyFileName = "secret.key"

// ErrSealed: a sealed value does not open with the store's key: it was
// sealed with another key file, or altered.
var ErrSealed = errors.New("engine: a sealed secret does not open with this store's key file")

// openKey reads the store's key from path, making it (32 random bytes, in
// hex) if there is none.
func openKey(fs vfs.FS, path string) (cipher.AEAD, error) {
	f, err := fs.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := makeKey(fs, path); err != nil {
			return nil, fmt.Errorf("engine: make the key file %s: %w", path, err)
		}
		f, err = fs.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("engine: key file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<10))
	if err != nil {
		return nil, fmt.Errorf("engine: key file %s: %w", path, err)
	}
	key, err := hex.DecodeString(string(bytes.TrimSpace(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("engine: key file %s does not hold 64 hex digits", path)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// makeKey writes a new key to path durably: a temporary file, synced,
// renamed, and its folder synced.
func makeKey(fs vfs.FS, path string) error {
	var key [32]byte
	rand.Read(key[:])
	tmp := path + ".tmp"
	f, err := fs.Create(tmp, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(hex.EncodeToString(key[:]) + "\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err == nil {
		err = segment.SyncDir(fs, fs.PathDir(path))
	}
	return err
}

// Seal returns plain sealed under the store's key, for purpose (what it
// is the secret of: "cloudstorage.users/alice"); Unseal opens it.
func (e *Engine) Seal(purpose string, plain []byte) []byte {
	nonce := make([]byte, e.key.NonceSize(), e.key.NonceSize()+len(plain)+e.key.Overhead())
	rand.Read(nonce)
	box := e.key.Seal(nonce, nonce, plain, []byte(purpose))
	out := make([]byte, len(sealedPrefix)+base64.RawStdEncoding.EncodedLen(len(box)))
	copy(out, sealedPrefix)
	base64.RawStdEncoding.Encode(out[len(sealedPrefix):], box)
	return out
}

// Unseal opens a value Seal made for purpose. A value that is not sealed
// (kept in clear by an earlier version) is returned as it is, with sealed
// false: the caller seals it on its next write. One that does not open is
// ErrSealed.
func (e *Engine) Unseal(purpose string, v []byte) (plain []byte, sealed bool, err error) {
	enc, ok := bytes.CutPrefix(v, []byte(sealedPrefix))
	if !ok {
		return v, false, nil
	}
	box := make([]byte, base64.RawStdEncoding.DecodedLen(len(enc)))
	n, err := base64.RawStdEncoding.Decode(box, enc)
	if err != nil || n < e.key.NonceSize() {
		return nil, true, fmt.Errorf("%w: %s: not a sealed value", ErrSealed, purpose)
	}
	box = box[:n]
	plain, err = e.key.Open(nil, box[:e.key.NonceSize()], box[e.key.NonceSize():], []byte(purpose))
	if err != nil {
		return nil, true, fmt.Errorf("%w: %s (key file %s)", ErrSealed, purpose, e.keyFile)
	}
	return plain, true, nil
}
