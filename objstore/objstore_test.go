package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/testtool"
)

func TestParseStore(t *testing.T) {
	for _, c := range []struct {
		in, bucket, prefix string
		ok, err            bool
	}{
		{"s3://b", "b", "", true, false},
		{"s3://b/", "b", "", true, false},
		{"s3://b/p/q/", "b", "p/q/", true, false},
		{"s3:///p", "", "", true, true},
		{"./data", "", "", false, false},
	} {
		b, p, ok, err := ParseStore(c.in)
		if b != c.bucket || p != c.prefix || ok != c.ok || (err != nil) != c.err {
			t.Errorf("ParseStore(%q) = %q, %q, %v, %v", c.in, b, p, ok, err)
		}
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_REGION": "eu-west-1"}
	c, err := FromEnv("s3://b/p", "", func(k string) string { return env[k] })
	if err != nil || c.Endpoint != "127.0.0.1:9000" || c.Secure || c.Region != "eu-west-1" || c.Bucket != "b" || c.Prefix != "p/" {
		t.Errorf("FromEnv = %+v, %v", c, err)
	}
	env["AWS_ENDPOINT_URL_S3"] = "https://s3.example.net"
	if c, err := FromEnv("s3://b", "", func(k string) string { return env[k] }); err != nil || c.Endpoint != "s3.example.net" || !c.Secure {
		t.Errorf("AWS_ENDPOINT_URL_S3 first: %+v, %v", c, err)
	}
	if c, err := FromEnv("s3://b", "minio.lan:9000", func(k string) string { return env[k] }); err != nil || c.Endpoint != "minio.lan:9000" || !c.Secure {
		t.Errorf("the flag first, https by default: %+v, %v", c, err)
	}
	delete(env, "AWS_SECRET_ACCESS_KEY")
	if _, err := FromEnv("s3://b", "", func(k string) string { return env[k] }); err == nil {
		t.Error("no secret key: no error")
	}
	if _, err := FromEnv("s3://b", "ftp://x", func(string) string { return "k" }); err == nil {
		t.Error("ftp endpoint: no error")
	}
}

// TestBucket runs every operation against a real MinIO server.
func TestBucket(t *testing.T) {
	m := testtool.StartMinIO(t)
	ctx := context.Background()
	cfg, err := FromEnv("s3://"+m.Bucket+"/store", "", m.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Config{Bucket: "missing", Endpoint: cfg.Endpoint, AccessKey: cfg.AccessKey, SecretKey: cfg.SecretKey}); err == nil {
		t.Fatal("opened a bucket that does not exist")
	}
	b, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	small := []byte("a small segment")
	big := make([]byte, 40<<20) // a multipart upload: parts of 16 MiB
	rand.Read(big)
	for name, body := range map[string][]byte{"segments/1.seg": small, "segments/2.seg": big} {
		if err := b.Put(ctx, name, bytes.NewReader(body), int64(len(body))); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := b.List(ctx, "segments/")
	if err != nil || len(objs) != 2 || objs[0].Name != "segments/1.seg" || objs[0].Size != int64(len(small)) || objs[0].Modified.IsZero() || objs[1].Size != int64(len(big)) {
		t.Fatalf("List = %+v, %v", objs, err)
	}
	p := make([]byte, 1<<20)
	if err := b.ReadAt(ctx, "segments/2.seg", p, 20<<20-100); err != nil || !bytes.Equal(p, big[20<<20-100:21<<20-100]) {
		t.Fatalf("ranged read across parts: %v", err)
	}
	if err := b.ReadAt(ctx, "segments/9.seg", p[:10], 0); !errors.Is(err, ErrNotFound) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("reading a missing object: %v", err)
	}
	if err := b.Delete(ctx, "segments/1.seg"); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "segments/1.seg"); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
	if objs, _ := b.List(ctx, "segments/"); len(objs) != 1 {
		t.Fatalf("after Delete: %+v", objs)
	}
	if n, err := b.AbortIncomplete(ctx, "segments/", time.Now()); err != nil || n != 0 {
		t.Fatalf("AbortIncomplete = %d, %v", n, err)
	}
	if err := b.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	m.Stop()
	ctx2, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := b.Ping(ctx2); err == nil {
		t.Fatal("Ping succeeded with the server down")
	}
	if err := b.Put(ctx2, "segments/3.seg", bytes.NewReader(small), int64(len(small))); err == nil {
		t.Fatal("Put succeeded with the server down")
	}
}
