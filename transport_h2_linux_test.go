package ifbind

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"golang.org/x/net/http2"
)

// TestNewTransportSharesNoHTTP2Pool proves that a transport made after
// golang.org/x/net/http2.ConfigureTransports was applied to
// http.DefaultTransport keeps its HTTP/2 connections to itself: the default
// transport first opens an unbound HTTP/2 connection to the peers' shared
// address, which lands in its pool, then a transport bound to each NIC
// sends requests to the same address. Each peer must see only its own
// transport's requests, over one connection of its own. Not parallel: it
// replaces http.DefaultTransport, restored when it ends.
func TestNewTransportSharesNoHTTP2Pool(t *testing.T) {
	tp := testnet.New(t)
	w := serveWeb(t, tp)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	orig := http.DefaultTransport
	dt := orig.(*http.Transport).Clone()
	dt.TLSClientConfig = &tls.Config{RootCAs: w.pool}
	//lint:ignore SA1019 the tuning step programs in the field still run
	if _, err := http2.ConfigureTransports(dt); err != nil {
		t.Fatalf("failed to configure x/net/http2 on the default transport: %v", err)
	}
	http.DefaultTransport = dt
	t.Cleanup(func() {
		http.DefaultTransport = orig
		dt.CloseIdleConnections()
	})

	url := "https://" + net.JoinHostPort(testnet.PeerV4.String(), httpsPort) + "/"
	// The unbound connection, in x/net's pool: to whichever peer the
	// routing table prefers.
	resp, body, err := get(ctx, &http.Client{Transport: dt}, url)
	if err != nil {
		t.Fatalf("failed to get %s through the default transport: %v", url, err)
	}
	if resp.ProtoMajor != 2 {
		t.Fatalf("the default transport spoke %s, want HTTP/2", resp.Proto)
	}
	unbound, _, _ := strings.Cut(body, " ")
	wantReq := map[string]int64{unbound: 1}
	wantConns := map[string]int64{unbound: 1}

	clients := map[string]*http.Client{}
	for _, s := range tp.Sides() {
		tr := NewTransport(&Dialer{Index: s.Index})
		tr.TLSClientConfig.RootCAs = w.pool
		defer tr.CloseIdleConnections()
		clients[s.Name] = &http.Client{Transport: tr}
	}
	const rounds = 3
	for range rounds {
		for _, s := range tp.Sides() {
			resp, body, err := get(ctx, clients[s.Name], url)
			if err != nil {
				t.Fatalf("failed to get %s through %s: %v", url, s.LinkName, err)
			}
			if resp.ProtoMajor != 2 {
				t.Errorf("through %s: %s, want HTTP/2", s.LinkName, resp.Proto)
			}
			if !strings.HasPrefix(body, s.Name+" ") {
				t.Errorf("through %s: answered %q, want from peer %s", s.LinkName, body, s.Name)
			}
			wantReq[s.Name]++
		}
	}
	for _, s := range tp.Sides() {
		wantConns[s.Name]++
		if got := w.requests[s.Name].Load(); got != wantReq[s.Name] {
			t.Errorf("peer %s served %d requests, want %d", s.Name, got, wantReq[s.Name])
		}
		if got := w.conns[s.Name].Load(); got != wantConns[s.Name] {
			t.Errorf("peer %s accepted %d connections, want %d: one per transport that reached it", s.Name, got, wantConns[s.Name])
		}
	}
}
