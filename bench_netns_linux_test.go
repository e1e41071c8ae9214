package ifbind

import (
	"context"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/ifbind/ifbind/internal/testnet"
	"golang.org/x/sys/unix"
)

// BenchmarkNetnsDialRatio compares, interleaved, three ways to dial
// 127.0.0.1 bound to lo of another namespace:
//
//   - inside: the same ifbind dial made by a thread that is in the
//     namespace already (the base);
//   - netns: ifbind.Dialer{Netns: path}, from the caller's namespace;
//   - naive: LockOSThread, setns into the namespace, the dial, setns back,
//     UnlockOSThread, on the caller's goroutine, per dial (what
//     vishvananda/netns users write), which keeps the thread locked for the
//     whole dial.
//
// The path is /proc/self/fd/N, the dearest to open (a /run/netns name is
// about half the cost, see BenchmarkNetnsParts). The *-ns/op figures are
// per round of 32 dials.
func BenchmarkNetnsDialRatio(b *testing.B) {
	testnet.Require(b)
	ns := testnet.NewNS(b)
	var ln net.Listener
	var pc net.PacketConn
	if err := ns.Do(func() (err error) {
		if ln, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp4", "127.0.0.1:0")
		return err
	}); err != nil {
		b.Fatalf("failed to listen in the namespace: %v", err)
	}
	defer ln.Close()
	defer pc.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	home, err := homeNetns()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const lo = 1 // in a namespace of its own
	for _, proto := range []struct{ network, addr string }{
		{"udp4", pc.LocalAddr().String()},
		{"tcp4", ln.Addr().String()},
	} {
		b.Run("proto="+proto.network[:3], func(b *testing.B) {
			dial := func(d *Dialer) func() error {
				return func() error {
					c, err := d.DialContext(ctx, proto.network, proto.addr)
					if err != nil {
						return err
					}
					if tc, ok := c.(*net.TCPConn); ok {
						tc.SetLinger(0)
					}
					return c.Close()
				}
			}
			plain := dial(&Dialer{Index: lo})
			netns := dial(&Dialer{Index: lo, Netns: ns.Path()})
			naive := func() error {
				runtime.LockOSThread()
				if err := unix.Setns(ns.FD(), unix.CLONE_NEWNET); err != nil {
					runtime.UnlockOSThread()
					return err
				}
				err := plain()
				if serr := unix.Setns(home, unix.CLONE_NEWNET); serr != nil {
					panic(serr) // never unlock a thread left elsewhere
				}
				runtime.UnlockOSThread()
				return err
			}
			// Each call is a round of dials, so that the base can put its
			// thread in the namespace once per round (1/round of a setns
			// pair per dial) and the others dial from an unlocked
			// goroutine, as callers do.
			const round = 32
			inside, rounds := netnsRounds(ns, home, round, plain)
			b.ReportAllocs()
			interleave(b, 1, "inside", inside,
				namedFunc{"netns", rounds(netns)},
				namedFunc{"naive", rounds(naive)})
		})
	}
}

