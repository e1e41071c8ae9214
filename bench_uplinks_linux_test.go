package ifbind

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
)

// BenchmarkUplinksRatio measures what Uplinks adds to a dial when its
// primary is healthy: UDP and TCP dials to 127.0.0.1 through Uplinks of two
// uplinks (Follow lo twice), with each strategy, interleaved against a
// Dialer with the one binding Follow lo. (Race dials UDP as Fallback does:
// there is nothing to race.)
func BenchmarkUplinksRatio(b *testing.B) {
	testnet.Require(b)
	m, err := NewMonitor(context.Background())
	if err != nil {
		b.Fatalf("failed to start the monitor: %v", err)
	}
	defer m.Close()
	ctx := context.Background()
	ln := acceptAndClose(b)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	single := &Dialer{Binding: m.Follow("lo")}
	fallback := &Uplinks{Bindings: []Binding{m.Follow("lo"), m.Follow("lo")}}
	race := &Uplinks{Bindings: []Binding{m.Follow("lo"), m.Follow("lo")}, Strategy: Race}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, tc := range []struct {
		name, network, addr string
		ctx                 context.Context
	}{
		{"udp", "udp", pc.LocalAddr().String(), ctx},
		{"tcp", "tcp", ln.Addr().String(), ctx},
		// As an http.Transport dials: with a context that can be
		// cancelled, for which net watches every connect.
		{"tcp-cancelable", "tcp", ln.Addr().String(), cctx},
	} {
		dial := func(d func(context.Context, string, string) (net.Conn, error)) func() error {
			return func() error {
				c, err := d(tc.ctx, tc.network, tc.addr)
				if err != nil {
					return err
				}
				if tc, ok := c.(*net.TCPConn); ok {
					tc.SetLinger(0)
				}
				return c.Close()
			}
		}
		// singlectx is single with a context of its own that can be
		// cancelled, as Race gives the attempts after its primary (and
		// all of a dial to a name): what net's watch of such a context
		// costs a connect, which a healthy primary does not pay.
		singlectx := func() error {
			ctx, cancel := context.WithCancel(tc.ctx)
			defer cancel()
			c, err := single.DialContext(ctx, tc.network, tc.addr)
			if err != nil {
				return err
			}
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			return c.Close()
		}
		b.Run("proto="+tc.name, func(b *testing.B) {
			interleave(b, 32, "single", dial(single.DialContext),
				namedFunc{"singlectx", singlectx},
				namedFunc{"fallback", dial(fallback.DialContext)},
				namedFunc{"race", dial(race.DialContext)})
		})
	}
}

// BenchmarkUplinksFailover measures how long a TCP dial takes to connect
// when the primary uplink is black-holed (its peer drops every answer):
// Race with its default delay (300 ms), Fallback with a Timeout of 4 s (2 s
// to each uplink), and the loop people write by hand, a bound Dialer per
// uplink with a 2 s timeout each. It reports milliseconds per dial.
func BenchmarkUplinksFailover(b *testing.B) {
	tp := testnet.New(b)
	tp.ServeNames(b)
	tp.WaitReady(b)
	m, err := NewMonitor(context.Background())
	if err != nil {
		b.Fatalf("failed to start the monitor: %v", err)
	}
	defer m.Close()
	addr := netip.AddrPortFrom(testnet.PeerV4, testnet.Port).String()
	// Warm both paths, then cut the primary.
	for _, s := range tp.Sides() {
		c, err := (&Dialer{Index: s.Index}).Dial("tcp4", addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	blackhole(b, tp.A.Peer, testnet.ClientV4)
	bindings := []Binding{m.Follow(tp.A.LinkName), m.Follow(tp.B.LinkName)}
	race := &Uplinks{Bindings: bindings, Strategy: Race}
	fallback := &Uplinks{Bindings: bindings}
	fallback.Timeout = 4 * time.Second
	loop := func(ctx context.Context, network, address string) (net.Conn, error) {
		var err error
		for _, index := range []int{tp.A.Index, tp.B.Index} {
			d := &Dialer{Index: index}
			d.Timeout = 2 * time.Second
			var c net.Conn
			if c, err = d.DialContext(ctx, network, address); err == nil {
				return c, nil
			}
		}
		return nil, err
	}
	for _, impl := range []struct {
		name string
		dial func(context.Context, string, string) (net.Conn, error)
	}{
		{"race", race.DialContext},
		{"fallback", fallback.DialContext},
		{"loop", loop},
	} {
		b.Run("impl="+impl.name, func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				start := time.Now()
				c, err := impl.dial(context.Background(), "tcp", addr)
				total += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				if got, err := testnet.Ask(c); err != nil || got != "b" {
					b.Fatalf("answered %q, %v; want b", got, err)
				}
				c.Close()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/dial")
		})
	}
}

// BenchmarkUplinksRaceBookkeeping measures what Race adds to a dial by
// itself, without any socket: dialUplinks over two healthy uplinks with a
// dial function that returns at once, for each strategy. It is the part of
// BenchmarkUplinksRatio's Race overhead that ifbind's own code spends.
func BenchmarkUplinksRaceBookkeeping(b *testing.B) {
	testnet.Require(b)
	m, err := NewMonitor(context.Background())
	if err != nil {
		b.Fatalf("failed to start the monitor: %v", err)
	}
	defer m.Close()
	do := func(context.Context, *Dialer, string, string) (net.Conn, error) { return noopConn{}, nil }
	for _, s := range []Strategy{Fallback, Race} {
		u := &Uplinks{Bindings: []Binding{m.Follow("lo"), m.Follow("lo")}, Strategy: s}
		b.Run("strategy="+s.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dialUplinks(context.Background(), u, "tcp", "127.0.0.1:80", needOf("tcp", "127.0.0.1:80"), do); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// noopConn is a conn that costs nothing to close.
type noopConn struct{ net.Conn }

func (noopConn) Close() error { return nil }
