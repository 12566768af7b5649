package testtool

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresHint says how to get PostgreSQL, as .ci/run does.
const PostgresHint = "apt-get install postgresql (Debian's; its programs are in /usr/lib/postgresql/<version>/bin)"

// Postgres is a real PostgreSQL server on 127.0.0.1: a temporary cluster
// made with initdb for one test, run as an unprivileged user when the
// test runs as root (PostgreSQL refuses to run as root).
type Postgres struct {
	t    testing.TB
	bin  string // the folder of initdb and postgres
	dir  string
	Addr string // host:port
	cred *syscall.Credential
	cmd  *exec.Cmd
	n    atomic.Int64
}

// postgresBin finds the folder of PostgreSQL's server programs: on PATH,
// or Debian's /usr/lib/postgresql/<version>/bin, the newest.
func postgresBin(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		return len(dirs[i]) < len(dirs[j]) || len(dirs[i]) == len(dirs[j]) && dirs[i] < dirs[j]
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("PostgreSQL is required (%s=%s) but initdb is not found; install it: %s", RequireEnv, os.Getenv(RequireEnv), PostgresHint)
	}
	t.Skipf("PostgreSQL's initdb not found; install it to run this test: %s", PostgresHint)
	return ""
}

// StartPostgres makes a cluster for t, starts it, and stops and removes
// it when t ends. The test is skipped (or failed in CI) without
// PostgreSQL.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	p := newPostgres(t)
	t.Cleanup(p.remove)
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

var shared struct {
	mu sync.Mutex
	p  *Postgres
}

// SharedPostgres is StartPostgres for the tests of a package that share
// one cluster (each in databases of its own, NewDatabase): made by the
// first that asks, it lives until the package's TestMain calls
// StopSharedPostgres.
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.p == nil {
		p := newPostgres(t)
		p.Start()
		shared.p = p
	}
	return shared.p
}

// StopSharedPostgres stops and removes the cluster SharedPostgres made,
// if it made one.
func StopSharedPostgres() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.p != nil {
		shared.p.Stop()
		shared.p.remove()
		shared.p = nil
	}
}

func (p *Postgres) remove() { os.RemoveAll(p.dir) }

// newPostgres makes a cluster (initdb), not yet started.
func newPostgres(t testing.TB) *Postgres {
	t.Helper()
	p := &Postgres{t: t, bin: postgresBin(t)}
	dir, err := os.MkdirTemp("", "cairn-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	if os.Geteuid() == 0 {
		// nobody: the cluster's files are its own, and private.
		p.cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	init := exec.Command(filepath.Join(p.bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "cairn", "--auth=trust", "-E", "UTF8", "--no-sync")
	init.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	init.Dir = dir
	if out, err := init.CombinedOutput(); err != nil {
		p.remove()
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.Addr = FreeAddr(t)
	return p
}

// Start starts the server (again) and waits until it takes connections.
func (p *Postgres) Start() {
	p.t.Helper()
	_, port, _ := net.SplitHostPort(p.Addr)
	p.cmd = exec.Command(filepath.Join(p.bin, "postgres"), "-D", filepath.Join(p.dir, "data"),
		"-c", "listen_addresses=127.0.0.1", "-p", port, "-c", "unix_socket_directories="+p.dir,
		"-c", "max_connections=200", "-c", "log_min_messages=warning")
	// Pdeathsig: a test binary that exits without StopSharedPostgres (a
	// package without the TestMain that calls it, a test killed) takes
	// its server with it (SIGQUIT: immediate shutdown).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	p.cmd.Dir = p.dir
	var logs strings.Builder
	p.cmd.Stderr = &logs
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("starting postgres: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := pgx.Connect(ctx, p.DSN("postgres"))
		if err == nil {
			// This cluster, not another test's on the same port (whose
			// bind this server then lost).
			var data string
			err = c.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&data)
			c.Close(context.Background())
			if err == nil && data != filepath.Join(p.dir, "data") {
				p.cmd.Process.Kill()
				p.t.Fatalf("another PostgreSQL (of %s) answers on %s", data, p.Addr)
			}
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			p.cmd.Process.Kill()
			p.t.Fatalf("postgres on %s takes no connections after 60 s: %v\n%s", p.Addr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop stops the server (fast shutdown: sessions are ended, what was
// committed is kept).
func (p *Postgres) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	p.cmd = nil
}

// DSN is the connection string of database db.
func (p *Postgres) DSN(db string) string {
	return fmt.Sprintf("postgres://cairn@%s/%s?sslmode=disable", p.Addr, db)
}

// NewDatabase makes an empty database for t and returns its connection
// string.
func (p *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("test%d", p.n.Add(1))
	ctx := context.Background()
	c, err := pgx.Connect(ctx, p.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("CREATE DATABASE %s: %v", name, err)
	}
	return p.DSN(name)
}

// Main runs a package's tests and then StopSharedPostgres: a package
// whose tests may share a cluster says
//
//	func TestMain(m *testing.M) { testtool.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	StopSharedPostgres()
	os.Exit(code)
}

// CPU is the CPU time the server's processes (the postmaster and its
// children, the backends: each its own session, so found by parent) have
// used so far, user and system, from /proc: for benchmarks that count the
// database's share of a request. A backend that has exited no longer
// counts.
func (p *Postgres) CPU() time.Duration {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	pid := int64(p.cmd.Process.Pid)
	entries, _ := os.ReadDir("/proc")
	var cpu time.Duration
	for _, e := range entries {
		var self int64
		fmt.Sscan(e.Name(), &self)
		if parent, used, ok := procStat(self); ok && (self == pid || parent == pid) {
			cpu += used
		}
	}
	return cpu
}

// ProcessCPU is the CPU time process pid has used so far, user and
// system, all its threads, from /proc (0 if it is gone).
func ProcessCPU(pid int) time.Duration {
	_, used, _ := procStat(int64(pid))
	return used
}

// procStat reads a process's parent and CPU time from /proc/pid/stat.
func procStat(pid int64) (parent int64, used time.Duration, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:]) // state ppid pgrp … utime (index 11) stime (12)
	if len(f) < 13 {
		return 0, 0, false
	}
	var ut, st int64
	fmt.Sscan(f[1], &parent)
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return parent, time.Duration(ut+st) * time.Second / 100, true // USER_HZ
}
