// Package crashtest runs the real cairn binary and does to it what
// machines do to servers: SIGKILL at random moments, power loss (an XFS
// shutdown that drops the unflushed log), a full disk, failing fsyncs,
// and long mixed load. After each, what was acknowledged must be there,
// byte-exact, and the store must check and scrub clean.
//
// The binary is built once per run from this module. Cycle counts and
// the soak's length have CI defaults and flags for longer runs:
//
//	go test ./cmd/cairn/crashtest -run Crash -crash.cycles 200
//	go test ./cmd/cairn/crashtest -run Soak -soak.duration 30m
package crashtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zeebo/blake3"

	"github.com/cairnstore/cairn/internal/testtool"
)

// binary builds cmd/cairn once and returns its path.
func binary(t *testing.T) string { return testtool.Cairn(t) }

// cairn runs a cairn subcommand to completion.
func cairn(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// mustCairn is cairn that fails the test on an error.
func mustCairn(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cairn(t, args...)
	if err != nil {
		t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// proc is a running `cairn serve`.
type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 { // keep the last MiB or so
		s.b.Next(s.b.Len() - 512<<10)
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// serve starts `cairn serve` on data (through wrap, e.g. strace, when
// given) and waits until it listens.
func serve(t *testing.T, data string, wrap []string, args ...string) *proc {
	t.Helper()
	argv := append([]string{binary(t), "serve", "--data", data, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--log-level", "warn", "--gc-interval", "0", "--scrub-interval", "0"}, args...)
	argv = append(append([]string(nil), wrap...), argv...)
	p := &proc{cmd: exec.Command(argv[0], argv[1:]...), logs: &syncBuffer{}, done: make(chan error, 1)}
	// A process group of its own, so that kill takes a wrapper (strace)
	// and the server under it together.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		br := bufio.NewReader(stdout)
		line, _ := br.ReadString('\n')
		lines <- line
		io.Copy(p.logs, br)
	}()
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.kill() })
	select {
	case line := <-lines:
		const prefix = "cairn: serving "
		if !strings.HasPrefix(line, prefix) {
			p.kill()
			t.Fatalf("serve printed %q; logs:\n%s", line, p.logs)
		}
		p.url = strings.TrimSuffix(strings.Fields(strings.TrimPrefix(line, prefix))[0], "/")
	case <-time.After(60 * time.Second):
		p.kill()
		t.Fatalf("serve did not start in 60 s; logs:\n%s", p.logs)
	}
	return p
}

// kill sends SIGKILL to the server's process group and waits for it to
// be gone.
func (p *proc) kill() {
	if p.cmd.Process == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	p.done <- nil // later kills return at once
}

// pid is the server's process ID (unwrapped servers only).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// setupUser makes a cloud storage user with WRITE on bucket "b" on a
// stopped store (made first by cairn init: the other admin commands make
// none), and returns a day-long token.
func setupUser(t *testing.T, data string) string {
	t.Helper()
	mustCairn(t, "init", "--data", data)
	mustCairn(t, "user", "add", "loader", "--data", data)
	mustCairn(t, "user", "grant", "loader", "b", "WRITE", "--data", data)
	return strings.TrimSpace(mustCairn(t, "user", "token", "loader", "--ttl", "24h", "--data", data))
}

// client talks to a server: uploads to /public/b/<name> with a token,
// downloads without one.
type client struct {
	base, token string
	hc          *http.Client
}

func newClient(base, token string) *client {
	return &client{base: base, token: token, hc: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

func (c *client) put(name string, body []byte) (int, error) {
	req, _ := http.NewRequest("POST", c.base+"/public/b/"+name, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/octet-stream")
	return c.status(req)
}

func (c *client) del(name string) (int, error) {
	req, _ := http.NewRequest("DELETE", c.base+"/public/b/"+name, nil)
	req.Header.Set("Authorization", "Bearer "+c.token)
	return c.status(req)
}

func (c *client) status(req *http.Request) (int, error) {
	res, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// get returns the status and the BLAKE3 of the body.
func (c *client) get(name string, hdr ...string) (int, [32]byte, int64, error) {
	req, _ := http.NewRequest("GET", c.base+"/public/b/"+name, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return 0, [32]byte{}, 0, err
	}
	defer res.Body.Close()
	h := blake3.New()
	n, err := io.Copy(h, res.Body)
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return res.StatusCode, sum, n, err
}

// content makes n pseudo-random (incompressible) bytes from seed.
func content(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// logSize is a size from lo to hi, log-uniform: many small files, some
// large ones.
func logSize(r *rand.Rand, lo, hi int) int {
	return int(float64(lo) * math.Pow(float64(hi)/float64(lo), r.Float64()))
}

// du is the disk space the files under dir take: their blocks, so that
// space preallocated past a file's end counts (a store that seals segments
// early and keeps their reservations fills the disk while their lengths
// look small), or their lengths where those are more (sparse files).
func du(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			// What the file system gave the file, not its length: space
			// preallocated past the end counts.
			n += max(fi.Size(), fi.Sys().(*syscall.Stat_t).Blocks*512)
		}
		return nil
	})
	return n
}

// rss is a process's resident set size in bytes.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the server's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), &kb)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}
