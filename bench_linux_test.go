package ifbind

import (
	"context"
	"net"
	"syscall"
	"testing"

	"github.com/ifbind/ifbind/internal/testnet"
	"golang.org/x/sys/unix"
)

// The benchmarks compare ifbind with the floor, a plain net.Dialer whose
// Control only calls setsockopt(SO_BINDTOIFINDEX), and with the common
// alternative, a per-socket index-to-name lookup (net.InterfaceByIndex)
// then SO_BINDTODEVICE. They bind to lo and talk to 127.0.0.1 inside the
// test namespace, so that the kernel's work is the same for all three.
// Compare them with: go test -run '^$' -bench . -count 10 | benchstat -col /impl -

// floorControl is the hand-written hook ifbind must not be slower than.
func floorControl(index int) func(string, string, syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, index)
		}); err != nil {
			return err
		}
		return serr
	}
}

// byNameControl looks the name up for every socket and binds by name.
func byNameControl(index int) func(string, string, syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		ifi, err := net.InterfaceByIndex(index)
		if err != nil {
			return err
		}
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.BindToDevice(int(fd), ifi.Name)
		}); err != nil {
			return err
		}
		return serr
	}
}

type dialFunc func(ctx context.Context, network, address string) (net.Conn, error)

func dialImpls(index int) []struct {
	name string
	dial dialFunc
} {
	return []struct {
		name string
		dial dialFunc
	}{
		{"floor", (&net.Dialer{Control: floorControl(index)}).DialContext},
		{"ifbind", (&Dialer{Index: index}).DialContext},
		{"byname", (&net.Dialer{Control: byNameControl(index)}).DialContext},
	}
}

func loopbackIndex(b *testing.B) int {
	testnet.Require(b)
	l, err := LinkByName("lo")
	if err != nil {
		b.Fatalf("failed to look up lo: %v", err)
	}
	return l.Index
}

func BenchmarkDial(b *testing.B) {
	index := loopbackIndex(b)
	ctx := context.Background()

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatalf("failed to listen: %v", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatalf("failed to listen: %v", err)
	}
	defer pc.Close()

	for _, proto := range []struct{ network, addr string }{
		{"udp", pc.LocalAddr().String()},
		{"tcp", ln.Addr().String()},
	} {
		for _, impl := range dialImpls(index) {
			b.Run("proto="+proto.network+"/impl="+impl.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					c, err := impl.dial(ctx, proto.network, proto.addr)
					if err != nil {
						b.Fatalf("failed to dial: %v", err)
					}
					if tc, ok := c.(*net.TCPConn); ok {
						tc.SetLinger(0) // no TIME_WAIT to run out of ports
					}
					c.Close()
				}
			})
		}
	}
}

func BenchmarkListen(b *testing.B) {
	index := loopbackIndex(b)
	ctx := context.Background()
	impls := []struct {
		name string
		lc   interface {
			Listen(context.Context, string, string) (net.Listener, error)
			ListenPacket(context.Context, string, string) (net.PacketConn, error)
		}
	}{
		{"floor", &net.ListenConfig{Control: floorControl(index)}},
		{"ifbind", &ListenConfig{Index: index}},
		{"byname", &net.ListenConfig{Control: byNameControl(index)}},
	}
	for _, impl := range impls {
		b.Run("proto=udp/impl="+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				pc, err := impl.lc.ListenPacket(ctx, "udp4", "127.0.0.1:0")
				if err != nil {
					b.Fatalf("failed to listen: %v", err)
				}
				pc.Close()
			}
		})
	}
	for _, impl := range impls {
		b.Run("proto=tcp/impl="+impl.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ln, err := impl.lc.Listen(ctx, "tcp4", "127.0.0.1:0")
				if err != nil {
					b.Fatalf("failed to listen: %v", err)
				}
				ln.Close()
			}
		})
	}
}

// BenchmarkAccept measures a dial and its accept on a listener made by each
// implementation; the binding is made once, so only the accept path differs.
func BenchmarkAccept(b *testing.B) {
	index := loopbackIndex(b)
	ctx := context.Background()
	for _, impl := range []struct {
		name string
		lc   interface {
			Listen(context.Context, string, string) (net.Listener, error)
		}
	}{
		{"floor", &net.ListenConfig{Control: floorControl(index)}},
		{"ifbind", &ListenConfig{Index: index}},
		{"byname", &net.ListenConfig{Control: byNameControl(index)}},
	} {
		b.Run("proto=tcp/impl="+impl.name, func(b *testing.B) {
			ln, err := impl.lc.Listen(ctx, "tcp4", "127.0.0.1:0")
			if err != nil {
				b.Fatalf("failed to listen: %v", err)
			}
			defer ln.Close()
			addr := ln.Addr().String()
			var d net.Dialer
			b.ReportAllocs()
			for b.Loop() {
				c, err := d.DialContext(ctx, "tcp4", addr)
				if err != nil {
					b.Fatalf("failed to dial: %v", err)
				}
				a, err := ln.Accept()
				if err != nil {
					b.Fatalf("failed to accept: %v", err)
				}
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
				a.Close()
			}
		})
	}
}
