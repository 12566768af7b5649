package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnstore/cairn/internal/testtool"
)

// browserJS runs, in a page of another origin than cairn's, the flows
// plan.flows names, each a list of fetch() calls as a browser app of
// that API makes them, and posts what each step saw to its own origin's
// /result: a status and what it could read, or the error fetch threw
// (what a browser does with an answer CORS does not let the page read).
const browserJS = `
const B = plan.base;
const out = {};
function bytes(n, seed) { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 255; return b; }
function same(a, b) { if (a.length !== b.length) return false; for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false; return true; }
function b64(b) { let s = ''; for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]); return btoa(s); }
async function step(name, fn) {
  try { out[name] = String(await fn()); } catch (e) { out[name] = 'error: ' + e.name; }
  console.log(name + ': ' + out[name]);
}
async function read(r, want, from) {
  const got = new Uint8Array(await r.arrayBuffer());
  return r.status + (want ? (same(got, want.subarray(from || 0, (from || 0) + got.length)) && got.length > 0 ? ' same' : ' other bytes') : '');
}
const flows = {
  cloudstorage: async function () {
    const data = bytes(70000, 1), auth = {'Authorization': 'Bearer ' + plan.csToken};
    await step('cs upload', async () => {
      const r = await fetch(B + '/protected/277/movie-' + plan.tag + '.bin', {method: 'POST', headers: Object.assign({'Content-Type': 'application/octet-stream'}, auth), body: data});
      return r.status + (r.headers.get('Location') ? ' location' : '');
    });
    await step('cs download', async () => {
      const r = await fetch(B + '/protected/277/movie-' + plan.tag + '.bin', {headers: auth});
      return (await read(r, data)) + (r.headers.get('ETag') ? ' etag' : '');
    });
    await step('cs range', async () => {
      const r = await fetch(B + '/protected/277/movie-' + plan.tag + '.bin', {headers: Object.assign({'Range': 'bytes=1000-1999'}, auth)});
      return (await read(r, data, 1000)) + ' ' + r.headers.get('Content-Range');
    });
    await step('cs signed range', async () => {
      const s = await (await fetch(B + '/signed/protected/277/movie-' + plan.tag + '.bin?expiresIn=60', {method: 'POST', headers: auth})).json();
      const r = await fetch(s.url, {headers: {'Range': 'bytes=5-9'}});
      return await read(r, data, 5);
    });
    await step('cs other bucket', async () => (await fetch(B + '/protected/300/a.bin', {headers: auth})).status);
  },
  mediaservice: async function () {
    const data = bytes(30000, 2);
    let tok = '', id = '';
    await step('ms token', async () => {
      const r = await fetch(B + '/oauth/token', {method: 'POST', body: new URLSearchParams({grant_type: 'client_credentials', client_id: 'shop-app', client_secret: plan.msSecret})});
      tok = (await r.json()).access_token;
      return r.status + (tok ? ' token' : '');
    });
    const auth = {'Authorization': 'Bearer ' + tok};
    await step('ms upload', async () => {
      const f = new FormData();
      f.append('file', new Blob([data], {type: 'application/pdf'}), 'manual.pdf');
      f.append('body', new Blob([JSON.stringify({type: 'BLOB', access: 'PRIVATE'})], {type: 'application/json'}));
      const r = await fetch(B + '/media/shop/assets', {method: 'POST', headers: auth, body: f});
      id = (await r.json()).id;
      return r.status;
    });
    await step('ms download', async () => await read(await fetch(B + '/media/shop/assets/' + id + '/download', {headers: auth}), data));
    await step('ms range', async () => {
      const r = await fetch(B + '/media/shop/assets/' + id + '/download', {headers: Object.assign({'Range': 'bytes=10-19'}, auth)});
      return (await read(r, data, 10)) + ' ' + r.headers.get('Content-Range');
    });
  },
  storageapi: async function () {
    const data = bytes(20000, 3);
    let tok = '', id = '';
    await step('storage login', async () => {
      const r = await fetch(B + '/storage/auth/login', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({email: 'ann@example.com', password: plan.password})});
      tok = (await r.json()).organizations[0].token;
      return r.status;
    });
    const auth = {'Authorization': 'Bearer ' + tok};
    await step('storage upload', async () => {
      const f = new FormData();
      f.append('file', new Blob([data]), 'plan.bin');
      const r = await fetch(B + '/storage/org/files', {method: 'POST', headers: auth, body: f});
      id = (await r.json()).fileId;
      return r.status + (r.headers.get('Location') ? ' location' : '');
    });
    await step('storage range', async () => {
      const r = await fetch(B + '/storage/org/files/' + id, {headers: Object.assign({'Range': 'bytes=100-199'}, auth)});
      return (await read(r, data, 100)) + ' ' + r.headers.get('Content-Range');
    });
  },
  oceanmedia: async function () {
    const data = bytes(5000, 4);
    let tok = '', self = '';
    await step('v1 token', async () => {
      const r = await fetch(B + '/v1/authentications', {method: 'POST', headers: {'X-API-Authenticate': btoa('editor:' + plan.password)}});
      tok = (await r.json()).authentication.token;
      return r.status;
    });
    await step('v1 create', async () => {
      const r = await fetch(B + '/v1/media', {method: 'POST', headers: {'X-API-Token': tok, 'Content-Type': 'application/json'},
        body: JSON.stringify({app: 'shop', context: 'ui', name: 'pic', locale: 'sv-SE', content_type: 'image/gif', file_name: 'pic.gif', payload: b64(data)})});
      self = r.headers.get('Location');
      return r.status + (self ? ' location' : '');
    });
    await step('v1 range', async () => {
      if (!self) return 'skipped';
      const m = await (await fetch(self, {headers: {'X-API-Token': tok}})).json();
      const r = await fetch(m.medium._links.url.href, {headers: {'Range': 'bytes=0-99'}});
      return (await read(r, data, 0)) + ' ' + r.headers.get('Content-Range');
    });
  },
  mediaupload: async function () {
    const data = bytes(8000, 5);
    let loc = '';
    await step('cms upload', async () => {
      const r = await fetch(B + '/cms/v2/content', {method: 'POST', headers: {'Authorization': 'Basic ' + btoa('shop:' + plan.password), 'Content-Type': 'application/json'},
        body: JSON.stringify({content: b64(data)})});
      loc = r.headers.get('Location');
      return r.status + (loc ? ' location' : '') + (r.headers.get('X-Request-Id') ? ' request-id' : '');
    });
    await step('cms range', async () => {
      if (!loc) return 'skipped';
      const r = await fetch(loc, {headers: {'Range': 'bytes=50-59'}});
      return (await read(r, data, 50)) + ' ' + r.headers.get('Content-Range');
    });
  },
  public: async function () {
    await step('public get', async () => (await fetch(B + '/public/277/hello.txt')).status);
  },
};
(async function () {
  for (const f of plan.flows) await flows[f]();
  await fetch('/result', {method: 'POST', body: JSON.stringify(out)});
})();
`

