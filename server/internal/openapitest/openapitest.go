// Package openapitest checks an API's tests against its OpenAPI document.
//
// A Checker is an http.RoundTripper that validates every request a test sends and every
// response it gets.
//
// The rules: a response must be one the document lists for its operation
// (status, headers, body); a request the document says is invalid must be
// refused (answered 4xx), since a server that accepts what its contract
// forbids is as wrong as one that refuses what it allows. Requests to
// paths outside the document (the public file links, say) pass unchecked;
// Routes checks that the document's operations are the mounted routes.
//
// A Checker is safe for concurrent use; it reports through t.Errorf.
package openapitest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	legacyrouter "github.com/getkin/kin-openapi/routers/legacy"
)

// maxChecked bounds the request bodies whose content is validated; a
// longer one (a large upload, streamed) is checked without its body.
const maxChecked = 8 << 20

// Checker validates traffic against one document.
type Checker struct {
	t      testing.TB
	router routers.Router
	next   http.RoundTripper
	// sent and checked count the requests, so that a checker whose
	// document matches none of them (a wrong server URL, say) fails
	// rather than passing everything unchecked.
	sent, checked atomic.Int64
}

// Load parses a document and checks that it is a valid OpenAPI 3 document.
func Load(t testing.TB, raw []byte) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatalf("loading the OpenAPI document: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("not a valid OpenAPI 3 document: %v", err)
	}
	return doc
}

// New fetches the document the server at base serves at path (the
// document under test is the one served, not a file) and returns a
// Checker of traffic to that server. catchAll names the path parameters
// that end a path and, as httprouter's *name, take the rest of it,
// slashes and all (OpenAPI has no such parameter: a generated client
// escapes the slashes as %2F, which the APIs take as slashes).
func New(t testing.TB, base, path string, catchAll ...string) *Checker {
	t.Helper()
	res, err := http.Get(base + path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", path, res.StatusCode, err)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	doc := Load(t, raw)
	doc.Servers = openapi3.Servers{{URL: base}}
	for _, name := range catchAll {
		for p, item := range doc.Paths.Map() {
			if rest, ok := strings.CutSuffix(p, "/{"+name+"}"); ok {
				doc.Paths.Delete(p)
				doc.Paths.Set(rest+"/{"+name+"*}", item)
			}
		}
	}
	router, err := legacyrouter.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	c := &Checker{t: t, router: router, next: http.DefaultTransport}
	t.Cleanup(func() {
		if c.sent.Load() > 0 && c.checked.Load() == 0 {
			t.Errorf("none of the %d requests sent matched an operation of the OpenAPI document: nothing was checked", c.sent.Load())
		}
	})
	return c
}

// Client returns a client that checks its traffic and does not follow
// redirects (a redirect is an answer to check, not to chase).
func (c *Checker) Client() *http.Client {
	return &http.Client{Transport: c, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// RoundTrip sends req and checks it and its response.
func (c *Checker) RoundTrip(req *http.Request) (*http.Response, error) {
	// Routed as the server routes it: on the unescaped path, in which an
	// escaped slash separates as a slash does.
	routed := req.Clone(context.Background())
	routed.URL.RawPath = ""
	route, params, err := c.router.FindRoute(routed)
	c.sent.Add(1)
	if err != nil {
		return c.next.RoundTrip(req)
	}
	c.checked.Add(1)
	what := req.Method + " " + req.URL.RequestURI()
	check := req.Clone(context.Background())
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
	switch {
	case req.Body == nil || req.Body == http.NoBody:
	case req.GetBody != nil && req.ContentLength >= 0 && req.ContentLength <= maxChecked:
		if check.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	default:
		check.Body = http.NoBody
		opts.ExcludeRequestBody = true
	}
	if check.Body != nil && check.Body != http.NoBody && check.Header.Get("Content-Type") == "" {
		// RFC 9110, 8.3: a body without a type may be taken as
		// application/octet-stream (the validator needs a type).
		check.Header.Set("Content-Type", "application/octet-stream")
	}
	in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(context.Background(), in)
	res, err := c.next.RoundTrip(req)
	if err != nil {
		return res, err
	}
	body, rerr := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		// Cut off by the server (or the test): nothing whole to check.
		res.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{rerr}))
		return res, nil
	}
	if reqErr != nil && res.StatusCode < 400 {
		c.t.Errorf("%s is outside the OpenAPI document (%v), and was answered %d, not refused", what, short(reqErr), res.StatusCode)
	}
	rin := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: req.Method == http.MethodHead},
	}
	rin.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), rin); err != nil {
		c.t.Errorf("%s was answered %d %.300s, which the OpenAPI document does not allow: %v", what, res.StatusCode, body, short(err))
	}
	return res, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// short keeps the first lines of a validation error, which can quote a
// whole schema.
func short(err error) string {
	lines := strings.SplitN(err.Error(), "\n", 8)
	return strings.Join(lines[:min(len(lines), 7)], "\n")
}

// Routes checks that the document's operations are exactly the mounted
// routes, each given as "METHOD /path/:param" (httprouter's syntax; the
// document's {param} and a trailing {path} matching a catch-all *path
// compare equal to them).
func Routes(t testing.TB, raw []byte, mounted []string) {
	t.Helper()
	doc := Load(t, raw)
	var inDoc []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			inDoc = append(inDoc, method+" "+path)
		}
	}
	var norm []string
	for _, m := range mounted {
		method, path, _ := strings.Cut(m, " ")
		segs := strings.Split(path, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
				segs[i] = "{" + s[1:] + "}"
			}
		}
		norm = append(norm, method+" "+strings.Join(segs, "/"))
	}
	slices.Sort(inDoc)
	slices.Sort(norm)
	norm = slices.Compact(norm)
	if !slices.Equal(inDoc, norm) {
		t.Fatalf("the document's operations are not the mounted routes\ndocument:\n%s\nmounted:\n%s", strings.Join(inDoc, "\n"), strings.Join(norm, "\n"))
	}
}

// Do sends req through client, the header pairs hdr (name, value, …) set
// over the request's own, and returns the answer's status, header and
// body. Not getting an answer ends the test.
func Do(t testing.TB, client *http.Client, req *http.Request, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.RequestURI(), err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", req.Method, req.URL.RequestURI(), err)
	}
	return res.StatusCode, res.Header, body
}
