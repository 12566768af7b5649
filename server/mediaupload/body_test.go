package mediaupload

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzParseUpload checks the streaming parser on arbitrary bodies: it never
// panics, and whenever encoding/json accepts the body as an object with a
// string content that is valid base64, the parser yields the same bytes
// and expiration date.
func FuzzParseUpload(f *testing.F) {
	for _, s := range []string{
		`{"content":"aGVsbG8=","expirationDate":"2026-01-01"}`,
		`{"expirationDate":null,"content":"aGVs\/bG8=","x":[1,{"a":"b"},true]}`,
		`{"content":12}`, `{}`, `{"content":"a\nb"}`, `{"content":"aGVsbG8="} x`, `[`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []byte
		res, err := parseUpload(bytes.NewReader(body), func(r io.Reader) error {
			var err error
			got, err = io.ReadAll(io.LimitReader(r, 1<<20))
			return err
		})
		// The oracle: encoding/json, with keys matched exactly (as the
		// documented API does; encoding/json's structs would fold case).
		var want struct{ Content, ExpirationDate *string }
		var probe map[string]json.RawMessage
		if json.Unmarshal(body, &probe) != nil || json.Unmarshal(probe["content"], &want.Content) != nil || want.Content == nil {
			return // not an object with a string content: nothing to compare
		}
		if raw, ok := probe["expirationDate"]; ok && json.Unmarshal(raw, &want.ExpirationDate) != nil {
			return // a non-string date: a validation reason, checked elsewhere
		}
		if bytes.Count(body, []byte(`"content"`)) > 1 || strings.ContainsAny(*want.Content, "\n\r") {
			return // duplicate keys and line breaks: cases the parser rejects or skips by design
		}
		dec, derr := base64.StdEncoding.DecodeString(*want.Content)
		if derr != nil {
			if err == nil && res.contentErr == nil && !errors.Is(err, errSyntax) {
				t.Fatalf("accepted invalid base64 %q as %q", *want.Content, got)
			}
			return
		}
		if err != nil || res.contentErr != nil {
			if strings.Contains(string(body), `\u`) || strings.Contains(string(body), `\"`) {
				return // escapes other than \/ in content are refused by design
			}
			t.Fatalf("parser refused %q: %v / %v", body, err, res.contentErr)
		}
		if !bytes.Equal(got, dec) {
			t.Fatalf("content %q, want %q", got, dec)
		}
		if (want.ExpirationDate == nil) != (res.expirationDate == nil) ||
			want.ExpirationDate != nil && *want.ExpirationDate != *res.expirationDate {
			t.Fatalf("expirationDate %v, want %v", res.expirationDate, want.ExpirationDate)
		}
	})
}
