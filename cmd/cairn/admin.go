package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cairnstore/cairn/engine"
)

// The admin socket lets store commands (cairn user …) run while a server
// holds the store: `cairn serve` listens on a Unix socket in the data
// folder, readable and writable by its owner only, and a command that
// finds it sends its arguments there instead of opening the store.

func adminSocket(data string) string { return filepath.Join(data, "admin.sock") }

// serverListening reports whether a server answers on sock.
func serverListening(sock string) bool {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// adminRequest and adminResponse are the socket's one exchange.
type adminRequest struct {
	Args []string `json:"args"`
	// Stdin is the command's standard input: what its --password-file
	// held on the machine that sent it.
	Stdin string `json:"stdin,omitempty"`
}

type adminResponse struct {
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	Error  string `json:"error,omitempty"`
	Code   int    `json:"code"`
}

func adminClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// forward runs a command in the server listening on sock.
func forward(ctx context.Context, sock string, cmd adminRequest, stdout, stderr io.Writer) error {
	body, _ := json.Marshal(cmd)
	req, err := http.NewRequestWithContext(ctx, "POST", "http://admin/run", bytes.NewReader(body))
	if err != nil {
		return err
	}
	res, err := adminClient(sock).Do(req)
	if err != nil {
		return fmt.Errorf("sending the command to the running server: %w", err)
	}
	defer res.Body.Close()
	var out adminResponse
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		return fmt.Errorf("reading the running server's answer: %w", err)
	}
	io.WriteString(stdout, out.Stdout)
	io.WriteString(stderr, out.Stderr)
	if out.Error != "" {
		return &exitError{code: max(out.Code, 1), err: errors.New(out.Error)}
	}
	return nil
}

// serveAdmin answers store commands on sock with eng until ctx ends.
func serveAdmin(ctx context.Context, sock string, eng *engine.Engine, log *slog.Logger) (stop func(), err error) {
	if serverListening(sock) {
		return nil, fmt.Errorf("another server is running on this data folder (%s answers)", sock)
	}
	os.Remove(sock) // left by a server that did not shut down
	ln, err := listenPrivate(sock)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /run", func(w http.ResponseWriter, r *http.Request) {
		var req adminRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil || len(req.Args) == 0 {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		c, ok := find(req.Args[0])
		if !ok || !c.store {
			http.Error(w, "not a store command", http.StatusBadRequest)
			return
		}
		var stdout, stderr bytes.Buffer
		err := runEnv(r.Context(), req.Args, &env{getenv: func(string) string { return "" }, stdin: strings.NewReader(req.Stdin), stdout: &stdout, stderr: &stderr, engine: eng})
		out := adminResponse{Stdout: stdout.String(), Stderr: stderr.String()}
		if err != nil {
			out.Error, out.Code = err.Error(), exitCode(err)
		}
		log.Info("admin command", "command", req.Args[0], "ok", err == nil)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(sctx)
		os.Remove(sock)
	}, nil
}

// listenPrivate listens on the Unix socket sock, which exists under that
// name only once it is 0600: it is bound in a new folder of its own
// (0700), made 0600 there, and renamed into place. A socket bound at sock
// directly would be open to everyone the umask lets in until a chmod
// after it is already listening.
func listenPrivate(sock string) (*net.UnixListener, error) {
	tmp, err := os.MkdirTemp(filepath.Dir(sock), ".admin")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bound := filepath.Join(tmp, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: bound, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// The socket's name is sock from here on; the server removes it.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(bound, engine.FileMode); err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(bound, sock); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
