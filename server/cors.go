package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/keyspace"
	"github.com/cairnstore/cairn/server/internal/urlpath"
	"github.com/cairnstore/cairn/server/internal/web"
	"github.com/cairnstore/cairn/server/storageapi"
)

// CORS: a browser app on another origin may call the APIs if its origin
// is allowed: by Config.CORSOrigins for every API, or by the rule of the
// resource the request acts on (a cloud storage bucket, a media service
// tenant, a Storage API organization; `cairn cors`). None by default:
// browsers keep other origins out. Every answer to an allowed origin says
// so and exposes the headers clients read (Location, ETag, Content-Range,
// …); a preflight (OPTIONS with Access-Control-Request-Method) is
// answered with the methods and headers allowed. The APIs authenticate
// with the Authorization header (or the API's own), never with cookies,
// so no credentials are allowed.

// exposed are the response headers a cross-origin script may read.
const exposed = "Location, ETag, Content-Range, Content-Length, Content-Disposition, Accept-Ranges, X-Total-Count, X-Request-Id, Retry-After, Link"

// The kinds of resource a CORS rule is for.
const (
	CORSBucket = "bucket" // a cloud storage bucket, by name
	CORSTenant = "tenant" // a media service tenant, by name
	CORSOrg    = "org"    // a Storage API organization (by ID in the store, by name in the command)
)

var (
	errOrigin = errors.New("server: origin not allowed")
	// ErrCORSRule: a rule that cannot be kept: a bad origin, method,
	// header or resource.
	ErrCORSRule = errors.New("server: invalid CORS rule")
	// ErrNoCORSRule: deleting a rule that does not exist.
	ErrNoCORSRule = errors.New("server: no such CORS rule")
)

// CORSRule is who may call the APIs from a browser: origins, and
// optionally only some methods and request headers.
type CORSRule struct {
	// Origins are "https://app.example" (scheme, host, port), or "*".
	Origins []string `json:"origins"`
	// Methods, if any, are all a preflight may ask for (of the route's).
	Methods []string `json:"methods,omitempty"`
	// Headers, if any, are all the request headers a preflight may ask
	// for (case-insensitive); none: whatever it asks.
	Headers []string `json:"headers,omitempty"`
}

const maxCORSList = 64

// Check reports what is wrong with r, wrapping ErrCORSRule.
func (r CORSRule) Check() error {
	if len(r.Origins) == 0 || len(r.Origins) > maxCORSList || len(r.Methods) > maxCORSList || len(r.Headers) > maxCORSList {
		return fmt.Errorf("%w: 1 to %d origins, at most %d methods and headers", ErrCORSRule, maxCORSList, maxCORSList)
	}
	for _, o := range r.Origins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || o != u.Scheme+"://"+u.Host {
			return fmt.Errorf("%w: origin %q is not scheme://host[:port]", ErrCORSRule, o)
		}
	}
	for _, m := range r.Methods {
		if !slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}, m) {
			return fmt.Errorf("%w: method %q", ErrCORSRule, m)
		}
	}
	for _, h := range r.Headers {
		if h == "" || len(h) > 128 || strings.ContainsFunc(h, func(c rune) bool { return !web.IsTokenChar(c) }) {
			return fmt.Errorf("%w: header %q", ErrCORSRule, h)
		}
	}
	return nil
}

func (r CORSRule) allowsOrigin(origin string) bool {
	return origin != "" && (slices.Contains(r.Origins, "*") || slices.Contains(r.Origins, origin))
}

func (r CORSRule) allowsMethod(m string) bool {
	if m == http.MethodOptions {
		return true
	}
	return len(r.Methods) == 0 || slices.Contains(r.Methods, m) || m == http.MethodHead && slices.Contains(r.Methods, http.MethodGet)
}

// allowsHeaders reports whether every header of a preflight's
// Access-Control-Request-Headers is allowed.
func (r CORSRule) allowsHeaders(list string) bool {
	if len(r.Headers) == 0 {
		return true
	}
	for _, h := range strings.Split(list, ",") {
		if h = strings.TrimSpace(h); h != "" && !slices.ContainsFunc(r.Headers, func(a string) bool { return strings.EqualFold(a, h) }) {
			return false
		}
	}
	return true
}

// CORSRules are the per-resource rules kept in the store.
type CORSRules struct {
	e   *engine.Engine
	iam *storageapi.IAM
}

