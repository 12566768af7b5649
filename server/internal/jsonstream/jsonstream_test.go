package jsonstream

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

func parse(body []byte) (big []byte, small map[string]json.RawMessage, err error) {
	small = map[string]json.RawMessage{}
	err = Parse(bytes.NewReader(body), "content", func(r io.Reader) error {
		var err error
		big, err = io.ReadAll(io.LimitReader(r, 1<<20))
		return err
	}, func(k string, raw json.RawMessage) error {
		small[k] = append(json.RawMessage(nil), raw...)
		return nil
	})
	return big, small, err
}

func TestParse(t *testing.T) {
	big, small, err := parse([]byte(` { "a" : 1, "content":"aGVsbG8\/\naGk=", "b": {"x": [true, null, "s\"q"]}, "c":"\u00e9" } `))
	if err != nil || string(big) != "hello?hi" {
		t.Fatalf("parse: %q, %v", big, err)
	}
	if string(small["a"]) != "1" || string(small["b"]) != `{"x": [true, null, "s\"q"]}` || string(small["c"]) != `"\u00e9"` {
		t.Fatalf("small values: %q", small)
	}
	for _, tc := range []struct {
		body string
		err  error
	}{
		{`{"content":12}`, ErrNotString},
		{`{"content":"!!!!"}`, ErrBase64},
		{`{"content":"aGVsbG8"}`, ErrBase64},
		{`{"content":"a\tb"}`, ErrBase64},
		{`{"content":"aGVsbG8=","content":"aGVsbG8="}`, ErrSyntax},
		{`{"content":"aGVsbG8="} x`, ErrSyntax},
		{`{"content":"aGVsbG8=`, ErrSyntax},
		{`[]`, ErrSyntax},
		{`{"a":tru}`, ErrSyntax},
		{`{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, ErrSyntax},
		{`{"a":"` + strings.Repeat("x", MaxSmall) + `"}`, ErrSyntax},
	} {
		if _, _, err := parse([]byte(tc.body)); !errors.Is(err, tc.err) {
			t.Errorf("%.40s: %v, want %v", tc.body, err, tc.err)
		}
	}
}

// FuzzParse checks the streaming parser on arbitrary bodies against
// encoding/json: no panics; whenever encoding/json reads the body as an
// object with a base64 string "content", Parse yields the same bytes and
// the same other values.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"content":"aGVsbG8=","expirationDate":"2026-01-01"}`,
		`{"expirationDate":null,"content":"aGVs\/bG8=","x":[1,{"a":"b"},true]}`,
		`{"content":12}`, `{}`, `{"content":"a\nb"}`, `{"content":"aGVsbG8="} x`, `[`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, small, err := parse(body)
		var probe map[string]json.RawMessage
		var content *string
		if json.Unmarshal(body, &probe) != nil || json.Unmarshal(probe["content"], &content) != nil || content == nil {
			return // not an object with a string content: nothing to compare
		}
		if bytes.Count(body, []byte(`"content"`)) > 1 || strings.ContainsAny(*content, "\n\r") {
			return // duplicate keys, line breaks: refused or skipped by design
		}
		want, derr := base64.StdEncoding.DecodeString(*content)
		if derr != nil {
			if err == nil {
				t.Fatalf("accepted invalid base64 %q as %q", *content, got)
			}
			return
		}
		if err != nil {
			if strings.Contains(string(body), `\u`) || strings.Contains(string(body), `\"`) {
				return // escapes other than \/ in content are refused by design
			}
			t.Fatalf("Parse refused %q: %v", body, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("content %q, want %q", got, want)
		}
		if !utf8.Valid(body) {
			return // encoding/json rewrites invalid UTF-8 in keys; values were compared above
		}
		for k, raw := range probe {
			if k == "content" {
				continue
			}
			var a, b any
			if json.Unmarshal(raw, &a) != nil || json.Unmarshal(small[k], &b) != nil {
				t.Fatalf("field %s: raw %q vs %q", k, raw, small[k])
			}
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if !bytes.Equal(ja, jb) {
				t.Fatalf("field %s: %s, want %s", k, jb, ja)
			}
		}
	})
}

// TestLongContent decodes contents around the sizes where the reader's
// and the decoder's buffers end, with the escapes encoders write (`\/`
// for '/', `\n` line breaks) anywhere, as base64.StdEncoding does the
// whole text; and it refuses what DecodeString refuses: data after
// padding, wherever the padding falls, and a last quantum cut short.
func TestLongContent(t *testing.T) {
	rnd := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*7919 + i>>3)
		}
		return b
	}
	for _, n := range []int{1, 2, 3, 4095, 24575, 24576, 24577, 32767, 32768, 32769, 98303, 98304, 300001} {
		want := rnd(n)
		enc := base64.StdEncoding.EncodeToString(want)
		for _, breaks := range []int{0, 76, 4093} {
			var b strings.Builder
			for i := 0; i < len(enc); i++ {
				if breaks > 0 && i > 0 && i%breaks == 0 {
					b.WriteString(`\n`)
				}
				if enc[i] == '/' {
					b.WriteString(`\/`)
				} else {
					b.WriteByte(enc[i])
				}
			}
			got, _, err := parse([]byte(`{"content":"` + b.String() + `"}`))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%d bytes, a break every %d: %d bytes back, %v", n, breaks, len(got), err)
			}
		}
	}
	for _, body := range []string{
		strings.Repeat("aGk=", 8192) + "aGk=",       // padding on a 32 KiB boundary, more after
		strings.Repeat("aGk=", 3) + "aGVsbG8=",      // padding in the middle
		strings.Repeat("QUJD", 8192) + "QUI",        // a last quantum cut short past a boundary
		strings.Repeat("QUJD", 8191) + "QUI=" + "Q", // one byte after padding
	} {
		if _, _, err := parse([]byte(`{"content":"` + body + `"}`)); !errors.Is(err, ErrBase64) {
			t.Errorf("%d bytes of bad base64 ending %q: %v, want ErrBase64", len(body), body[len(body)-8:], err)
		}
	}
}

