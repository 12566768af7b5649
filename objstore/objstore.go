// Package objstore keeps a store's segments in an S3-compatible bucket,
// with minio-go, using only what every such service has: PutObject
// (multipart for large objects), ranged GetObject, RemoveObject,
// ListObjectsV2, BucketExists and the listing and aborting of incomplete
// multipart uploads. So AWS S3, MinIO, Garage, SeaweedFS, Ceph RGW and R2
// all serve.
//
// A Bucket is an engine.Objects: names are relative to the store's
// prefix in the bucket.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Config says where the bucket is and how to sign in.
type Config struct {
	// Bucket and Prefix come from the store URL s3://bucket/prefix.
	Bucket, Prefix string
	// Endpoint is host[:port]; Secure says https.
	Endpoint string
	Secure   bool
	// Region may be empty (the service's default, or found by minio-go).
	Region               string
	AccessKey, SecretKey string
	// PathStyle forces path-style requests (bucket in the path); otherwise
	// minio-go picks virtual-host style where the endpoint supports it.
	PathStyle bool
}

// ParseStore reads a store URL, s3://bucket[/prefix]. It reports ok=false
// for anything that is not an s3:// URL (a local folder, say).
func ParseStore(store string) (bucket, prefix string, ok bool, err error) {
	rest, isS3 := strings.CutPrefix(store, "s3://")
	if !isS3 {
		return "", "", false, nil
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", true, fmt.Errorf("objstore: %q names no bucket (s3://bucket/prefix)", store)
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return bucket, prefix, true, nil
}

// FromEnv makes the Config for a store URL as the AWS SDKs would: the
// endpoint from endpoint (a flag), else AWS_ENDPOINT_URL_S3, else
// AWS_ENDPOINT_URL, else AWS S3 itself; the region from AWS_REGION; the
// credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
// An endpoint URL's scheme says TLS or not (https when it has none);
// AWS_S3_FORCE_PATH_STYLE=true forces path-style requests.
func FromEnv(store, endpoint string, getenv func(string) string) (Config, error) {
	bucket, prefix, ok, err := ParseStore(store)
	if err != nil {
		return Config{}, err
	}
	if !ok {
		return Config{}, fmt.Errorf("objstore: %q is not an s3:// URL", store)
	}
	c := Config{Bucket: bucket, Prefix: prefix, Region: getenv("AWS_REGION"),
		AccessKey: getenv("AWS_ACCESS_KEY_ID"), SecretKey: getenv("AWS_SECRET_ACCESS_KEY"),
		PathStyle: getenv("AWS_S3_FORCE_PATH_STYLE") == "true"}
	for _, e := range []string{endpoint, getenv("AWS_ENDPOINT_URL_S3"), getenv("AWS_ENDPOINT_URL")} {
		if e != "" {
			endpoint = e
			break
		}
	}
	if endpoint == "" {
		endpoint = "https://s3.amazonaws.com"
		if c.Region != "" {
			endpoint = "https://s3." + c.Region + ".amazonaws.com"
		}
	}
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") {
		return Config{}, fmt.Errorf("objstore: endpoint %q is not http(s)://host[:port]", endpoint)
	}
	c.Endpoint, c.Secure = u.Host, u.Scheme == "https"
	if c.AccessKey == "" || c.SecretKey == "" {
		return Config{}, errors.New("objstore: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set")
	}
	return c, nil
}

// Bucket is a store's place in a bucket.
type Bucket struct {
	c              *minio.Client
	core           minio.Core
	bucket, prefix string
}

// ErrNotFound: no object of that name.
var ErrNotFound = errors.New("objstore: no such object")

// Open connects to the bucket, which must exist.
func Open(ctx context.Context, cfg Config) (*Bucket, error) {
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       cfg.Secure,
		Region:       cfg.Region,
		BucketLookup: lookup,
		Transport:    tr,
		// A few quick retries; an outage is reported to the client (503)
		// rather than waited out inside one request.
		MaxRetries: 3,
	})
	if err != nil {
		return nil, fmt.Errorf("objstore: %w", err)
	}
	b := &Bucket{c: c, core: minio.Core{Client: c}, bucket: cfg.Bucket, prefix: cfg.Prefix}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("objstore: bucket %s at %s: %w", cfg.Bucket, cfg.Endpoint, err)
	}
	if !ok {
		return nil, fmt.Errorf("objstore: bucket %s does not exist at %s (make it first)", cfg.Bucket, cfg.Endpoint)
	}
	return b, nil
}

// String names the bucket and prefix, as s3://bucket/prefix.
func (b *Bucket) String() string { return "s3://" + b.bucket + "/" + b.prefix }

// Put stores size bytes from r as name, replacing any object of that name
// (so a retried Put of the same bytes is harmless). Large objects go up
// as multipart uploads, parts in parallel when r is an io.ReaderAt.
func (b *Bucket) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	_, err := b.c.PutObject(ctx, b.bucket, b.prefix+name, r, size, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    16 << 20,
	})
	if err != nil {
		return fmt.Errorf("objstore: put %s: %w", name, err)
	}
	return nil
}

