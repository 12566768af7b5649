package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/internal/testtool"
)

// nodesConf is the README's nginx configuration for several nodes
// (section "Several nodes": the reverse-proxy settings with an
// upstream), with the test's addresses.
const nodesConf = nginxHead + `
  upstream cairn {
    server %[4]s max_fails=1 fail_timeout=5s;
    server %[5]s max_fails=1 fail_timeout=5s;
    keepalive 64;
  }
  server {
    listen %[3]s;
    client_max_body_size 0;
    location / {
      proxy_pass http://cairn;
      proxy_set_header Connection "";
      proxy_next_upstream error timeout http_502 http_503;` + nginxProxy + `
    }
  }
}
`

// TestNodesBehindNginx: two `cairn serve` nodes of one store (the index
// in PostgreSQL, the segments in MinIO), made as the README says (init
// once, then each node on an empty folder with the key), behind a real
// nginx configured as the README says. Uploads through nginx land on
// both nodes and every file reads back from each node directly; with one
// node stopped, uploads and downloads through nginx go on.
func TestNodesBehindNginx(t *testing.T) {
	nginx := testtool.Path(t, "nginx", "apt-get install -y nginx")
	m := testtool.StartMinIO(t)
	dsn := testtool.SharedPostgres(t).NewDatabase(t)
	getenv := func(k string) string {
		if k == "CAIRN_INDEX" {
			return dsn
		}
		return m.Getenv(k)
	}
	store := "s3://" + m.Bucket + "/nodes"
	first := filepath.Join(t.TempDir(), "first")
	cairn := func(args ...string) string {
		t.Helper()
		var out strings.Builder
		if err := run(context.Background(), append(args, "--data", first), getenv, &out, io.Discard); err != nil {
			t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	cairn("init", "--store", store)
	cairn("user", "add", "alice")
	cairn("user", "grant", "alice", "277", "WRITE")
	auth := "Bearer " + strings.TrimSpace(cairn("user", "token", "alice"))
	key := filepath.Join(t.TempDir(), "secret.key")
	if b, err := os.ReadFile(filepath.Join(first, "secret.key")); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(key, b, 0o600); err != nil {
		t.Fatal(err)
	}

	var bases, nodeDirs []string
	var stops []func() error
	for i := range 2 {
		nodeDirs = append(nodeDirs, filepath.Join(t.TempDir(), fmt.Sprint("node", i)))
		base, stop := startServe(t, []string{"--data", nodeDirs[i], "--store", store,
			"--key-file", key, "--node-name", fmt.Sprint("node", i), "--trusted-proxies", "127.0.0.2"}, getenv)
		bases, stops = append(bases, base), append(stops, stop)
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	front := "http://" + startNginx(t, nginx, func(dir, user, front string) string {
		return fmt.Sprintf(nodesConf, user, dir, front, strings.TrimPrefix(bases[0], "http://"), strings.TrimPrefix(bases[1], "http://"))
	})

	do := func(method, url string, body []byte) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		req.Header.Set("Authorization", auth)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, b
	}
	files := map[string][]byte{}
	put := func(name string) {
		t.Helper()
		body := bytes.Repeat([]byte(name+" "), 20_000)
		if code, b := do("POST", front+"/protected/277/"+name, body); code != 201 {
			t.Fatalf("upload %s through nginx: %d %s", name, code, b)
		}
		files[name] = body
	}
	for i := range 10 {
		put(fmt.Sprint("a", i))
	}
	for name, want := range files {
		for _, base := range append([]string{front}, bases...) {
			if code, got := do("GET", base+"/protected/277/"+name, nil); code != 200 || !bytes.Equal(got, want) {
				t.Fatalf("%s from %s: %d, %d bytes", name, base, code, len(got))
			}
		}
	}

	// cairn nodes, asked of a node's folder, lists both (through that
	// node's admin socket).
	var out strings.Builder
	if err := run(context.Background(), []string{"nodes", "--data", nodeDirs[0]}, getenv, &out, io.Discard); err != nil {
		t.Fatalf("cairn nodes: %v", err)
	}
	for _, want := range []string{"node node0: idle (this command's", "node node1: idle", "no lease held"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("cairn nodes printed %q, want %q in it", out.String(), want)
		}
	}

	// One node stops: nginx sends everything to the other.
	if err := stops[0](); err != nil {
		t.Fatal(err)
	}
	stops = stops[1:]
	for i := range 10 {
		put(fmt.Sprint("b", i))
	}
	for name, want := range files {
		if code, got := do("GET", front+"/protected/277/"+name, nil); code != 200 || !bytes.Equal(got, want) {
			t.Fatalf("%s through nginx with one node stopped: %d, %d bytes", name, code, len(got))
		}
	}
}
