package ifbind

import (
	"net/http"
	"time"
)

// NewTransport returns a clone of http.DefaultTransport (proxy from the
// environment, HTTP/2, timeouts, idle pool) whose every connection is dialed
// by a copy of d, and so bound: plain HTTP, TLS, and the connection to a
// proxy (one on the loopback is unreachable: requests through it fail).
//
//	client := &http.Client{Transport: ifbind.NewTransport(d)}
//
// When d.Timeout is 0 a dial times out after 30 seconds, and when
// d.KeepAlive is 0 probes are sent every 30 seconds, as in
// http.DefaultTransport. Host names are resolved by d.Resolver (bound only
// when made by NewResolver) and their addresses raced as net.Dialer does,
// each attempt bound; the context of a request bounds its dial. Setting
// DialContext or DialTLSContext replaces the binding. A nil d, or one that
// cannot bind, gives a transport whose every request fails. It is safe for
// concurrent use: reuse it, so that its connections are reused.
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
