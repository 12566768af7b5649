package web_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cairnstore/cairn/server/internal/web"
)

// TestArray: an Array is a whole JSON array when closed (empty when
// nothing was added), its status can still be chosen until the first
// element, and one aborted after it has begun reaches the client cut off,
// never as a shorter array that looks whole.
func TestArray(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arr := web.NewArray(w, http.StatusOK)
		n := 0
		switch r.URL.Path {
		case "/none":
		case "/many":
			n = 50_000
		case "/fail-first":
			if arr.Started() {
				t.Error("Started before anything was added")
			}
			http.Error(w, "refused", http.StatusTeapot)
			return
		case "/fail-later":
			for i := range 50_000 {
				arr.Add(i)
			}
			if !arr.Started() {
				t.Error("not Started after elements were added")
			}
			arr.Abort()
		}
		for i := range n {
			if err := arr.Add(map[string]int{"i": i}); err != nil {
				return
			}
		}
		arr.Close()
	}))
	defer srv.Close()
	get := func(path string) (*http.Response, []byte, error) {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			return nil, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res, b, err
	}

	res, b, err := get("/none")
	if err != nil || res.StatusCode != 200 || string(b) != "[]\n" || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("empty: %v %q %v", res, b, err)
	}
	_, b, err = get("/many")
	var got []struct{ I int }
	if err != nil || json.Unmarshal(b, &got) != nil || len(got) != 50_000 || got[49_999].I != 49_999 {
		t.Fatalf("50,000 elements: %d decoded, %v", len(got), err)
	}
	if res, _, err = get("/fail-first"); err != nil || res.StatusCode != http.StatusTeapot {
		t.Fatalf("an error before the first element: %v, %v", res, err)
	}
	if _, b, err = get("/fail-later"); !errors.Is(err, io.ErrUnexpectedEOF) {
		var v []int
		t.Fatalf("an abort after the array began: err %v, and %d bytes that decode: %v", err, len(b), json.Unmarshal(b, &v) == nil)
	}
}
