package testtool

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIOHint says how to get the minio server, as .ci/run does.
const MinIOHint = "GOBIN=~/.cache/cairn-tools go install github.com/minio/minio@" + MinIOVersion + " and put that folder on PATH"

// MinIOVersion is the MinIO server .ci/run builds from the Go module proxy.
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// MinIO is a real MinIO server on 127.0.0.1, on a temporary folder, run by
// one test. Its credentials are its own (so a request that reaches
// another test's server is refused, never answered); Bucket is made
// empty for the test.
type MinIO struct {
	t                    testing.TB
	bin, dir             string
	Addr                 string // host:port
	AccessKey, SecretKey string
	Bucket               string
	cmd                  *exec.Cmd
	exited               chan struct{} // closed when cmd has exited
}

// StartMinIO starts a MinIO server for t, with an empty bucket, and stops
// it when t ends. The test is skipped (or failed in CI) without minio.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	m := &MinIO{t: t, bin: Path(t, "minio", MinIOHint), dir: t.TempDir(),
		AccessKey: "cairn-" + rand.Text()[:12], SecretKey: rand.Text(), Bucket: "cairn"}
	t.Cleanup(m.Stop)
	var err error
	for range 3 { // a port taken before the server could bind it: another
		m.Addr = FreeAddr(t)
		if err = m.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	err = m.client().MakeBucket(context.Background(), m.Bucket, minio.MakeBucketOptions{})
	if minio.ToErrorResponse(err).Code == "BucketAlreadyOwnedByYou" {
		err = nil // a retried request: the first made it
	}
	if err != nil {
		t.Fatalf("making the test bucket: %v", err)
	}
	return m
}

func (m *MinIO) client() *minio.Client {
	c, err := minio.New(m.Addr, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, "")})
	if err != nil {
		m.t.Fatal(err)
	}
	return c
}

// Endpoint is the server's URL.
func (m *MinIO) Endpoint() string { return "http://" + m.Addr }

// Env is the environment a cairn process needs to use the bucket.
func (m *MinIO) Env() []string {
	return []string{"AWS_ENDPOINT_URL=" + m.Endpoint(), "AWS_ACCESS_KEY_ID=" + m.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + m.SecretKey, "AWS_REGION=us-east-1"}
}

// Getenv is Env as a lookup function.
func (m *MinIO) Getenv(k string) string {
	for _, kv := range m.Env() {
		if key, v, _ := strings.Cut(kv, "="); key == k {
			return v
		}
	}
	return ""
}

// Start (re)starts the server on the same address and folder, and waits
// until it is ready.
func (m *MinIO) Start() {
	m.t.Helper()
	if err := m.start(); err != nil {
		m.t.Fatal(err)
	}
}

// start starts the server and waits until it is ready and known to be
// this one: it answers a request signed with this server's credentials.
// It fails if the server exits first (its port was taken) or another
// answers on its address.
func (m *MinIO) start() error {
	cmd := exec.Command(m.bin, "server", filepath.Join(m.dir, "data"), "--address", m.Addr, "--console-address", "127.0.0.1:0", "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	log, err := os.Create(filepath.Join(m.dir, fmt.Sprintf("minio-%d.log", time.Now().UnixNano())))
	if err != nil {
		return err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting minio: %w", err)
	}
	m.cmd, m.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) { cmd.Wait(); close(exited) }(m.exited)
	logs := func() string { b, _ := os.ReadFile(log.Name()); return string(b) }
	c := m.client()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = c.ListBuckets(ctx)
		cancel()
		select {
		case <-m.exited:
			m.cmd = nil
			return fmt.Errorf("minio on %s exited: %s", m.Addr, logs())
		default:
		}
		if err == nil {
			return nil
		}
		if code := minio.ToErrorResponse(err).Code; code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" {
			m.Stop()
			return fmt.Errorf("another server answers on %s: %w", m.Addr, err)
		}
		if time.Now().After(deadline) {
			m.Stop()
			return fmt.Errorf("minio not ready after 60 s: %w\n%s", err, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills the server (as an outage would), if it runs.
func (m *MinIO) Stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	<-m.exited
	m.cmd = nil
}
