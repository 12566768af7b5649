package testtool

import (
	"context"
	"fmt"
	"net"
	"net/http"
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
// one test. Its credentials are fixed; Bucket is made empty for the test.
type MinIO struct {
	t                    testing.TB
	bin, dir             string
	Addr                 string // host:port
	AccessKey, SecretKey string
	Bucket               string
	cmd                  *exec.Cmd
}

// StartMinIO starts a MinIO server for t, with an empty bucket, and stops
// it when t ends. The test is skipped (or failed in CI) without minio.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	m := &MinIO{t: t, bin: Path(t, "minio", MinIOHint), dir: t.TempDir(),
		AccessKey: "cairn-test", SecretKey: "cairn-test-secret-key", Bucket: "cairn"}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.Addr = l.Addr().String()
	l.Close()
	m.Start()
	t.Cleanup(m.Stop)
	c, err := minio.New(m.Addr, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MakeBucket(context.Background(), m.Bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("making the test bucket: %v", err)
	}
	return m
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
	cmd := exec.Command(m.bin, "server", filepath.Join(m.dir, "data"), "--address", m.Addr, "--console-address", "127.0.0.1:0", "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	log, err := os.Create(filepath.Join(m.dir, fmt.Sprintf("minio-%d.log", time.Now().UnixNano())))
	if err != nil {
		m.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		m.t.Fatalf("starting minio: %v", err)
	}
	m.cmd = cmd
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(m.Endpoint() + "/minio/health/ready")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(log.Name())
			m.t.Fatalf("minio not ready after 60 s: %v\n%s", err, b)
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
	m.cmd.Wait()
	m.cmd = nil
}
