package ifbind

import (
	"context"
	"net"
	"net/http"
	"slices"
	"time"
)

// A BoundDialer is a dialer whose every connection ifbind binds to an
// interface before it connects: a *Dialer or an *Uplinks. NewTransport
// takes one. Its unexported method keeps out every other dialer, so that a
// transport never dials unbound.
type BoundDialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)

	// transportDial returns the dial function of a transport: a copy of
	// the dialer, with the timeouts of http.DefaultTransport where unset.
	transportDial() func(ctx context.Context, network, address string) (net.Conn, error)
}

// NewTransport returns an *http.Transport whose every connection is dialed
// by d, a *Dialer or an *Uplinks, and so bound: plain HTTP, TLS (HTTPS and
// HTTP/2, the TLS handshake running over the bound connection), and the
// connections to a proxy. Give each interface its own:
//
//	client := &http.Client{Transport: ifbind.NewTransport(d)}
//
// With an *Uplinks, each new connection goes through the uplink its
// Strategy picks then: one client fails over between uplinks, while the
// connections it keeps idle stay on the uplink they were made through.
//
// The transport is a clone of http.DefaultTransport: the proxy from the
// environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY; a proxy on the loopback
// cannot be reached through an interface, and requests through it fail),
// HTTP/2 when the server offers it, its timeouts and its pool of idle
// connections. Its fields may be changed before first use, as those of any
// http.Transport, but setting DialContext or DialTLSContext replaces the
// binding. When d's Timeout is 0 a dial times out after 30 seconds, and
// when its KeepAlive is 0 keep-alive probes are sent every 30 seconds, as
// in http.DefaultTransport; the rest of d is used as is.
//
// Dials to a host name resolve it with d's Resolver, which is not bound to
// the interface unless it was made by NewResolver (see there why), and race
// the IPv6 and IPv4 addresses of the name (Happy Eyeballs, RFC 6555) as
// net.Dialer does, every attempt bound. The context of a request bounds
// its dial, name resolution included.
//
// The transport copies d: later changes to d do not affect it. A nil d, a
// nil *Dialer, or one whose Index is 0, makes a transport whose every
// request fails with an error saying there is no interface to bind to:
// never one that leaves by the default route. The transport is safe for
// concurrent use, as every http.Transport; reuse it rather than make one
// per request, so that its connections are reused.
func NewTransport(d BoundDialer) *http.Transport {
	if d == nil {
		d = (*Dialer)(nil)
	}
	t := defaultTransport()
	t.Dial = nil           //lint:ignore SA1019 cleared so that it cannot bypass the binding
	t.DialTLS = nil        //lint:ignore SA1019 cleared so that it cannot bypass the binding
	t.DialTLSContext = nil // TLS runs over DialContext's bound connection
	t.DialContext = d.transportDial()
	return t
}

// transportDefaults sets the timeouts of http.DefaultTransport in d where
// unset.
func transportDefaults(d *Dialer) {
	if d.Timeout == 0 {
		d.Timeout = 30 * time.Second
	}
	if d.KeepAlive == 0 {
		d.KeepAlive = 30 * time.Second
	}
}

func (d *Dialer) transportDial() func(ctx context.Context, network, address string) (net.Conn, error) {
	dc := Dialer{}
	if d != nil {
		dc = *d
	}
	transportDefaults(&dc)
	return dc.DialContext
}

func (u *Uplinks) transportDial() func(ctx context.Context, network, address string) (net.Conn, error) {
	uc := Uplinks{}
	if u != nil {
		uc = *u
		uc.Bindings = slices.Clone(u.Bindings)
	}
	transportDefaults(&uc.Dialer)
	return uc.DialContext
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
