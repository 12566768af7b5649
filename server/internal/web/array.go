package web

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
)

// Array writes a JSON array response one element at a time, so that a
// listing of any length is served in bounded memory. Nothing is written
// until the first element (or Close): an error before it can still be
// answered with a status of its own. After it, the status line is gone,
// and a handler that fails must Abort, so the client sees a cut-off
// response rather than a short listing that looks whole.
//
//	arr := web.NewArray(w, http.StatusOK)
//	for rec, err := range records {
//		if err != nil {
//			if arr.Started() {
//				arr.Abort()
//			}
//			return err
//		}
//		if err := arr.Add(rec.Name); err != nil {
//			return nil // the client went away
//		}
//	}
//	arr.Close()
type Array struct {
	w       http.ResponseWriter
	status  int
	bw      *bufio.Writer
	started bool
	err     error
	// enc encodes each element into buf, reusing its buffers (Marshal
	// would allocate a copy of each).
	enc *json.Encoder
	buf bytes.Buffer
}

// NewArray returns an Array that answers status.
func NewArray(w http.ResponseWriter, status int) *Array {
	return &Array{w: w, status: status}
}

// Started reports whether the response has begun.
func (a *Array) Started() bool { return a.started }

func (a *Array) start() {
	if a.started {
		return
	}
	a.started = true
	a.w.Header().Set("Content-Type", "application/json")
	a.w.Header().Set("X-Content-Type-Options", "nosniff")
	a.w.WriteHeader(a.status)
	a.bw = bufio.NewWriterSize(a.w, 32<<10)
	a.bw.WriteByte('[')
}

// Add appends v to the array. An error is the client's: it is gone, and
// the handler can stop.
func (a *Array) Add(v any) error {
	if a.err != nil {
		return a.err
	}
	if a.enc == nil {
		a.enc = json.NewEncoder(&a.buf)
	}
	a.buf.Reset()
	if err := a.enc.Encode(v); err != nil {
		// A value of ours that does not encode is a bug, not a reason
		// to send a broken array.
		a.Abort()
	}
	b := bytes.TrimSuffix(a.buf.Bytes(), []byte{'\n'})
	first := !a.started
	a.start()
	if !first {
		a.bw.WriteByte(',')
	}
	_, a.err = a.bw.Write(b)
	return a.err
}

// Close ends the array (an empty one if nothing was added) and flushes it.
func (a *Array) Close() error {
	a.start()
	if a.err != nil {
		return a.err
	}
	a.bw.WriteString("]\n")
	a.err = a.bw.Flush()
	return a.err
}

// Abort cuts the response off: the server closes the connection (or
// resets the stream) without ending the response, so a client cannot
// take what it got for the whole array.
func (a *Array) Abort() { panic(http.ErrAbortHandler) }
