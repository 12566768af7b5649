package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/cairnstore/cairn/server/internal/web"
)

// fromProxy applies what a trusted reverse proxy says of the client to
// r: its address (the rate limits' and the access log's), and the scheme
// and host it was asked for (the APIs' absolute URLs). Only a peer in
// trusted is believed, and only the hops it and other trusted proxies
// added: in X-Forwarded-For (or Forwarded's for=) the client is the last
// address, from the right, that is not a trusted proxy, since everything
// to its left came from the client itself. Without a trusted peer, the
// headers are ignored: anyone can send them.
func fromProxy(r *http.Request, trusted []netip.Prefix) *http.Request {
	if len(trusted) == 0 || !isTrusted(peer(r.RemoteAddr), trusted) {
		return r
	}
	var hops []string
	var proto, host string
	if fwd := r.Header.Values("Forwarded"); len(fwd) > 0 {
		for _, elem := range strings.Split(strings.Join(fwd, ","), ",") {
			for _, pair := range strings.Split(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if !ok {
					continue
				}
				v = strings.Trim(v, `"`)
				switch strings.ToLower(k) {
				case "for":
					hops = append(hops, v)
				case "proto":
					proto = v
				case "host":
					host = v
				}
			}
		}
	} else {
		for _, v := range r.Header.Values("X-Forwarded-For") {
			hops = append(hops, strings.Split(v, ",")...)
		}
		proto = lastValue(r.Header.Values("X-Forwarded-Proto"))
		host = lastValue(r.Header.Values("X-Forwarded-Host"))
	}
	client := netip.Addr{}
	for i := len(hops) - 1; i >= 0; i-- {
		a := peer(strings.TrimSpace(hops[i]))
		if !a.IsValid() {
			break // an obfuscated or garbled hop: trust nothing left of it
		}
		client = a
		if !isTrusted(a, trusted) {
			break
		}
	}
	r2 := r.Clone(r.Context())
	if client.IsValid() {
		r2.RemoteAddr = net.JoinHostPort(client.String(), "0")
	}
	if proto = strings.ToLower(strings.TrimSpace(proto)); proto == "http" || proto == "https" {
		r2 = web.WithScheme(r2, proto)
	}
	if host = strings.TrimSpace(host); validHost(host) {
		r2.Host = host
	}
	return r2
}

// peer is the address in "ip", "ip:port", "[ip]:port" or Forwarded's
// quoted forms, or the zero Addr.
func peer(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func lastValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	parts := strings.Split(vs[len(vs)-1], ",")
	return parts[len(parts)-1]
}

// validHost accepts a host[:port] of the characters a host name or an
// address has, so that a proxy's header cannot put anything else into
// the URLs the APIs return.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune("-.:[]", c):
		default:
			return false
		}
	}
	return true
}