// Multipart is an object being put in parts, as they become ready (a
// segment growing while a large upload arrives): parts of at least 5 MiB
// but the last, in order, then Complete, or Abort.
type Multipart interface {
	PutPart(ctx context.Context, r io.Reader, size int64) error
	Complete(ctx context.Context) error
	Abort(ctx context.Context) error
}

type multipart struct {
	b        *Bucket
	name, id string
	parts    []minio.CompletePart
}

// StartMultipart begins putting name in parts.
func (b *Bucket) StartMultipart(ctx context.Context, name string) (Multipart, error) {
	id, err := b.core.NewMultipartUpload(ctx, b.bucket, b.prefix+name, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return nil, fmt.Errorf("objstore: start multipart put of %s: %w", name, err)
	}
	return &multipart{b: b, name: name, id: id}, nil
}

// PutPart puts the next part, size bytes from r.
func (m *multipart) PutPart(ctx context.Context, r io.Reader, size int64) error {
	n := len(m.parts) + 1
	p, err := m.b.core.PutObjectPart(ctx, m.b.bucket, m.b.prefix+m.name, m.id, n, r, size, minio.PutObjectPartOptions{})
	if err != nil {
		return fmt.Errorf("objstore: put part %d of %s: %w", n, m.name, err)
	}
	m.parts = append(m.parts, minio.CompletePart{PartNumber: n, ETag: p.ETag})
	return nil
}

// Complete makes the object of the parts put.
func (m *multipart) Complete(ctx context.Context) error {
	if _, err := m.b.core.CompleteMultipartUpload(ctx, m.b.bucket, m.b.prefix+m.name, m.id, m.parts, minio.PutObjectOptions{}); err != nil {
		return fmt.Errorf("objstore: complete multipart put of %s: %w", m.name, err)
	}
	return nil
}

// Abort drops the parts put.
func (m *multipart) Abort(ctx context.Context) error {
	if err := m.b.core.AbortMultipartUpload(ctx, m.b.bucket, m.b.prefix+m.name, m.id); err != nil {
		return fmt.Errorf("objstore: abort multipart put of %s: %w", m.name, err)
	}
	return nil
}

// ReadAt fills p from name at off with one ranged GET.
func (b *Bucket) ReadAt(ctx context.Context, name string, p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(off, off+int64(len(p))-1); err != nil {
		return fmt.Errorf("objstore: get %s: %w", name, err)
	}
	body, _, _, err := b.core.GetObject(ctx, b.bucket, b.prefix+name, opts)
	if err != nil {
		return b.wrap("get", name, err)
	}
	defer body.Close()
	if _, err := io.ReadFull(body, p); err != nil {
		return fmt.Errorf("objstore: get %s [%d, +%d): %w", name, off, len(p), err)
	}
	return nil
}

// Delete removes name; removing what is not there is no error.
func (b *Bucket) Delete(ctx context.Context, name string) error {
	if err := b.c.RemoveObject(ctx, b.bucket, b.prefix+name, minio.RemoveObjectOptions{}); err != nil {
		return b.wrap("delete", name, err)
	}
	return nil
}

// Object is a listed object: its name under the prefix, and size.
type Object struct {
	Name     string
	Size     int64
	Modified time.Time
}

// List returns the objects whose names start with prefix.
func (b *Bucket) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	for o := range b.c.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: b.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("objstore: list %s: %w", prefix, o.Err)
		}
		out = append(out, Object{Name: strings.TrimPrefix(o.Key, b.prefix), Size: o.Size, Modified: o.LastModified})
	}
	return out, nil
}

// Ping checks that the bucket answers.
func (b *Bucket) Ping(ctx context.Context) error {
	ok, err := b.c.BucketExists(ctx, b.bucket)
	if err == nil && !ok {
		err = errors.New("the bucket is gone")
	}
	if err != nil {
		return fmt.Errorf("objstore: %s: %w", b, err)
	}
	return nil
}

// AbortIncomplete aborts the multipart uploads under prefix begun before
// cutoff: a Put that died midway leaves parts the service keeps (and
// bills) until someone aborts them. It returns how many it aborted.
func (b *Bucket) AbortIncomplete(ctx context.Context, prefix string, cutoff time.Time) (int, error) {
	n := 0
	for u := range b.c.ListIncompleteUploads(ctx, b.bucket, b.prefix+prefix, true) {
		if u.Err != nil {
			return n, fmt.Errorf("objstore: list incomplete uploads: %w", u.Err)
		}
		if u.Initiated.After(cutoff) {
			continue
		}
		if err := b.core.AbortMultipartUpload(ctx, b.bucket, u.Key, u.UploadID); err != nil {
			return n, fmt.Errorf("objstore: abort upload of %s: %w", u.Key, err)
		}
		n++
	}
	return n, nil
}

func (b *Bucket) wrap(op, name string, err error) error {
	if resp := minio.ToErrorResponse(err); resp.Code == minio.NoSuchKey || resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket {
		return fmt.Errorf("objstore: %s %s: %w: %w", op, name, ErrNotFound, os.ErrNotExist)
	}
	return fmt.Errorf("objstore: %s %s: %w", op, name, err)
}
