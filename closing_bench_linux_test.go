package ifbind

import (
	"context"
	"net"
	"testing"

	"github.com/ifbind/ifbind/internal/testnet"
)

// BenchmarkPinClosingDialRatio interleaves UDP dials (socket, bind,
// connect, close) on loopback through a Pin and through a PinClosing of the
// same link, and reports the median of the rounds' ratios
// (closing/pin): the per-socket cost of being tracked, wrapped and dropped
// again on Close.
func BenchmarkPinClosingDialRatio(b *testing.B) {
	testnet.Require(b)
	m, err := NewMonitor(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	pin, err := m.Pin("lo")
	if err != nil {
		b.Fatal(err)
	}
	closing, err := m.PinClosing("lo")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	dial := func(d *Dialer) func() error {
		return func() error {
			c, err := d.DialContext(ctx, "udp4", "127.0.0.1:9")
			if err != nil {
				return err
			}
			return c.Close()
		}
	}
	interleave(b, 32, "pin", dial(&Dialer{Binding: pin}),
		namedFunc{"closing", dial(&Dialer{Binding: closing})})
}

// nopConn is a net.Conn whose Close does nothing, so that
// BenchmarkPinClosingTrack measures the tracking alone.
type nopConn struct{ net.Conn }

func (nopConn) Close() error { return nil }

// BenchmarkPinClosingTrack measures what a closing pin adds to each socket,
// without the socket: wrapping and tracking it, then the Close that drops
// it.
func BenchmarkPinClosingTrack(b *testing.B) {
	testnet.Require(b)
	m, err := NewMonitor(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	closing, err := m.PinClosing("lo")
	if err != nil {
		b.Fatal(err)
	}
	g := closingOf(closing)
	var c net.Conn = nopConn{}
	b.ReportAllocs()
	for b.Loop() {
		w, err := g.wrapConn(c, "dial", "udp4")
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
