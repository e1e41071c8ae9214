package ifbind

import (
	"context"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

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

	ln := acceptAndClose(b)
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

// interleave runs base and each of others in rounds of round calls, the
// order rotating from round to round, and reports for each of others the
// median of the rounds' time ratios to base, as "NAME/BASE", and each one's
// mean time per call. A round's parts run within a millisecond of each
// other, so changes in the machine's load, which move a whole benchmark run
// by tens of percent on a shared machine, fall on all of them alike.
func interleave(b *testing.B, round int, baseName string, base func() error, others ...namedFunc) {
	b.Helper()
	all := append([]namedFunc{{baseName, base}}, others...)
	ratios := make([][]float64, len(all))
	total := make([]time.Duration, len(all))
	times := make([]time.Duration, len(all))
	r := 0
	for b.Loop() {
		for k := range all {
			i := (k + r) % len(all)
			start := time.Now()
			for range round {
				if err := all[i].f(); err != nil {
					b.Fatal(err)
				}
			}
			times[i] = time.Since(start)
			total[i] += times[i]
		}
		r++
		for i := range all {
			ratios[i] = append(ratios[i], float64(times[i])/float64(times[0]))
		}
	}
	for i, nf := range all {
		if i > 0 {
			slices.Sort(ratios[i])
			b.ReportMetric(ratios[i][len(ratios[i])/2], nf.name+"/"+baseName)
		}
		b.ReportMetric(float64(total[i])/float64(b.N*round), nf.name+"-ns/op")
	}
}

type namedFunc struct {
	name string
	f    func() error
}

// BenchmarkDialRatio is BenchmarkDial interleaved: the figures of
// BENCHMARKS.md for ifbind against the floor and against by-name binding.
func BenchmarkDialRatio(b *testing.B) {
	index := loopbackIndex(b)
	ctx := context.Background()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatalf("failed to listen: %v", err)
	}
	defer pc.Close()
	addr := pc.LocalAddr().String()
	dial := func(d dialFunc) func() error {
		return func() error {
			c, err := d(ctx, "udp4", addr)
			if err != nil {
				return err
			}
			return c.Close()
		}
	}
	impls := dialImpls(index)
	interleave(b, 32, impls[0].name, dial(impls[0].dial),
		namedFunc{impls[1].name, dial(impls[1].dial)},
		namedFunc{impls[2].name, dial(impls[2].dial)})
}

// BenchmarkListenRatio is BenchmarkListen interleaved, for UDP.
func BenchmarkListenRatio(b *testing.B) {
	index := loopbackIndex(b)
	ctx := context.Background()
	listen := func(lc interface {
		ListenPacket(context.Context, string, string) (net.PacketConn, error)
	}) func() error {
		return func() error {
			pc, err := lc.ListenPacket(ctx, "udp4", "127.0.0.1:0")
			if err != nil {
				return err
			}
			return pc.Close()
		}
	}
	interleave(b, 32, "floor", listen(&net.ListenConfig{Control: floorControl(index)}),
		namedFunc{"ifbind", listen(&ListenConfig{Index: index})},
		namedFunc{"byname", listen(&net.ListenConfig{Control: byNameControl(index)})})
}

// acceptAndClose listens on 127.0.0.1 over TCP, and accepts and closes
// every connection until tb ends: the far end of the dial benchmarks, and
// of tests that dial over loopback.
func acceptAndClose(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("failed to listen: %v", err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}
