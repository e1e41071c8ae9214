package ifbind

import (
	"net/http"
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