// TestDecoder: however its input is cut into reads (one byte at a time
// here, so every quantum is decoded alone), the decoder accepts exactly
// what base64.StdEncoding.DecodeString accepts, with the same bytes.
func TestDecoder(t *testing.T) {
	for _, in := range []string{"", "aGk=", "aGVsbG8=", "QUJDRA==", "QUJD", "aGk=aGk=", "aGk=Q", "QUI", "QU==QU==", "!!!!", "QUJDRA=="} {
		want, werr := base64.StdEncoding.DecodeString(in)
		got, err := io.ReadAll(newDecoder(iotest.OneByteReader(strings.NewReader(in))))
		if (err != nil) != (werr != nil) || err == nil && !bytes.Equal(got, want) {
			t.Errorf("%q: %q, %v; DecodeString: %q, %v", in, got, err, want, werr)
		}
	}
}

// TestPlainRun: the word-at-a-time scan stops where the byte-by-byte one
// does, for every special byte at every place, among any other bytes.
func TestPlainRun(t *testing.T) {
	slow := func(b []byte) int {
		i := 0
		for i < len(b) && !special[b[i]] {
			i++
		}
		return i
	}
	r := rand.New(rand.NewPCG(1, 2))
	for c := range 256 {
		for n := range 24 {
			b := make([]byte, 24)
			for i := range b {
				b[i] = "ABCxyz019+/=\x7f\x80\xc3\xff"[r.IntN(16)]
			}
			b[n] = byte(c)
			if got, want := plainRun(b), slow(b); got != want {
				t.Fatalf("byte %#x at %d of %q: %d, want %d", c, n, b, got, want)
			}
		}
	}
}
