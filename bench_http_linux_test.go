package ifbind

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
)

// BenchmarkTransport measures a request on a new connection (keep-alives
// off, so that every request dials) to a peer over veth, through
// NewTransport and through a transport with a hand-written hook.
func BenchmarkTransport(b *testing.B) {
	tp := testnet.New(b)
	serveWeb(b, tp)
	url := "http://" + net.JoinHostPort(testnet.PeerV4.String(), httpPort) + "/"
	hand := defaultTransport()
	// The dialer of http.DefaultTransport, which NewTransport's mirrors.
	hand.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: floorControl(tp.A.Index)}).DialContext
	transports := []struct {
		name string
		tr   *http.Transport
	}{
		{"ifbind", NewTransport(&Dialer{Index: tp.A.Index})},
		{"handwritten", hand},
	}
	for _, c := range transports {
		c.tr.DisableKeepAlives = true
		client := &http.Client{Transport: c.tr}
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, body, err := get(context.Background(), client, url); err != nil || body[0] != 'a' {
					b.Fatalf("failed to get %s: %v, %q", url, err, body)
				}
			}
		})
	}
}

// BenchmarkResolver measures a lookup (one A query over UDP) of a name a
// peer's dnsmasq serves, through NewResolver and through a Go resolver
// whose Dial binds with a hand-written hook.
func BenchmarkResolver(b *testing.B) {
	tp := testnet.New(b)
	serveDNS(b, tp)
	ours, err := NewResolver(&Dialer{Index: tp.A.Index}, testnet.PeerV4.String())
	if err != nil {
		b.Fatal(err)
	}
	nd := &net.Dialer{Control: floorControl(tp.A.Index)}
	server := net.JoinHostPort(testnet.PeerV4.String(), "53")
	hand := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return nd.DialContext(ctx, network, server)
		},
	}
	want := whoAddr(tp.A.Name)
	for _, c := range []struct {
		name string
		r    *net.Resolver
	}{{"ifbind", ours}, {"handwritten", hand}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				got, err := c.r.LookupNetIP(context.Background(), "ip4", "who.ifbind.test")
				if err != nil || len(got) != 1 || got[0] != want {
					b.Fatalf("got %v, %v, want [%v]", got, err, want)
				}
			}
		})
	}
}
