package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnstore/cairn/engine/enginetest"
	"github.com/cairnstore/cairn/server"
	"github.com/cairnstore/cairn/server/cloudstorage"
	"github.com/cairnstore/cairn/server/mediaservice"
	"github.com/cairnstore/cairn/server/mediaupload"
	"github.com/cairnstore/cairn/server/oceanmedia"
	"github.com/cairnstore/cairn/server/storageapi"
)

// api is one of the five APIs as a benchmark drives it: how to upload a
// body (returning the URL to download it from) and how to download.
type api struct {
	name   string
	upload func(b *testing.B, h *apiEnv, n uint64, body []byte) string
	// auth is the Authorization-like header downloads need, if any.
	get func(h *apiEnv) (string, string)
}

type apiEnv struct {
	url    string
	client *http.Client
	cred   map[string]string
}

func newAPIEnv(b *testing.B) *apiEnv {
	b.Helper()
	e := openEngine(b)
	ts := httptest.NewServer(server.New(server.Config{
		Engine: e, Logger: enginetest.Logger(b),
		StorageAPI:   storageapi.Config{PublicRate: 1e9, MaxPublicFile: 1 << 30},
		MediaService: mediaservice.Config{MaxFile: 1 << 30},
	}))
	b.Cleanup(ts.Close)
	ctx := context.Background()
	h := &apiEnv{url: ts.URL, cred: map[string]string{}}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	h.client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	users := cloudstorage.NewUsers(e)
	users.Add(ctx, "bench", "")
	users.Grant(ctx, "bench", "1", cloudstorage.Write)
	tok, _ := users.Token("bench", time.Now(), time.Hour)
	h.cred["cloudstorage"] = "Bearer " + tok

	secret, err := mediaservice.NewClients(e).Add(ctx, "bench", "acme", []string{mediaservice.ScopeManage, mediaservice.ScopeRead})
	if err != nil {
		b.Fatal(err)
	}
	var ms struct {
		AccessToken string `json:"access_token"`
	}
	h.post(b, "/oauth/token", "application/x-www-form-urlencoded", strings.NewReader(url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"bench"}, "client_secret": {secret}}.Encode()), "", 200, &ms)
	h.cred["mediaservice"] = "Bearer " + ms.AccessToken

	if _, _, err := oceanmedia.NewUsers(e).Add(ctx, "bench", "bench-password", oceanmedia.ReadWrite); err != nil {
		b.Fatal(err)
	}
	req, _ := http.NewRequest("POST", h.url+"/v1/authentications", nil)
	req.Header.Set("X-API-Authenticate", base64.StdEncoding.EncodeToString([]byte("bench:bench-password")))
	var om struct {
		Authentication struct{ Token string }
	}
	h.send(b, req, 201, &om)
	h.cred["oceanmedia"] = om.Authentication.Token

	if _, err := mediaupload.NewAccounts(e).Set(ctx, "bench", "bench-password-1", true); err != nil {
		b.Fatal(err)
	}
	return h
}

func (h *apiEnv) post(b *testing.B, path, ctype string, body io.Reader, auth string, want int, out any) http.Header {
	req, _ := http.NewRequest("POST", h.url+path, body)
	req.Header.Set("Content-Type", ctype)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return h.send(b, req, want, out)
}

func (h *apiEnv) send(b *testing.B, req *http.Request, want int, out any) http.Header {
	res, err := h.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		b.Fatalf("%s %s: %d %.200s, want %d", req.Method, req.URL.Path, res.StatusCode, body, want)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			b.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
		}
	}
	return res.Header
}

func form(field, name string, body []byte, extra ...string) (io.Reader, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(extra); i += 2 {
		mw.WriteField(extra[i], extra[i+1])
	}
	fw, _ := mw.CreateFormFile(field, name)
	fw.Write(body)
	mw.Close()
	return &buf, mw.FormDataContentType()
}

