package server

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/cairnstore/cairn/server/internal/web"
)

// TestFromProxy: a trusted proxy's headers give the client's address
// (the last hop, from the right, that is not a trusted proxy), scheme and
// host; an untrusted peer's are ignored; garbled values change nothing.
func TestFromProxy(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		name, peer string
		hdr        map[string]string
		// want: the client address, the base URL
		addr, base string
	}{
		{"no proxy configured headers ignored", "192.0.2.1:5000", map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
			"192.0.2.1:5000", "http://cairn.local"},
		{"trusted X-Forwarded-*", "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "media.example"},
			"203.0.113.7:0", "https://media.example"},
		{"a client's own X-Forwarded-For is to the left", "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "1.2.3.4, 203.0.113.7"},
			"203.0.113.7:0", "http://cairn.local"},
		{"chained trusted proxies are skipped", "10.1.2.3:5000", map[string]string{"X-Forwarded-For": "203.0.113.7, 10.9.9.9"},
			"203.0.113.7:0", "http://cairn.local"},
		{"Forwarded, quoted IPv6 with a port", "[::1]:5000", map[string]string{"Forwarded": `for="[2001:db8::1]:4711";proto=https;host=media.example`},
			"[2001:db8::1]:0", "https://media.example"},
		{"Forwarded wins over X-Forwarded-*", "10.1.2.3:5000", map[string]string{"Forwarded": "for=203.0.113.9", "X-Forwarded-For": "203.0.113.7"},
			"203.0.113.9:0", "http://cairn.local"},
		{"an obfuscated hop leaves the peer", "10.1.2.3:5000", map[string]string{"Forwarded": "for=_hidden"},
			"10.1.2.3:5000", "http://cairn.local"},
		{"a host with a path or a scheme not http(s) is ignored", "10.1.2.3:5000", map[string]string{"X-Forwarded-Host": "evil.example/x?y", "X-Forwarded-Proto": "javascript"},
			"10.1.2.3:5000", "http://cairn.local"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "http://cairn.local/x", nil)
			r.RemoteAddr = tc.peer
			for k, v := range tc.hdr {
				r.Header.Set(k, v)
			}
			var tr []netip.Prefix
			if tc.name != "no proxy configured headers ignored" {
				tr = trusted
			}
			got := fromProxy(r, tr)
			if got.RemoteAddr != tc.addr {
				t.Errorf("client address %q, want %q", got.RemoteAddr, tc.addr)
			}
			if base := (web.Deps{}).BaseURL(got); base != tc.base {
				t.Errorf("base URL %q, want %q", base, tc.base)
			}
		})
	}
	// An untrusted peer is not believed even with proxies configured.
	r := httptest.NewRequest("GET", "http://cairn.local/x", nil)
	r.RemoteAddr = "192.0.2.1:5000"
	r.Header.Set("X-Forwarded-For", "203.0.113.7")
	if got := fromProxy(r, trusted); got.RemoteAddr != "192.0.2.1:5000" {
		t.Errorf("an untrusted peer's X-Forwarded-For was believed: %q", got.RemoteAddr)
	}
}