// NewCORSRules returns the CORS rules of e's store.
func NewCORSRules(e *engine.Engine) *CORSRules {
	return &CORSRules{e: e, iam: storageapi.NewIAM(e)}
}

func corsKey(kind, name string) engine.Key {
	return engine.Key{Namespace: keyspace.CORS, Tenant: kind, Name: name}
}

// resolve turns a resource as an operator names it ("org", "acme") into
// its key in the store (the organization's ID).
func (c *CORSRules) resolve(kind, name string) (string, error) {
	switch kind {
	case CORSBucket, CORSTenant:
		if name == "" || len(name) > 255 || strings.ContainsAny(name, "/\x00") {
			return "", fmt.Errorf("%w: %s name %q", ErrCORSRule, kind, name)
		}
		return name, nil
	case CORSOrg:
		o, err := c.iam.OrgByName(name)
		if err != nil {
			return "", fmt.Errorf("%w: organization %q: %w", ErrCORSRule, name, err)
		}
		return o.ID, nil
	}
	return "", fmt.Errorf("%w: %q is not bucket, tenant or org", ErrCORSRule, kind)
}

// Set keeps rule for the resource (kind, name), replacing any before.
func (c *CORSRules) Set(ctx context.Context, kind, name string, rule CORSRule) error {
	if err := rule.Check(); err != nil {
		return err
	}
	id, err := c.resolve(kind, name)
	if err != nil {
		return err
	}
	meta, _ := json.Marshal(rule)
	return c.e.Update(ctx, func(tx *engine.Tx) error {
		_, err := tx.Put(corsKey(kind, id), engine.Record{Meta: meta}, nil)
		return err
	})
}

// Delete removes the resource's rule.
func (c *CORSRules) Delete(ctx context.Context, kind, name string) error {
	id, err := c.resolve(kind, name)
	if err != nil {
		return err
	}
	err = c.e.DeleteRecord(ctx, corsKey(kind, id))
	if errors.Is(err, engine.ErrNotFound) {
		return fmt.Errorf("%w: %s %s", ErrNoCORSRule, kind, name)
	}
	return err
}

// CORSEntry is one resource's rule, as List shows it.
type CORSEntry struct {
	Kind, Name string
	CORSRule
}

// List returns every rule, by kind and name (organizations by name; one
// deleted since shows its ID).
func (c *CORSRules) List() ([]CORSEntry, error) {
	names := map[string]string{}
	orgs, err := c.iam.Orgs()
	if err != nil {
		return nil, err
	}
	for _, o := range orgs {
		names[o.ID] = o.Name
	}
	var out []CORSEntry
	for rec, err := range c.e.Namespace(keyspace.CORS) {
		if err != nil {
			return nil, err
		}
		en := CORSEntry{Kind: rec.Key.Tenant, Name: rec.Key.Name}
		if err := json.Unmarshal(rec.Meta, &en.CORSRule); err != nil {
			return nil, fmt.Errorf("%w: CORS rule %s/%s: %v", engine.ErrCorrupt, en.Kind, en.Name, err)
		}
		if n, ok := names[en.Name]; ok && en.Kind == CORSOrg {
			en.Name = n
		}
		out = append(out, en)
	}
	return out, nil
}

// rule returns the rule of resource (kind, key), ok false if none.
func (c *CORSRules) rule(kind, key string) (CORSRule, bool, error) {
	rec, err := c.e.GetRecord(corsKey(kind, key))
	if errors.Is(err, engine.ErrNotFound) {
		return CORSRule{}, false, nil
	}
	if err != nil {
		return CORSRule{}, false, err
	}
	var r CORSRule
	if err := json.Unmarshal(rec.Meta, &r); err != nil {
		return CORSRule{}, false, fmt.Errorf("%w: CORS rule %s/%s: %v", engine.ErrCorrupt, kind, key, err)
	}
	return r, true, nil
}

// resourceOf is the resource a request path names, as far as the path
// tells: a bucket or a tenant (kind and name); or, for the paths whose
// resource only the request's credentials tell (the Storage API's
// organization area and login, the media service's token endpoint), the
// kind a handler will name (deferred).
func resourceOf(escaped string) (kind, name, deferred string) {
	segs, _, err := urlpath.Split(escaped)
	if err != nil || len(segs) < 2 {
		return "", "", ""
	}
	switch {
	case segs[0] == "public" || segs[0] == "protected":
		return CORSBucket, segs[1], ""
	case segs[0] == "signed" && len(segs) > 2 && segs[1] == "protected":
		return CORSBucket, segs[2], ""
	case segs[0] == "media":
		return CORSTenant, segs[1], ""
	case segs[0] == "oauth" && segs[1] == "token":
		return "", "", CORSTenant
	case segs[0] == "storage" && (segs[1] == "org" || segs[1] == "auth"):
		return "", "", CORSOrg
	}
	return "", "", ""
}

