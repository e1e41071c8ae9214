package ifbind

import (
	"crypto/tls"
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
// The transport is new, with the settings of http.DefaultTransport: the
// proxy from the environment (HTTP_PROXY, HTTPS_PROXY, NO_PROXY; a proxy on
// the loopback cannot be reached through an interface, and requests through
// it fail), its TLS configuration, timeouts and limits, and HTTP/2 when the
// server offers it, unless http.DefaultTransport turned it off. It shares no
// connection, pool or dial function with any other transport: its HTTP/2 is
// its own, never one that a program installed in http.DefaultTransport's
// TLSNextProto (golang.org/x/net/http2.ConfigureTransports, for one), whose
// pool holds connections of other interfaces. Its fields may be changed
// before first use, as those of any http.Transport, but setting DialContext,
// DialTLSContext or TLSNextProto replaces the binding. When d.Timeout is 0 a
// dial times out after 30 seconds, and when d.KeepAlive is 0 keep-alive
// probes are sent every 30 seconds, as in http.DefaultTransport; the rest of
// d is used as is.
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
	t.DialContext = dc.DialContext
	return t
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