var apis = []api{
	{name: "cloudstorage",
		upload: func(b *testing.B, h *apiEnv, n uint64, body []byte) string {
			path := fmt.Sprintf("/public/1/f%d", n)
			h.post(b, path, "application/octet-stream", bytes.NewReader(body), h.cred["cloudstorage"], 201, nil)
			return path
		}},
	{name: "mediaservice",
		upload: func(b *testing.B, h *apiEnv, n uint64, body []byte) string {
			rd, ct := form("file", "f.bin", body, "body", `{"type":"BLOB","access":"PRIVATE"}`)
			var out struct{ ID string }
			h.post(b, "/media/acme/assets", ct, rd, h.cred["mediaservice"], 201, &out)
			return "/media/acme/assets/" + out.ID + "/download"
		},
		get: func(h *apiEnv) (string, string) { return "Authorization", h.cred["mediaservice"] }},
	{name: "storageapi",
		upload: func(b *testing.B, h *apiEnv, n uint64, body []byte) string {
			rd, ct := form("file", "f.bin", body)
			var out struct{ FileID string }
			h.post(b, "/storage/public/files", ct, rd, "", 201, &out)
			return "/storage/public/files/" + out.FileID
		}},
	{name: "oceanmedia",
		upload: func(b *testing.B, h *apiEnv, n uint64, body []byte) string {
			// base64 needs no JSON escapes: the payload is quoted as is
			// (fmt's %q would spend the client's CPU scanning it).
			js := fmt.Sprintf(`{"app":"bench","context":"c","name":"m%d","locale":"en-GB","content_type":"application/octet-stream","file_name":"f.bin","payload":"`, n) +
				base64.StdEncoding.EncodeToString(body) + `"}`
			req, _ := http.NewRequest("POST", h.url+"/v1/media", strings.NewReader(js))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-API-Token", h.cred["oceanmedia"])
			var out struct {
				Medium struct {
					Links struct{ URL struct{ Href string } } `json:"_links"`
				}
			}
			h.send(b, req, 201, &out)
			return strings.TrimPrefix(out.Medium.Links.URL.Href, h.url)
		}},
	{name: "mediaupload",
		upload: func(b *testing.B, h *apiEnv, n uint64, body []byte) string {
			js := `{"content":"` + base64.StdEncoding.EncodeToString(body) + `"}`
			req, _ := http.NewRequest("POST", h.url+"/cms/v2/content", strings.NewReader(js))
			req.Header.Set("Content-Type", "application/json")
			req.SetBasicAuth("bench", "bench-password-1")
			hdr := h.send(b, req, 201, nil)
			return strings.TrimPrefix(hdr.Get("Location"), h.url)
		}},
}

var apiSizes = []struct {
	name string
	n    int
}{{"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

// BenchmarkAPIUpload uploads new content end to end through each API
// over loopback, in the API's own request shape (raw body, multipart,
// base64 in JSON), one client.
func BenchmarkAPIUpload(b *testing.B) {
	for _, a := range apis {
		for _, s := range apiSizes {
			b.Run(fmt.Sprintf("api=%s/size=%s/clients=1", a.name, s.name), func(b *testing.B) {
				h := newAPIEnv(b)
				r := rand.NewChaCha8([32]byte{1})
				buf := make([]byte, s.n)
				b.SetBytes(int64(s.n))
				b.ResetTimer()
				for i := range b.N {
					content(r, "random", buf)
					a.upload(b, h, uint64(i), buf)
				}
			})
		}
	}
}

// BenchmarkAPIDownload downloads through each API's download URL (all
// through the shared download path).
func BenchmarkAPIDownload(b *testing.B) {
	for _, a := range apis {
		for _, s := range apiSizes {
			b.Run(fmt.Sprintf("api=%s/size=%s/clients=1", a.name, s.name), func(b *testing.B) {
				h := newAPIEnv(b)
				r := rand.NewChaCha8([32]byte{2})
				buf := make([]byte, s.n)
				var paths []string
				for i := range 32 {
					content(r, "random", buf)
					paths = append(paths, a.upload(b, h, uint64(i), buf))
				}
				var hdr, val string
				if a.get != nil {
					hdr, val = a.get(h)
				}
				var next atomic.Uint64
				b.SetBytes(int64(s.n))
				b.ResetTimer()
				for range b.N {
					req, _ := http.NewRequest("GET", h.url+paths[next.Add(1)%uint64(len(paths))], nil)
					if hdr != "" {
						req.Header.Set(hdr, val)
					}
					res, err := h.client.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					n, _ := io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 || n != int64(s.n) {
						b.Fatalf("GET %s: %d, %d bytes", req.URL.Path, res.StatusCode, n)
					}
				}
			})
		}
	}
}