// global is the rule of Config.CORSOrigins.
func (s *Server) global() (CORSRule, bool) {
	return CORSRule{Origins: s.cfg.CORSOrigins, Methods: s.cfg.CORSMethods, Headers: s.cfg.CORSHeaders}, len(s.cfg.CORSOrigins) > 0
}

// allow marks an answer as readable by origin.
func allow(h http.Header, origin string) {
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", exposed)
}

// cors marks an answer to an allowed origin as readable by it, and
// returns r with a hook by which a handler names the organization a
// request acts on (web.CORSResource), whose rule then applies too.
func (s *Server) cors(h http.Header, r *http.Request) *http.Request {
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" {
		return r
	}
	if g, ok := s.global(); ok && g.allowsOrigin(origin) && g.allowsMethod(r.Method) {
		allow(h, origin)
		return r
	}
	kind, name, deferred := resourceOf(r.URL.EscapedPath())
	if kind != "" {
		if rule, ok, err := s.corsRules.rule(kind, name); err == nil && ok && rule.allowsOrigin(origin) && rule.allowsMethod(r.Method) {
			allow(h, origin)
			return r
		}
	}
	if deferred == "" {
		return r
	}
	return web.WithCORSResource(r, func(kind, name string) {
		if kind != deferred {
			return
		}
		if rule, ok, err := s.corsRules.rule(kind, name); err == nil && ok && rule.allowsOrigin(origin) && rule.allowsMethod(r.Method) {
			allow(h, origin)
		}
	})
}

// preflight answers an OPTIONS request to a route (the router has set
// Allow to its methods): a CORS preflight from an allowed origin gets the
// methods and the headers it may use; one from another origin, or asking
// for a method or header not allowed, 403; a plain OPTIONS, its Allow.
// Where only the request's credentials tell the resource (the Storage
// API's organization area and login, the media service's token
// endpoint), which a preflight does not carry, the origin must be allowed
// by some rule of that kind; the answer to the request itself is
// readable only if it is its own resource's (or, for a login, one of the
// user's organizations').
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) error {
	method := r.Header.Get("Access-Control-Request-Method")
	origin := r.Header.Get("Origin")
	if origin == "" || method == "" {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	h := w.Header()
	routeMethods := strings.Split(strings.ReplaceAll(h.Get("Allow"), " ", ""), ",")
	refuse := func() error {
		h.Del("Access-Control-Allow-Origin")
		h.Del("Access-Control-Expose-Headers")
		return errOrigin
	}
	if !slices.Contains(routeMethods, method) {
		return refuse()
	}
	asked := r.Header.Get("Access-Control-Request-Headers")
	var rules []CORSRule
	if g, ok := s.global(); ok {
		rules = append(rules, g)
	}
	switch kind, name, deferred := resourceOf(r.URL.EscapedPath()); {
	case kind != "":
		rule, ok, err := s.corsRules.rule(kind, name)
		if err != nil {
			return err
		}
		if ok {
			rules = append(rules, rule)
		}
	case deferred != "":
		for rec, err := range s.cfg.Engine.Records(keyspace.CORS, deferred, "", "") {
			if err != nil {
				return err
			}
			var rule CORSRule
			if json.Unmarshal(rec.Meta, &rule) == nil {
				rules = append(rules, rule)
			}
		}
	}
	i := slices.IndexFunc(rules, func(c CORSRule) bool {
		return c.allowsOrigin(origin) && c.allowsMethod(method) && c.allowsHeaders(asked)
	})
	if i < 0 {
		return refuse()
	}
	methods := routeMethods
	if len(rules[i].Methods) > 0 {
		methods = slices.DeleteFunc(slices.Clone(routeMethods), func(m string) bool { return !rules[i].allowsMethod(m) })
	}
	allow(h, origin)
	h.Set("Access-Control-Allow-Methods", strings.Join(methods, ", "))
	if asked != "" {
		h.Set("Access-Control-Allow-Headers", asked)
	}
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
