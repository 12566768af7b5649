package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPasswordFiles: passwords and secrets are read from a file or from
// standard input (--password-file, --secret-file), on a stopped store and
// through a running server alike, so they never appear in the process
// list; --password still works, with a warning.
func TestPasswordFiles(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	newStore(t, data)
	cairn := func(stdin string, args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		err := runEnv(context.Background(), append(args, "--data", data), &env{getenv: noEnv, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb})
		return out.String(), errb.String(), err
	}
	if out, _, err := cairn("correct-horse-battery\n", "account", "add", "shop", "--password-file", "-"); err != nil || strings.Contains(out, "password:") {
		t.Fatalf("account add --password-file -: %q, %v", out, err)
	}
	if _, _, err := cairn("", "account", "add", "empty", "--password-file", "-"); err == nil {
		t.Error("an empty standard input was taken as a password")
	}
	if _, stderr, err := cairn("", "account", "add", "flagged", "--password", "visible-to-everyone"); err != nil || !strings.Contains(stderr, "visible to other local users") {
		t.Errorf("--password: %q, %v; want a warning", stderr, err)
	}
	base, stop := startServe(t, []string{"--data", data}, noEnv)
	defer stop()
	status := func(pw string) int {
		req, _ := http.NewRequest("GET", base+"/cms/v2/content/none", nil)
		req.SetBasicAuth("shop", pw)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := status("correct-horse-battery"); code != 404 {
		t.Fatalf("the password from standard input: %d, want 404 (signed in, no such file)", code)
	}
	// Through the running server: the file is read here, not there.
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("battery-staple-horse\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Dir(file))
	if _, _, err := cairn("", "account", "passwd", "shop", "--password-file", "pw"); err != nil {
		t.Fatal(err)
	}
	if code := status("battery-staple-horse"); code != 404 {
		t.Errorf("the password from a file, through the server: %d, want 404", code)
	}
	if _, _, err := cairn("a-long-enough-password\n", "apiuser", "add", "ed", "--password-file", "-"); err != nil {
		t.Errorf("apiuser add with the password on standard input, through the server: %v", err)
	}
	secret := strings.Repeat("s", 40)
	if out, _, err := cairn(secret+"\n", "user", "add", "alice", "--secret-file", "-"); err != nil || !strings.Contains(out, "secret: "+secret) {
		t.Errorf("user add --secret-file -: %q, %v", out, err)
	}
	if _, _, err := cairn("ann-long-password\n", "iam", "user", "add", "ann@example.com", "--password-file", "-"); err != nil {
		t.Errorf("iam user add --password-file -: %v", err)
	}
}
