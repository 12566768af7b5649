package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/testtool"
)

// nginxConf is the README's nginx configuration (section "Behind a
// reverse proxy"), with the test's addresses: nginx connects to cairn
// from 127.0.0.2, the one address cairn trusts, and says the site is
// https, as a proxy that terminates TLS does.
const nginxConf = nginxHead + `
  server {
    listen %[3]s;
    client_max_body_size 0;
    location / {
      proxy_pass http://%[4]s;` + nginxProxy + `
    }
  }
}
`

// nginxHead and nginxProxy are what the README's configurations share:
// the test's folders, and the settings of a location that proxies to
// cairn.
const (
	nginxHead = `
daemon off;
%[1]s
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %[2]s/body;
  proxy_temp_path %[2]s/proxy;
  fastcgi_temp_path %[2]s/fastcgi;
  uwsgi_temp_path %[2]s/uwsgi;
  scgi_temp_path %[2]s/scgi;`
	nginxProxy = `
      proxy_bind 127.0.0.2;
      proxy_http_version 1.1;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host $host;`
)

// TestBehindNginx runs cairn behind a real nginx configured as the
// README says: absolute URLs come out as the client asked for them
// (https, its host), the client's address is the one nginx saw (not what
// the client claims in its own X-Forwarded-For, nor nginx's), and a large
// upload streams through and reads back byte for byte, ranges included.
func TestBehindNginx(t *testing.T) {
	nginx := testtool.Path(t, "nginx", "apt-get install -y nginx")
	data := filepath.Join(t.TempDir(), "data")
	base, stop := startServe(t, []string{"--data", data, "--trusted-proxies", "127.0.0.2", "--storage-public-rate", "1", "--storage-public-max-bytes", fmt.Sprint(80 << 20)}, noEnv)
	defer stop()

	front := startNginx(t, nginx, func(dir, user, front string) string {
		return fmt.Sprintf(nginxConf, user, dir, front, strings.TrimPrefix(base, "http://"))
	})

	upload := func(url, claim string, body []byte) *http.Response {
		t.Helper()
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		fw, _ := mw.CreateFormFile("file", "big.bin")
		fw.Write(body)
		mw.Close()
		req, _ := http.NewRequest("POST", url+"/storage/public/files", &b)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Host = "media.example"
		if claim != "" {
			req.Header.Set("X-Forwarded-For", claim)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	big := make([]byte, 64<<20)
	rand.Read(big)
	res := upload("http://"+front, "198.51.100.1", big)
	loc := res.Header.Get("Location")
	if res.StatusCode != 201 || !strings.HasPrefix(loc, "https://media.example/storage/public/files/") {
		t.Fatalf("64 MiB upload through nginx: %d, Location %q; want 201 and https://media.example/...", res.StatusCode, loc)
	}
	// The client is 127.0.0.1, as nginx saw it: its own claim is not
	// believed, and it is not nginx's 127.0.0.2. At one anonymous upload
	// a minute, another upload from 127.0.0.1 straight to cairn is its
	// second.
	if res := upload(base, "", []byte("again")); res.StatusCode != 429 {
		t.Errorf("a second upload from the same client, direct: %d, want 429 (the first was counted elsewhere)", res.StatusCode)
	}

	// Back through nginx: whole, and a range.
	path := strings.TrimPrefix(loc, "https://media.example")
	get := func(rng string) []byte {
		req, _ := http.NewRequest("GET", "http://"+front+path, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if got := get(""); !bytes.Equal(got, big) {
		t.Fatalf("the download through nginx differs (%d bytes)", len(got))
	}
	if got := get("bytes=40000000-40999999"); !bytes.Equal(got, big[40000000:41000000]) {
		t.Fatalf("a range through nginx differs (%d bytes)", len(got))
	}
}

// startNginx runs nginx on a free address with the configuration conf
// makes (given nginx's folder, its user line and its address), stopped
// when the test ends, and returns the address once it listens.
func startNginx(t *testing.T, nginx string, conf func(dir, user, front string) string) string {
	t.Helper()
	dir := t.TempDir()
	user := ""
	if os.Getuid() == 0 {
		user = "user root;" // its workers read the test's private folders
	}
	front := testtool.FreeAddr(t)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf(dir, user, front)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-c", path, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	// Its own process group, so that its workers go with it; output to a
	// file (a pipe would keep Wait waiting for the workers).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := os.Create(filepath.Join(dir, "out.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// SIGTERM: the master stops its workers and waits for them.
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	ready := time.NewTicker(20 * time.Millisecond)
	defer ready.Stop()
	for deadline := time.Now().Add(10 * time.Second); ; <-ready.C {
		if c, err := net.Dial("tcp", front); err == nil {
			c.Close()
			return front
		}
		if time.Now().After(deadline) {
			logs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			stdout, _ := os.ReadFile(out.Name())
			t.Fatalf("nginx is not listening on %s after 10 s:\n%s\n%s", front, stdout, logs)
		}
	}
}