// BenchmarkNetnsParts measures what a dial into another namespace adds:
// opening the namespace by path (per socket, so that a deleted one is
// noticed), the two setns calls, and the fresh goroutine locked to its
// thread.
func BenchmarkNetnsParts(b *testing.B) {
	testnet.Require(b)
	ns := testnet.NewNS(b)
	b.Run("part=open-proc-fd", func(b *testing.B) {
		for b.Loop() {
			fd, err := unix.Open(ns.Path(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		}
	})
	b.Run("part=setns-pair", func(b *testing.B) {
		home, err := homeNetns()
		if err != nil {
			b.Fatal(err)
		}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for b.Loop() {
			if err := unix.Setns(ns.FD(), unix.CLONE_NEWNET); err != nil {
				b.Fatal(err)
			}
			if err := unix.Setns(home, unix.CLONE_NEWNET); err != nil {
				panic(err)
			}
		}
	})
	b.Run("part=goroutine-locked", func(b *testing.B) {
		for b.Loop() {
			done := make(chan struct{})
			go func() {
				runtime.LockOSThread()
				close(done)
				runtime.UnlockOSThread()
			}()
			<-done
		}
	})
}

// BenchmarkNetnsThreadRatio measures the design ifbind did not choose, for
// a UDP dial: a goroutine locked to a thread that stays in the namespace
// and only makes sockets, handing each descriptor back to the caller, who
// binds and connects it at home and has net adopt it (net.FileConn). It is
// interleaved with the same dial made inside the namespace and with
// ifbind's Netns; a prototype, not a full implementation (no Control hook,
// no deadlines).
func BenchmarkNetnsThreadRatio(b *testing.B) {
	testnet.Require(b)
	ns := testnet.NewNS(b)
	var pc net.PacketConn
	if err := ns.Do(func() (err error) {
		pc, err = net.ListenPacket("udp4", "127.0.0.1:0")
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	home, err := homeNetns()
	if err != nil {
		b.Fatal(err)
	}
	addr := pc.LocalAddr().(*net.UDPAddr)
	sa := &unix.SockaddrInet4{Port: addr.Port, Addr: [4]byte(addr.IP.To4())}
	const lo = 1
	ctx := context.Background()

	// The socket maker: its thread enters the namespace once and only
	// calls socket(2) there.
	type made struct {
		fd  int
		err error
	}
	reqs, resps := make(chan struct{}), make(chan made)
	started := make(chan error)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(ns.FD(), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		started <- nil
		for range reqs {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
			resps <- made{fd, err}
		}
		if err := unix.Setns(home, unix.CLONE_NEWNET); err != nil {
			return // the thread dies locked
		}
		runtime.UnlockOSThread()
	}()
	if err := <-started; err != nil {
		b.Fatal(err)
	}
	defer close(reqs)
	viaThread := func() error {
		reqs <- struct{}{}
		m := <-resps
		if m.err != nil {
			return m.err
		}
		if err := unix.SetsockoptInt(m.fd, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, lo); err != nil {
			unix.Close(m.fd)
			return err
		}
		if err := unix.Connect(m.fd, sa); err != nil {
			unix.Close(m.fd)
			return err
		}
		f := os.NewFile(uintptr(m.fd), "udp")
		c, err := net.FileConn(f) // a dup, adopted by net's poller
		f.Close()
		if err != nil {
			return err
		}
		return c.Close()
	}
	dial := func(d *Dialer) func() error {
		return func() error {
			c, err := d.DialContext(ctx, "udp4", addr.String())
			if err != nil {
				return err
			}
			return c.Close()
		}
	}
	plain, netns := dial(&Dialer{Index: lo}), dial(&Dialer{Index: lo, Netns: ns.Path()})
	const round = 32
	inside, rounds := netnsRounds(ns, home, round, plain)
	interleave(b, 1, "inside", inside,
		namedFunc{"netns", rounds(netns)},
		namedFunc{"thread", rounds(viaThread)})
}

// netnsRounds returns the two ways a netns benchmark runs round dials:
// inside, on a thread that enters ns once for the round and goes back home
// after, and rounds, which runs a dial function round times from wherever
// the caller is.
func netnsRounds(ns *testnet.NS, home, round int, plain func() error) (inside func() error, rounds func(func() error) func() error) {
	inside = func() error {
		runtime.LockOSThread()
		if err := unix.Setns(ns.FD(), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			return err
		}
		var err error
		for range round {
			if err = plain(); err != nil {
				break
			}
		}
		if serr := unix.Setns(home, unix.CLONE_NEWNET); serr != nil {
			panic(serr) // a thread stranded in ns must not run on
		}
		runtime.UnlockOSThread()
		return err
	}
	rounds = func(f func() error) func() error {
		return func() error {
			for range round {
				if err := f(); err != nil {
					return err
				}
			}
			return nil
		}
	}
	return inside, rounds
}
