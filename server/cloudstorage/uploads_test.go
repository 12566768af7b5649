package cloudstorage_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/server"
)

// TestResumableUploads: a tus upload that ends at a media path is, once
// its bytes are in, the media a POST of them makes (the same answer);
// WRITE on the bucket is needed to start one, and another user's token
// finds nothing.
func TestResumableUploads(t *testing.T) {
	v := newEnv(t, server.Config{})
	content := bytes.Repeat([]byte("GIF89a resumable "), 80_000)
	tus := []string{"Tus-Resumable", "1.0.0"}
	create := func(tok, path string, size int) resp {
		return v.do("POST", "/uploads/protected/277/"+path, tok, nil, append(tus, "Upload-Length", fmt.Sprint(size))...)
	}
	v.wantError(create(v.token("reader"), "a.gif", 10), 403, "forbidden", "an upload by a reader")
	v.wantError(create(v.token("other"), "a.gif", 10), 403, "forbidden", "an upload to another's bucket")
	v.wantError(create("", "a.gif", 10), 401, "unauthorized", "an upload without a token")

	r := create(v.token("writer"), "clips/a.gif", len(content))
	v.want(r, 201, "create")
	up := strings.TrimPrefix(r.h.Get("Location"), v.url)
	if !strings.HasPrefix(up, "/uploads/") {
		t.Fatalf("Location %q", r.h.Get("Location"))
	}
	patch := func(tok string, off int, b []byte) resp {
		return v.do("PATCH", up, tok, b, append(tus, "Upload-Offset", fmt.Sprint(off), "Content-Type", "application/offset+octet-stream")...)
	}
	v.want(patch(v.token("writer"), 0, content[:500_000]), 204, "the first half")
	v.wantError(patch(v.token("other"), 500_000, content[500_000:]), 403, "forbidden", "another user's PATCH")
	v.wantError(v.do("GET", up, v.token("writer"), nil), 409, "upload_incomplete", "the result before the end")
	h := v.do("HEAD", up, v.token("writer"), nil, tus...)
	if h.code != 200 || h.h.Get("Upload-Offset") != "500000" {
		t.Fatalf("HEAD: %s %v", h, h.h)
	}
	done := patch(v.token("writer"), 500_000, content[500_000:])
	v.want(done, 200, "the rest")
	var m struct {
		Path, ContentType, ETag string
		Size                    int64
	}
	if err := json.Unmarshal(done.body, &m); err != nil || m.Path != "protected/277/clips/a.gif" || m.ContentType != "image/gif" || m.Size != int64(len(content)) {
		t.Fatalf("the finished upload's answer: %s", done)
	}
	if done.h.Get("Location") != "/protected/277/clips/a.gif" || done.h.Get("ETag") != m.ETag {
		t.Fatalf("Location %q, ETag %q", done.h.Get("Location"), done.h.Get("ETag"))
	}
	got := v.do("GET", "/protected/277/clips/a.gif", v.token("reader"), nil)
	if got.code != 200 || !bytes.Equal(got.body, content) {
		t.Fatalf("the media: %d, %d bytes", got.code, len(got.body))
	}
	if again := v.do("GET", up, v.token("writer"), nil); again.code != 200 || !bytes.Equal(again.body, done.body) {
		t.Fatalf("GET of the finished upload: %s", again)
	}
	gone := create(v.token("writer"), "b.gif", 10)
	v.want(gone, 201, "create")
	gp := strings.TrimPrefix(gone.h.Get("Location"), v.url)
	v.want(v.do("DELETE", gp, v.token("writer"), nil, tus...), 204, "terminate")
	v.wantError(v.do("GET", gp, v.token("writer"), nil), 404, "not_found", "a terminated upload")
}

// TestResumableConcat: parallel partial uploads of one user, joined by
// a final one into the media at its path; another user's partial upload
// cannot be joined.
func TestResumableConcat(t *testing.T) {
	v := newEnv(t, server.Config{})
	tus := []string{"Tus-Resumable", "1.0.0"}
	parts := [][]byte{bytes.Repeat([]byte("first "), 100_000), bytes.Repeat([]byte("second "), 100_000)}
	var urls []string
	for _, p := range parts {
		r := v.do("POST", "/uploads/protected/277/joined.txt", v.token("writer"), nil, append(tus, "Upload-Length", fmt.Sprint(len(p)), "Upload-Concat", "partial")...)
		v.want(r, 201, "a partial upload")
		u := strings.TrimPrefix(r.h.Get("Location"), v.url)
		v.want(v.do("PATCH", u, v.token("writer"), p, append(tus, "Upload-Offset", "0", "Content-Type", "application/offset+octet-stream")...), 204, "its bytes")
		urls = append(urls, u)
	}
	other := v.do("POST", "/uploads/protected/300/x.txt", v.token("other"), nil, append(tus, "Upload-Length", "3", "Upload-Concat", "partial")...)
	v.want(other, 201, "another user's partial upload")
	theirs := strings.TrimPrefix(other.h.Get("Location"), v.url)
	v.want(v.do("PATCH", theirs, v.token("other"), []byte("abc"), append(tus, "Upload-Offset", "0", "Content-Type", "application/offset+octet-stream")...), 204, "its bytes")
	if r := v.do("POST", "/uploads/protected/277/stolen.txt", v.token("writer"), nil, append(tus, "Upload-Concat", "final;"+urls[0]+" "+theirs)...); r.code != 404 {
		t.Fatalf("joining another user's partial upload: %s", r)
	}
	// Unfinished, theirs is as much not there as none is: the answer
	// tells nothing of it.
	unfinished := v.do("POST", "/uploads/protected/300/y.txt", v.token("other"), nil, append(tus, "Upload-Length", "3", "Upload-Concat", "partial")...)
	v.want(unfinished, 201, "another user's partial upload, no bytes sent")
	none := v.do("POST", "/uploads/protected/277/stolen.txt", v.token("writer"), nil, append(tus, "Upload-Concat", "final;"+urls[0]+" /uploads/"+strings.Repeat("0", 32))...)
	stolen := v.do("POST", "/uploads/protected/277/stolen.txt", v.token("writer"), nil,
		append(tus, "Upload-Concat", "final;"+urls[0]+" "+strings.TrimPrefix(unfinished.h.Get("Location"), v.url))...)
	if none.code != 404 || stolen.code != none.code || !bytes.Equal(stolen.body, none.body) {
		t.Fatalf("joining another user's unfinished partial upload: %s; joining none: %s", stolen, none)
	}
	final := v.do("POST", "/uploads/protected/277/joined.txt", v.token("writer"), nil, append(tus, "Upload-Concat", "final;"+urls[0]+" "+urls[1])...)
	if final.code != 200 && final.code != 201 {
		t.Fatalf("the final upload: %s", final)
	}
	got := v.do("GET", "/protected/277/joined.txt", v.token("writer"), nil)
	if got.code != 200 || !bytes.Equal(got.body, append(append([]byte(nil), parts[0]...), parts[1]...)) {
		t.Fatalf("the joined media: %d, %d bytes", got.code, len(got.body))
	}
}
