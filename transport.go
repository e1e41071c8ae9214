package ifbind

import (
	"net/http"
	"time"
)

// NewTransport returns an *http.Transport whose every connection is dialed
// by d, and so bound to d.Index: plain HTTP, TLS (HTTPS and HTTP/2, the TLS
// handshake running over the bound connection), and the connections to a
// proxy. Give each interface its own:
//
//	client := &http.Client{Transport: ifbind.NewTransport(d)}
//
// The transport is a clone of http.DefaultTransport: the proxy from the
// environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY; a proxy on the loopback
// cannot be reached through an interface, and requests through it fail),
// HTTP/2 when the server offers it, its timeouts and its pool of idle
// connections. Its fields may be changed before first use, as those of any
// http.Transport, but setting DialContext or DialTLSContext replaces the
// binding. When d.Timeout is 0 a dial times out after 30 seconds, and when
// d.KeepAlive is 0 keep-alive probes are sent every 30 seconds, as in
// http.DefaultTransport; the rest of d is used as is.
//
// Dials to a host name resolve it with d.Resolver, which is not bound to the
// interface unless it was made by NewResolver (see there why), and race the
// IPv6 and IPv4 addresses of the name (Happy Eyeballs, RFC 6555) as
// net.Dialer does, every attempt bound to d.Index. The context of a request
// bounds its dial, name resolution included.
//
// The transport copies d: later changes to d do not affect it. A nil d, or
// one whose Index is 0, makes a transport whose every request fails with an
// error saying there is no interface to bind to: never one that leaves by
// the default route. The transport is safe for concurrent use, as every
// http.Transport; reuse it rather than make one per request, so that its
// connections are reused.
func NewTransport(d *Dialer) *http.Transport {
	dc := Dialer{}
	if d != nil {
		dc = *d
	}
	if dc.Timeout == 0 {
		dc.Timeout = 30 * time.Second
	}
	if dc.KeepAlive == 0 {
		dc.KeepAlive = 30 * time.Second
	}
	t := defaultTransport()
	t.Dial = nil           //lint:ignore SA1019 cleared so that it cannot bypass the binding
	t.DialTLS = nil        //lint:ignore SA1019 cleared so that it cannot bypass the binding
	t.DialTLSContext = nil // TLS runs over DialContext's bound connection
	t.DialContext = dc.DialContext
	return t
}

// defaultTransport returns a clone of http.DefaultTransport, or, when a
// program replaced it with a RoundTripper that is not an *http.Transport, a
// new transport with the settings net/http documents for it.
func defaultTransport() *http.Transport {
	if t, ok := http.DefaultTransport.(*http.Transport); ok {
		return t.Clone()
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
}