// page is a web server of its own origin: it serves a page that runs
// browserJS with a plan, and takes the page's results.
type page struct {
	origin  string
	results chan map[string]string
	mu      sync.Mutex
	plan    map[string]any // guarded by mu: set by open, read by the server
}

func newPage(t *testing.T) *page {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &page{origin: "http://" + ln.Addr().String(), results: make(chan map[string]string, 1)}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page.html":
			p.mu.Lock()
			plan, _ := json.Marshal(p.plan)
			p.mu.Unlock()
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, "<!doctype html><title>cairn from another origin</title><script>const plan = %s;\n%s</script>", plan, browserJS)
		case "/result":
			var res map[string]string
			if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&res); err != nil {
				res = map[string]string{"the page's report": err.Error()}
			}
			select {
			case p.results <- res:
			default:
			}
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return p
}

// open loads the page, to run plan, in a headless Chromium and returns
// what it saw.
func (p *page) open(t *testing.T, chromium string, plan map[string]any) map[string]string {
	t.Helper()
	p.mu.Lock()
	p.plan = plan
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-background-networking", "--disable-extensions",
		"--disable-sync", "--disable-component-update", "--enable-logging=stderr", "--v=0", "--user-data-dir="+t.TempDir(), p.origin+"/page.html")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	select {
	case res := <-p.results:
		return res
	case <-ctx.Done():
		t.Fatalf("the page of %s reported nothing within 90 s; chromium said:\n%s", p.origin, stderr.String())
	}
	return nil
}

