package server_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/server"
)

func status(t *testing.T, method, url string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestHealth(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	srv := server.New(server.Config{Engine: e, Logger: enginetest.Logger(t)})
	ts := httptest.NewServer(srv)
	defer ts.Close()

	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/livez", 200},
		{"HEAD", "/livez", 200},
		{"GET", "/readyz", 200},
		{"POST", "/livez", 405},
		{"GET", "/missing", 404},
	} {
		if got := status(t, tc.method, ts.URL+tc.path); got != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, got, tc.want)
		}
	}
	srv.Drain()
	if got := status(t, "GET", ts.URL+"/readyz"); got != 503 {
		t.Errorf("GET /readyz while draining = %d, want 503", got)
	}
	if got := status(t, "GET", ts.URL+"/livez"); got != 200 {
		t.Errorf("GET /livez while draining = %d, want 200", got)
	}
}

func TestReadyzClosedEngine(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	ts := httptest.NewServer(server.New(server.Config{Engine: e}))
	defer ts.Close()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := status(t, "GET", ts.URL+"/readyz"); got != 503 {
		t.Errorf("GET /readyz with the engine closed = %d, want 503", got)
	}
	// Why goes to the log: /readyz is on the APIs' listener, and the
	// engine's error is nothing an unauthenticated client should read.
	res, err := http.Get(ts.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "not ready\n" {
		t.Errorf("GET /readyz with the engine closed answered %q, want only \"not ready\"", body)
	}
}
