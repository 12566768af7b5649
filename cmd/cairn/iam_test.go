package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestIAMCommands makes Storage API users and an organization on a
// stopped store, changes roles through the running server, and logs in.
func TestIAMCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	newStore(t, data)
	cairn := func(args ...string) (string, error) {
		var out strings.Builder
		err := run(context.Background(), append(args, "--data", data), noEnv, &out, io.Discard)
		return out.String(), err
	}
	for _, c := range [][]string{
		{"iam", "user", "add", "ann@acme.test", "--password", "ann-password-1"},
		{"iam", "org", "add", "acme"},
		{"iam", "member", "set", "acme", "ann@acme.test", "member"},
	} {
		if out, err := cairn(c...); err != nil {
			t.Fatalf("cairn %s: %q, %v", strings.Join(c, " "), out, err)
		}
	}
	for _, bad := range [][]string{
		{"iam", "user", "add", "ann@acme.test"},                       // taken
		{"iam", "user", "add", "Ann <ann@x.test>"},                    // not a bare address
		{"iam", "user", "add", "bo@acme.test", "--password", "short"}, // too short
		{"iam", "org", "add", "Bad Name"},
		{"iam", "member", "set", "acme", "ann@acme.test", "owner"},
		{"iam", "member", "set", "nope", "ann@acme.test", "admin"},
		{"iam", "group", "list"},
	} {
		if _, err := cairn(bad...); err == nil {
			t.Errorf("cairn %s succeeded", strings.Join(bad, " "))
		}
	}
	base, stop := startServe(t, []string{"--data", data}, noEnv)
	defer stop()
	if out, err := cairn("iam", "member", "set", "acme", "ann@acme.test", "manager"); err != nil || !strings.Contains(out, "manager of acme") {
		t.Fatalf("member set through the server: %q, %v", out, err)
	}
	res, err := http.Post(base+"/storage/auth/login", "application/json", strings.NewReader(`{"email":"ann@acme.test","password":"ann-password-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	var login struct {
		Organizations []struct{ Name, Role string }
	}
	json.NewDecoder(res.Body).Decode(&login)
	res.Body.Close()
	if res.StatusCode != 200 || len(login.Organizations) != 1 || login.Organizations[0].Role != "manager" {
		t.Fatalf("login: %d %+v", res.StatusCode, login)
	}
	out, err := cairn("iam", "user", "list")
	if err != nil || !strings.Contains(out, "ann@acme.test") || !strings.Contains(out, "acme:manager") {
		t.Fatalf("user list: %q, %v", out, err)
	}
	if out, err := cairn("iam", "member", "list", "acme"); err != nil || !strings.Contains(out, "ann@acme.test  manager") {
		t.Fatalf("member list: %q, %v", out, err)
	}
	if _, err := cairn("iam", "org", "delete", "acme"); err != nil {
		t.Fatal(err)
	}
	if out, _ := cairn("iam", "user", "list"); strings.Contains(out, "acme:") {
		t.Fatalf("a deleted organization's membership is listed: %q", out)
	}
}