// TestBrowser is CORS as a browser app meets it: a headless Chromium
// loads pages of other origins that call cairn with fetch(): uploads,
// downloads and ranged reads, reading the headers apps read. One origin
// is allowed everywhere (--cors-origins), one by the rules of a bucket,
// a tenant and an organization (cairn cors set), and one nowhere: every
// call of that one fails as a browser fails it, and the others fail only
// where their rules do not reach.
func TestBrowser(t *testing.T) {
	chromium := testtool.Path(t, "chromium", "install Debian's chromium (apt-get install chromium) for the browser test")
	data := filepath.Join(t.TempDir(), "data")
	newStore(t, data)
	const password = "a-long-password-for-the-browser"
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cairn := func(args ...string) string {
		t.Helper()
		var out strings.Builder
		if err := run(context.Background(), append(args, "--data", data), noEnv, &out, io.Discard); err != nil {
			t.Fatalf("cairn %s: %v", strings.Join(args, " "), err)
		}
		return out.String()
	}
	everywhere, perResource, nowhere := newPage(t), newPage(t), newPage(t)

	cairn("user", "add", "alice")
	cairn("user", "grant", "alice", "277", "WRITE")
	cairn("user", "grant", "alice", "300", "WRITE")
	csToken := strings.TrimSpace(cairn("user", "token", "alice", "--ttl", "1h"))
	out := cairn("client", "add", "shop-app", "--tenant", "shop", "--scopes", "media.asset_manage,media.asset_read")
	msSecret := strings.TrimSpace(out[strings.Index(out, "secret: ")+len("secret: "):])
	cairn("iam", "user", "add", "ann@example.com", "--password-file", pwFile)
	cairn("iam", "org", "add", "acme")
	cairn("iam", "member", "set", "acme", "ann@example.com", "manager")
	cairn("apiuser", "add", "editor", "--password-file", pwFile, "--right", "write")
	cairn("account", "add", "shop", "--password-file", pwFile)
	for _, res := range []string{"bucket/277", "tenant/shop", "org/acme"} {
		cairn("cors", "set", res, perResource.origin)
	}
	base, stop := startServe(t, []string{"--data", data, "--cors-origins", everywhere.origin}, noEnv)
	defer stop()
	mustDo(t, "POST", base+"/public/277/hello.txt", "Bearer "+csToken, "hello")

	plan := func(tag string, flows ...string) map[string]any {
		return map[string]any{"base": base, "tag": tag, "flows": flows, "csToken": csToken, "msSecret": msSecret, "password": password}
	}
	allFlows := []string{"cloudstorage", "mediaservice", "storageapi", "oceanmedia", "mediaupload", "public"}
	works := map[string]string{
		"cs upload":       "201 location",
		"cs download":     "200 same etag",
		"cs range":        "206 same bytes 1000-1999/70000",
		"cs signed range": "206 same",
		"cs other bucket": "404",
		"ms token":        "200 token",
		"ms upload":       "201",
		"ms download":     "200 same",
		"ms range":        "206 same bytes 10-19/30000",
		"storage login":   "200",
		"storage upload":  "201 location",
		"storage range":   "206 same bytes 100-199/20000",
		"v1 token":        "201",
		"v1 create":       "201 location",
		"v1 range":        "206 same bytes 0-99/5000",
		"cms upload":      "201 location request-id",
		"cms range":       "206 same bytes 50-59/8000",
		"public get":      "200",
	}
	check := func(who string, got map[string]string, want func(step string) string) {
		t.Helper()
		for step := range works {
			w := want(step)
			if w == "" {
				continue
			}
			if got[step] != w {
				t.Errorf("%s, %s: %q, want %q", who, step, got[step], w)
			}
		}
	}

	check("allowed everywhere", everywhere.open(t, chromium, plan("everywhere", allFlows...)), func(step string) string { return works[step] })

	check("allowed by the resources' rules", perResource.open(t, chromium, plan("per-resource", allFlows...)), func(step string) string {
		switch {
		case step == "cs other bucket": // bucket 300 has no rule
			return "error: TypeError"
		case step == "v1 range" || step == "cms range": // nothing was made to read
			return "skipped"
		case strings.HasPrefix(step, "v1 ") || strings.HasPrefix(step, "cms "): // no rules: --cors-origins only
			return "error: TypeError"
		}
		return works[step]
	})

	check("allowed nowhere", nowhere.open(t, chromium, plan("nowhere", allFlows...)), func(step string) string {
		if step == "v1 range" || step == "cms range" {
			return "skipped"
		}
		return "error: TypeError"
	})
}

// mustDo sends a request with an Authorization header and wants 2xx.
func mustDo(t *testing.T, method, url, authorization, body string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", authorization)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d", method, url, res.StatusCode)
	}
}
