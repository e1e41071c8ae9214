package ifbind

import (
	"crypto/tls"
	"net"
	"net/http"
	"reflect"
	"testing"
)

func TestNewTransportClonesDefault(t *testing.T) {
	def := http.DefaultTransport.(*http.Transport)
	tr := NewTransport(&Dialer{Index: 1})
	if tr == def {
		t.Fatal("NewTransport returned http.DefaultTransport itself")
	}
	if tr.Proxy == nil || tr.DialContext == nil || tr.DialTLSContext != nil {
		t.Errorf("Proxy set %v, DialContext set %v, DialTLSContext set %v; want true, true, false",
			tr.Proxy != nil, tr.DialContext != nil, tr.DialTLSContext != nil)
	}
	if tr.ForceAttemptHTTP2 != def.ForceAttemptHTTP2 || tr.MaxIdleConns != def.MaxIdleConns ||
		tr.IdleConnTimeout != def.IdleConnTimeout || tr.TLSHandshakeTimeout != def.TLSHandshakeTimeout ||
		tr.ExpectContinueTimeout != def.ExpectContinueTimeout {
		t.Errorf("got HTTP/2 %v, idle %d for %v, TLS handshake %v, 100-continue %v; want those of http.DefaultTransport",
			tr.ForceAttemptHTTP2, tr.MaxIdleConns, tr.IdleConnTimeout, tr.TLSHandshakeTimeout, tr.ExpectContinueTimeout)
	}
}

// TestTransportFields fails when http.Transport has a field that
// defaultTransport does not decide on: a new one may hold a dial function
// or a pool that must not be shared, as TLSNextProto does.
func TestTransportFields(t *testing.T) {
	decided := map[string]string{
		// Settings, copied from http.DefaultTransport.
		"Proxy": "copied", "OnProxyConnectResponse": "copied", "TLSClientConfig": "copied",
		"TLSHandshakeTimeout": "copied", "DisableKeepAlives": "copied", "DisableCompression": "copied",
		"MaxIdleConns": "copied", "MaxIdleConnsPerHost": "copied", "MaxConnsPerHost": "copied",
		"IdleConnTimeout": "copied", "ResponseHeaderTimeout": "copied", "ExpectContinueTimeout": "copied",
		"ProxyConnectHeader": "copied", "GetProxyConnectHeader": "copied", "MaxResponseHeaderBytes": "copied",
		"WriteBufferSize": "copied", "ReadBufferSize": "copied", "ForceAttemptHTTP2": "copied",
		"HTTP2": "copied", "Protocols": "copied",
		// Dials and other transports' pools: never copied.
		"DialContext": "bound", "Dial": "dropped", "DialTLS": "dropped", "DialTLSContext": "dropped",
		"TLSNextProto": "dropped",
	}
	for f := range reflect.TypeFor[http.Transport]().Fields() {
		if f.IsExported() && decided[f.Name] == "" {
			t.Errorf("http.Transport has field %s, which defaultTransport neither copies nor drops: decide", f.Name)
		}
	}
}

// TestNewTransportOwnsItsHTTP2 proves that a transport never takes the
// TLSNextProto of http.DefaultTransport, where another HTTP/2 pool may
// live, and that HTTP/2 turned off there stays off. Not parallel: it
// replaces http.DefaultTransport.
func TestNewTransportOwnsItsHTTP2(t *testing.T) {
	orig := http.DefaultTransport
	t.Cleanup(func() { http.DefaultTransport = orig })
	other := func(string, *tls.Conn) http.RoundTripper { return nil }
	for _, c := range []struct {
		name      string
		next      map[string]func(string, *tls.Conn) http.RoundTripper
		wantEmpty bool // TLSNextProto non-nil and empty: HTTP/2 off
	}{
		{"nil", nil, false},
		{"another HTTP/2", map[string]func(string, *tls.Conn) http.RoundTripper{"h2": other}, false},
		{"HTTP/2 off", map[string]func(string, *tls.Conn) http.RoundTripper{}, true},
	} {
		dt := &http.Transport{ForceAttemptHTTP2: c.name != "HTTP/2 off", TLSNextProto: c.next, Dial: func(string, string) (net.Conn, error) { return nil, nil }}
		http.DefaultTransport = dt
		tr := NewTransport(&Dialer{Index: 1})
		switch {
		case c.wantEmpty && (tr.TLSNextProto == nil || len(tr.TLSNextProto) != 0):
			t.Errorf("%s: TLSNextProto = %v, want an empty map (HTTP/2 off)", c.name, tr.TLSNextProto)
		case !c.wantEmpty && (tr.TLSNextProto != nil || !tr.ForceAttemptHTTP2):
			t.Errorf("%s: TLSNextProto = %v, ForceAttemptHTTP2 = %v; want nil and true: HTTP/2 of its own", c.name, tr.TLSNextProto, tr.ForceAttemptHTTP2)
		}
		//lint:ignore SA1019 checks that the deprecated dials are not copied
		if tr.Dial != nil || tr.DialTLS != nil || tr.DialTLSContext != nil {
			t.Errorf("%s: a dial function of http.DefaultTransport was copied", c.name)
		}
	}
}
