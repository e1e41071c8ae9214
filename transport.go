package ifbind

import (
	"context"
	"crypto/tls"
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
// by a copy of d, a *Dialer or an *Uplinks, and so bound: plain HTTP, TLS,
// and the connection to a proxy (one on the loopback is unreachable:
// requests through it fail). With an *Uplinks each new connection goes
// through the uplink its Strategy picks then.
//
//	client := &http.Client{Transport: ifbind.NewTransport(d)}
//
// The transport is new, with http.DefaultTransport's settings (proxy from
// the environment, TLS configuration, timeouts, limits, HTTP/2), and shares
// no connection, pool or dial function with any other transport, not even
// an HTTP/2 that a program installed in http.DefaultTransport. When the
// Timeout of d is 0 a dial times out after 30 seconds, and when its
// KeepAlive is 0 probes are sent every 30 seconds. Host names are resolved
// by d's Resolver (bound only when made by NewResolver) and raced as
// net.Dialer does, each attempt bound; the context of a request bounds its
// dial. Its TLSClientConfig is a clone of the default transport's, nil
// unless a program set one: assign a tls.Config to change it. The copy is
// made now: set the Resolver first. Setting DialContext,
// DialTLSContext or TLSNextProto replaces the binding. A nil d, or one that
// cannot bind, gives a transport whose every request fails with an error
// saying why. It is safe for concurrent use: reuse it, so that its
// connections are reused.
func NewTransport(d BoundDialer) *http.Transport {
	if d == nil {
		d = (*Dialer)(nil)
	}
	t := defaultTransport()
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

// defaultTransport returns a new transport with the settings of
// http.DefaultTransport, or, when a program replaced it with a RoundTripper
// that is not an *http.Transport, with the settings net/http documents for
// it. It copies settings only, field by field: never a dial function, nor
// TLSNextProto, whose functions hold another transport's pool. (Clone would
// copy both; TestTransportFields fails when http.Transport gains a field
// that this list does not decide on.)
func defaultTransport() *http.Transport {
	dt, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: 1 * time.Second,
		}
	}
	t := &http.Transport{
		Proxy:                  dt.Proxy,
		OnProxyConnectResponse: dt.OnProxyConnectResponse,
		TLSHandshakeTimeout:    dt.TLSHandshakeTimeout,
		DisableKeepAlives:      dt.DisableKeepAlives,
		DisableCompression:     dt.DisableCompression,
		MaxIdleConns:           dt.MaxIdleConns,
		MaxIdleConnsPerHost:    dt.MaxIdleConnsPerHost,
		MaxConnsPerHost:        dt.MaxConnsPerHost,
		IdleConnTimeout:        dt.IdleConnTimeout,
		ResponseHeaderTimeout:  dt.ResponseHeaderTimeout,
		ExpectContinueTimeout:  dt.ExpectContinueTimeout,
		ProxyConnectHeader:     dt.ProxyConnectHeader.Clone(),
		GetProxyConnectHeader:  dt.GetProxyConnectHeader,
		MaxResponseHeaderBytes: dt.MaxResponseHeaderBytes,
		WriteBufferSize:        dt.WriteBufferSize,
		ReadBufferSize:         dt.ReadBufferSize,
		ForceAttemptHTTP2:      dt.ForceAttemptHTTP2,
	}
	if dt.TLSClientConfig != nil {
		t.TLSClientConfig = dt.TLSClientConfig.Clone()
	}
	if dt.HTTP2 != nil {
		h2 := *dt.HTTP2
		t.HTTP2 = &h2
	}
	if dt.Protocols != nil {
		p := *dt.Protocols
		t.Protocols = &p
	}
	switch {
	case dt.TLSNextProto == nil:
	case len(dt.TLSNextProto) == 0:
		// The documented way to turn HTTP/2 off: keep it off.
		t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	default:
		// Another HTTP/2 (or protocol) was installed, with its own pool:
		// use net/http's own instead, private to t.
		t.ForceAttemptHTTP2 = true
	}
	return t
}
