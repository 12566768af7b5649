package web_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"testing"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/internal/blob"
	"github.com/cairnstore/cairn/server/internal/web"
)

// part is one part of a test form: a name, an optional file name and
// type, and its bytes.
type part struct{ name, file, ctype, body string }

func form(parts ...part) (*http.Request, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := `form-data; name="` + p.name + `"`
		if p.file != "" {
			cd += `; filename="` + p.file + `"`
		}
		h.Set("Content-Disposition", cd)
		if p.ctype != "" {
			h.Set("Content-Type", p.ctype)
		}
		w, _ := mw.CreatePart(h)
		io.WriteString(w, p.body)
	}
	mw.Close()
	r := httptest.NewRequest("POST", "/", &b)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	return r, b.String()
}

// TestReadForm: the file part is streamed into the store (its declared
// type kept, or one detected), the fields asked for are handed over, the
// others skipped; a body that is not a form, a second file, no file, or a
// file over the limit is refused, and what a callback refuses, or a body
// cut off, keeps its own error; the upload slot is held only while the file streams.
func TestReadForm(t *testing.T) {
	e := enginetest.Open(t, engine.Options{})
	errName := errors.New("bad name")
	held := 0
	read := func(r *http.Request) (*web.FormFile, map[string]string, error) {
		fields := map[string]string{}
		file, err := web.ReadForm(r, e, web.Form{
			Limit: 100,
			Name: func(n string) (string, error) {
				if n == "bad" {
					return "", errName
				}
				return strings.ToUpper(n), nil
			},
			Fields: []string{"body"},
			Field:  func(name string, v []byte) error { fields[name] = string(v); return nil },
			Slot:   func() (func(), error) { held++; return func() { held-- }, nil },
		})
		return file, fields, err
	}
	r, _ := form(part{name: "other", body: "skipped"}, part{name: "file", file: "a.txt", body: "hello"}, part{name: "body", body: `{"x":1}`})
	file, fields, err := read(r)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if file.Name != "A.TXT" || file.ID() != blob.Sum([]byte("hello")) || file.ContentType != "text/plain; charset=utf-8" || fields["body"] != `{"x":1}` || len(fields) != 1 || held != 0 {
		t.Fatalf("read %q %q %v, fields %v, slots held %d", file.Name, file.ContentType, file.ID(), fields, held)
	}
	r, _ = form(part{name: "file", file: "b.png", ctype: "image/png", body: "not really"})
	if file, _, err := read(r); err != nil || file.ContentType != "image/png" {
		t.Fatalf("declared type: %v, %v", file, err)
	} else {
		file.Close()
	}
	for _, tc := range []struct {
		what string
		req  *http.Request
		want error
	}{
		{"two files", first(form(part{name: "file", file: "a", body: "1"}, part{name: "file", file: "b", body: "2"})), web.ErrForm},
		{"no file", first(form(part{name: "body", body: "{}"})), web.ErrForm},
		{"a file over the limit", first(form(part{name: "file", file: "a", body: strings.Repeat("x", 101)})), web.ErrTooLarge},
		{"a name refused", first(form(part{name: "file", file: "bad", body: "1"})), errName},
		{"a field too large", first(form(part{name: "body", body: strings.Repeat("x", web.DefaultMaxBody+1)}, part{name: "file", file: "a", body: "1"})), web.ErrForm},
		{"not a form", httptest.NewRequest("POST", "/", strings.NewReader("x")), web.ErrForm},
		{"a cut-off form", cut(form(part{name: "file", file: "a", body: "hello"})), io.ErrUnexpectedEOF},
	} {
		if file, _, err := read(tc.req); !errors.Is(err, tc.want) || file != nil {
			t.Errorf("%s: %v, %v; want %v", tc.what, file, err, tc.want)
		}
		if held != 0 {
			t.Errorf("%s: %d upload slots still held", tc.what, held)
		}
	}
	if st, _ := e.Stats(); st.Records != 0 {
		t.Errorf("%d records after reading forms", st.Records)
	}
}

func first(r *http.Request, _ string) *http.Request { return r }

// cut is a form whose body stops before its end.
func cut(r *http.Request, body string) *http.Request {
	c := httptest.NewRequest("POST", "/", strings.NewReader(body[:len(body)-20]))
	c.Header.Set("Content-Type", r.Header.Get("Content-Type"))
	return c
}

// FuzzReadForm: whatever the body, ReadForm returns a file or an error,
// never panics, and a file is exactly the bytes of the file part.
func FuzzReadForm(f *testing.F) {
	_, good := form(part{name: "body", body: `{"type":"BLOB"}`}, part{name: "file", file: "a.png", ctype: "image/png", body: "\x89PNG\r\n"})
	f.Add(good, "")
	_, two := form(part{name: "file", file: "a", body: "1"}, part{name: "file", file: "b", body: "2"})
	f.Add(two, "")
	f.Add("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\nabc\r\n--b--\r\n", "b")
	f.Add("--b\r\n\r\n--b--", "b")
	e := enginetest.Open(f, engine.Options{})
	f.Fuzz(func(t *testing.T, body, boundary string) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		if boundary == "" {
			if i := strings.Index(body, "\r\n"); i > 2 && strings.HasPrefix(body, "--") {
				boundary = body[2:i]
			}
		}
		r.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		file, err := web.ReadForm(r.WithContext(context.Background()), e, web.Form{Limit: 1 << 20, Fields: []string{"body"}, Field: func(string, []byte) error { return nil }})
		if err != nil {
			if file != nil {
				t.Fatal("a file and an error")
			}
			return
		}
		defer file.Close()
		// The file is the file part as the standard library reads it.
		mr := multipart.NewReader(strings.NewReader(body), boundary)
		for {
			p, err := mr.NextPart()
			if err != nil {
				t.Fatalf("ReadForm read a file the multipart reader does not find: %v", err)
			}
			if p.FormName() != "file" {
				continue
			}
			got, err := io.ReadAll(p)
			if err != nil || int64(len(got)) != file.Size() || blob.Sum(got) != file.ID() {
				t.Fatalf("the stored file is not the file part: %d of %d bytes, %v", file.Size(), len(got), err)
			}
			return
		}
	})
}
