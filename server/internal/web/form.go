package web

import (
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/cairnstore/cairn/engine"
)

// ErrForm: a multipart/form-data upload that cannot be read as one. The
// error is a *FormError, whose reason a client may read.
var ErrForm = errors.New("bad multipart body")

// FormError is ErrForm and why.
type FormError struct{ Reason string }

func (e *FormError) Error() string        { return ErrForm.Error() + ": " + e.Reason }
func (e *FormError) Is(target error) bool { return target == ErrForm }

// FormFile is the part named file of an upload, streamed into the store.
type FormFile struct {
	*engine.Upload
	// Name is the part's file name (as Form.Name made it); ContentType is
	// the type to store: the part's declared one, or the one detected.
	Name, ContentType string
}

// Form says how ReadForm reads a multipart/form-data upload.
type Form struct {
	// Limit bounds the file.
	Limit int64
	// Name, if set, checks the file part's name (and may rewrite it)
	// before a byte of the file is read.
	Name func(string) (string, error)
	// Field, if set, gets the parts named in Fields, each read whole (at
	// most DefaultMaxBody). Other parts are skipped, up to 1 MiB each.
	Fields []string
	Field  func(name string, value []byte) error
	// Slot, if set, is taken while the file streams (an upload slot).
	Slot func() (release func(), err error)
}

// ReadForm streams the part named file of r's multipart/form-data body
// into e. The caller closes the file's Upload.
func ReadForm(r *http.Request, e *engine.Engine, f Form) (*FormFile, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/form-data" {
		return nil, &FormError{"the body must be multipart/form-data with a part named file"}
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, &FormError{err.Error()}
	}
	var file *FormFile
	// fail gives up: errors of the callbacks are theirs, and a body over
	// its limit, cut off or stalled keeps its own status; anything else
	// the multipart reader says is a body that is not multipart.
	fail := func(err error, read bool) (*FormFile, error) {
		if file != nil {
			file.Close()
		}
		if read && Status(err) == http.StatusInternalServerError {
			err = &FormError{err.Error()}
		}
		return nil, err
	}
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err, true)
		}
		switch name := p.FormName(); {
		case name == "file":
			if file != nil {
				return fail(&FormError{"more than one part named file"}, false)
			}
			declared, name := p.Header.Get("Content-Type"), p.FileName()
			if len(declared) > 255 {
				return fail(&FormError{"the file part's type is longer than 255 bytes"}, false)
			}
			if f.Name != nil {
				if name, err = f.Name(name); err != nil {
					return fail(err, false)
				}
			}
			release := func() {}
			if f.Slot != nil {
				if release, err = f.Slot(); err != nil {
					return fail(err, false)
				}
			}
			file, err = stream(r, e, f.Limit, name, declared, p)
			release()
			if err != nil {
				return fail(err, true)
			}
		case f.Field != nil && contains(f.Fields, name):
			raw, err := io.ReadAll(io.LimitReader(p, DefaultMaxBody+1))
			if err != nil {
				return fail(err, true)
			}
			if len(raw) > DefaultMaxBody {
				return fail(&FormError{"the part " + name + " is too large"}, false)
			}
			if err := f.Field(name, raw); err != nil {
				return fail(err, false)
			}
		default:
			if _, err := io.Copy(io.Discard, io.LimitReader(p, 1<<20)); err != nil {
				return fail(err, true)
			}
		}
	}
	if file == nil {
		return nil, &FormError{"no part named file"}
	}
	return file, nil
}

// stream stores the file part's bytes.
func stream(r *http.Request, e *engine.Engine, limit int64, name, declared string, body io.Reader) (*FormFile, error) {
	ctype, rd, err := Content(declared, LimitReader(body, limit))
	if err != nil {
		return nil, err
	}
	up, err := e.Upload(r.Context(), rd)
	if err != nil {
		return nil, err
	}
	return &FormFile{Upload: up, Name: name, ContentType: ctype}, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
