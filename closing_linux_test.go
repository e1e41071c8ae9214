package ifbind

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
)

// A wire is two namespaces of a test's own joined by a veth pair: link c0
// (198.51.100.1/24) in X, its peer p0 (198.51.100.2/24) in P, both up.
type wire struct {
	x, p   *testnet.NS
	hx, hp *netlink.Handle
	index  int // of c0, in X
}

func newWire(t testing.TB) *wire {
	t.Helper()
	w := &wire{}
	w.x, w.hx = linkNS(t)
	w.p, w.hp = linkNS(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "c0"}, PeerName: "p0", PeerNamespace: netlink.NsFd(w.p.FD())}
	if err := w.hx.LinkAdd(veth); err != nil {
		t.Fatalf("failed to add veth c0: %v", err)
	}
	for _, end := range []struct {
		h          *netlink.Handle
		name, addr string
	}{{w.hx, "c0", "198.51.100.1/24"}, {w.hp, "p0", "198.51.100.2/24"}} {
		l, err := end.h.LinkByName(end.name)
		if err != nil {
			t.Fatalf("failed to look up %s: %v", end.name, err)
		}
		if end.name == "c0" {
			w.index = l.Attrs().Index
		}
		addr, _ := netlink.ParseAddr(end.addr)
		if err := end.h.AddrAdd(l, addr); err != nil {
			t.Fatalf("failed to add %s to %s: %v", end.addr, end.name, err)
		}
		if err := end.h.LinkSetUp(l); err != nil {
			t.Fatalf("failed to set %s up: %v", end.name, err)
		}
	}
	return w
}

// in runs f in namespace ns, failing t on error.
func in(t testing.TB, ns *testnet.NS, f func() error) {
	t.Helper()
	if err := ns.Do(f); err != nil {
		t.Fatal(err)
	}
}

// TestPinClosing blocks every kind of socket a closing pin makes in a read
// or an Accept, then takes the link away, by deleting it or by moving it to
// another namespace (which the monitor sees as RTM_DELLINK): every blocked
// call returns ErrLinkGone, long before the deadline set as a safety net,
// and the monitor tracks nothing afterwards. (Not parallel: the leak check
// of testnet, which every namespace test gets, would see the goroutines of
// the other tests.)
func TestPinClosing(t *testing.T) {
	for _, how := range []string{"delete", "move"} {
		t.Run(how, func(t *testing.T) {
			testnet.CheckLeaks(t)
			w := newWire(t)
			m := monitorIn(t, w.x, monitorConfig{})
			b, err := m.PinClosing("c0")
			if err != nil {
				t.Fatalf("failed to pin c0: %v", err)
			}
			ctx := context.Background()

			// The peer: a TCP server that holds what it accepts, silent.
			var peerLn net.Listener
			in(t, w.p, func() (err error) { peerLn, err = net.Listen("tcp4", "198.51.100.2:80"); return err })
			defer peerLn.Close()
			held := make(chan net.Conn, 2)
			go func() {
				for {
					c, err := peerLn.Accept()
					if err != nil {
						close(held)
						return
					}
					held <- c
				}
			}()
			defer func() {
				peerLn.Close()
				for c := range held {
					c.Close()
				}
			}()

			// Our side: a dialed conn, a listener and the conn it
			// accepts, and a UDP packet conn, all through the pin.
			var client net.Conn
			var ln net.Listener
			var pc net.PacketConn
			in(t, w.x, func() (err error) {
				if client, err = (&Dialer{Binding: b}).DialContext(ctx, "tcp4", "198.51.100.2:80"); err != nil {
					return err
				}
				lc := &ListenConfig{Binding: b}
				if ln, err = lc.Listen(ctx, "tcp4", ":81"); err != nil {
					return err
				}
				pc, err = lc.ListenPacket(ctx, "udp4", ":82")
				return err
			})
			defer client.Close()
			defer ln.Close()
			defer pc.Close()
			var fromPeer net.Conn
			in(t, w.p, func() (err error) { fromPeer, err = net.Dial("tcp4", "198.51.100.1:81"); return err })
			defer fromPeer.Close()
			server, err := ln.Accept()
			if err != nil {
				t.Fatalf("failed to accept: %v", err)
			}
			defer server.Close()
			if got, want := boundIndexOf(t, client.(interface{ NetConn() net.Conn }).NetConn().(*net.TCPConn)), w.index; got != want {
				t.Fatalf("client bound to %d, want %d", got, want)
			}
			if g, s := m.tracked(); g != 1 || s != 4 {
				t.Fatalf("monitor tracks %d guards and %d sockets, want 1 and 4", g, s)
			}

			// Block a read on each conn and an Accept, with a deadline
			// far away that only a broken guard would reach.
			type result struct {
				what string
				err  error
			}
			results := make(chan result, 4)
			safety := time.Now().Add(20 * time.Second)
			for _, c := range []struct {
				what string
				c    net.Conn
			}{{"client Read", client}, {"accepted Read", server}} {
				c.c.SetReadDeadline(safety)
				go func() {
					_, err := c.c.Read(make([]byte, 64))
					results <- result{c.what, err}
				}()
			}
			pc.SetReadDeadline(safety)
			go func() {
				_, _, err := pc.ReadFrom(make([]byte, 64))
				results <- result{"ReadFrom", err}
			}()
			ln.(interface{ NetListener() net.Listener }).NetListener().(*net.TCPListener).SetDeadline(safety)
			go func() {
				c, err := ln.Accept()
				if err == nil {
					c.Close()
				}
				results <- result{"Accept", err}
			}()
			time.Sleep(50 * time.Millisecond) // let them block; not needed for correctness

			start := time.Now()
			l, err := w.hx.LinkByName("c0")
			if err != nil {
				t.Fatalf("failed to look up c0: %v", err)
			}
			if how == "delete" {
				err = w.hx.LinkDel(l)
			} else {
				elsewhere := testnet.NewNS(t)
				err = w.hx.LinkSetNsFd(l, elsewhere.FD())
			}
			if err != nil {
				t.Fatalf("failed to %s c0: %v", how, err)
			}

			for range 4 {
				r := <-results
				if !errors.Is(r.err, ErrLinkGone) || !errors.Is(r.err, syscall.ENODEV) {
					t.Errorf("%s after c0 went (%s): got %v, want ErrLinkGone", r.what, how, r.err)
				}
				var oe *net.OpError
				if !errors.As(r.err, &oe) {
					t.Errorf("%s: error %v is not a *net.OpError", r.what, r.err)
				}
			}
			t.Logf("%s: every blocked call returned %v after the %s began", how, time.Since(start), how)
			if _, err := client.Write([]byte("x")); !errors.Is(err, ErrLinkGone) {
				t.Errorf("client Write after c0 went: got %v, want ErrLinkGone", err)
			}
			if _, err := pc.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(198, 51, 100, 2), Port: 9}); !errors.Is(err, ErrLinkGone) {
				t.Errorf("WriteTo after c0 went: got %v, want ErrLinkGone", err)
			}
			if err := server.SetDeadline(time.Now().Add(time.Second)); !errors.Is(err, ErrLinkGone) {
				t.Errorf("accepted SetDeadline after c0 went: got %v, want ErrLinkGone", err)
			}
			if err := client.Close(); !errors.Is(err, ErrLinkGone) {
				t.Errorf("client Close after c0 went: got %v, want ErrLinkGone", err)
			}
			if g, s := m.tracked(); g != 0 || s != 0 {
				t.Errorf("after c0 went, the monitor tracks %d guards and %d sockets, want none", g, s)
			}
			// A new socket through the pin fails closed, as with Pin.
			in(t, w.x, func() error {
				if _, err := (&ListenConfig{Binding: b}).ListenPacket(ctx, "udp4", ":83"); !errors.Is(err, ErrLinkGone) {
					t.Errorf("listen after c0 went: got %v, want ErrLinkGone", err)
				}
				return nil
			})
		})
	}
}

// TestPinClosingTracksOnlyOpenSockets opens and closes sockets of every
// kind through a closing pin: each Close drops the socket from the monitor
// at once, a conn dropped without Close is dropped (and closed) by the
// garbage collector, and sockets closed before the link goes are left alone.
// Once the monitor stops, the sockets still open are closed with
// net.ErrClosed.
func TestPinClosingTracksOnlyOpenSockets(t *testing.T) {
	testnet.CheckLeaks(t)
	w := newWire(t)
	m := monitorIn(t, w.x, monitorConfig{})
	b, err := m.PinClosing("c0")
	if err != nil {
		t.Fatalf("failed to pin c0: %v", err)
	}
	ctx := context.Background()
	var peerLn net.Listener
	in(t, w.p, func() (err error) { peerLn, err = net.Listen("tcp4", "198.51.100.2:80"); return err })
	defer peerLn.Close()
	go func() {
		for {
			c, err := peerLn.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	want := func(stage string, socks int) {
		t.Helper()
		if g, s := m.tracked(); s != socks || (g == 0) != (socks == 0) {
			t.Fatalf("%s: the monitor tracks %d guards and %d sockets, want %d sockets", stage, g, s, socks)
		}
	}
	d := &Dialer{Binding: b}
	lc := &ListenConfig{Binding: b}
	for i := range 20 {
		var tc, uc, in_ net.Conn
		var ln net.Listener
		var pc net.PacketConn
		in(t, w.x, func() (err error) {
			if tc, err = d.DialContext(ctx, "tcp4", "198.51.100.2:80"); err != nil {
				return err
			}
			if uc, err = d.DialContext(ctx, "udp4", "198.51.100.2:9"); err != nil {
				return err
			}
			if ln, err = lc.Listen(ctx, "tcp4", "198.51.100.1:0"); err != nil {
				return err
			}
			pc, err = lc.ListenPacket(ctx, "udp4", ":0")
			return err
		})
		if _, ok := uc.(net.PacketConn); !ok {
			t.Errorf("a UDP conn through a closing pin is %T, not a net.PacketConn", uc)
		}
		// What net/http and io.Copy look for on a *net.TCPConn.
		if _, ok := tc.(interface {
			io.ReaderFrom
			io.WriterTo
			CloseWrite() error
			CloseRead() error
		}); !ok {
			t.Errorf("a TCP conn through a closing pin is %T, without ReadFrom, WriteTo, CloseWrite and CloseRead", tc)
		} else if i == 0 {
			// The peer closes what it accepts: shut our side, then
			// read to its end of stream.
			if err := tc.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				t.Errorf("CloseWrite: %v", err)
			}
			if n, err := tc.(io.WriterTo).WriteTo(io.Discard); n != 0 || err != nil {
				t.Errorf("WriteTo: got %d, %v; want 0, nil (the peer's end of stream)", n, err)
			}
		}
		want("open", 4)
		in(t, w.p, func() error {
			c, err := net.Dial("tcp4", ln.Addr().String())
			if err == nil {
				c.Close()
			}
			return err
		})
		if in_, err = ln.Accept(); err != nil {
			t.Fatalf("failed to accept: %v", err)
		}
		want("accepted", 5)
		for n, c := range []interface{ Close() error }{tc, uc, ln, pc, in_} {
			if err := c.Close(); err != nil {
				t.Errorf("round %d: Close: %v", i, err)
			}
			want("closing", 4-n)
		}
	}

	// ICMP conns are tracked too.
	in(t, w.x, func() error {
		c, err := lc.ListenICMP(ctx, "ip4:icmp", netip.Addr{})
		if err != nil {
			return err
		}
		want("ICMP open", 1)
		if _, ok := c.(interface{ NetConn() net.Conn }); !ok {
			t.Errorf("an ICMP conn through a closing pin is %T, not a wrapper", c)
		}
		return c.Close()
	})
	want("ICMP closed", 0)

	// Dropped without Close: the garbage collector closes and drops it.
	in(t, w.x, func() error {
		_, err := lc.ListenPacket(ctx, "udp4", ":0")
		return err
	})
	want("dropped", 1)
	for i := 0; ; i++ {
		runtime.GC()
		if _, s := m.tracked(); s == 0 {
			break
		}
		if i == 100 {
			t.Fatalf("a dropped packet conn is still tracked after %d collections", i)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The monitor stops: what is open is closed, with net.ErrClosed.
	var pc net.PacketConn
	in(t, w.x, func() (err error) { pc, err = lc.ListenPacket(ctx, "udp4", ":0"); return err })
	defer pc.Close()
	pc.SetReadDeadline(time.Now().Add(20 * time.Second))
	done := make(chan error, 1)
	go func() { _, _, err := pc.ReadFrom(make([]byte, 8)); done <- err }()
	m.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadFrom when the monitor stopped: got %v, want net.ErrClosed", err)
	}
	want("monitor stopped", 0)
}

// TestPinClosingRefuses: the methods that must return net's concrete types,
// and the copies of NetDialer and NetListenConfig, refuse a closing pin
// with ErrUnsupported, and make no socket.
func TestPinClosingRefuses(t *testing.T) {
	w := newWire(t)
	m := monitorIn(t, w.x, monitorConfig{})
	b, err := m.PinClosing("c0")
	if err != nil {
		t.Fatalf("failed to pin c0: %v", err)
	}
	if got, want := b.String(), "pin c0 (index "+strconv.Itoa(w.index)+"), closing"; got != want {
		t.Errorf("String: got %q, want %q", got, want)
	}
	ctx := context.Background()
	d := &Dialer{Binding: b}
	lc := &ListenConfig{Binding: b}
	raddr := netip.MustParseAddrPort("198.51.100.2:9")
	in(t, w.x, func() error {
		for name, err := range map[string]error{
			"DialTCP":         second(d.DialTCP(ctx, "tcp4", netip.AddrPort{}, raddr)),
			"DialUDP":         second(d.DialUDP(ctx, "udp4", netip.AddrPort{}, raddr)),
			"DialIP":          second(d.DialIP(ctx, "ip4:253", netip.Addr{}, raddr.Addr())),
			"ListenUDP":       second(lc.ListenUDP(ctx, "udp4", netip.AddrPort{})),
			"NetDialer":       second(d.NetDialer().DialContext(ctx, "udp4", raddr.String())),
			"NetListenConfig": second(lc.NetListenConfig().ListenPacket(ctx, "udp4", ":0")),
		} {
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), name+" cannot be used with a closing pin") {
				t.Errorf("%s with a closing pin: got %v, want ErrUnsupported", name, err)
			}
			var be *BindError
			if !errors.As(err, &be) || be.Index != w.index {
				t.Errorf("%s: error %v does not name index %d in a *BindError", name, err, w.index)
			}
		}
		return nil
	})
	if _, s := m.tracked(); s != 0 {
		t.Errorf("the monitor tracks %d sockets, want none", s)
	}
}

// TestIndexComesBackByMove: a link moved in from another namespace keeps
// its index there. Once c0 has left (moved out) and w1, which had c0's
// index in its own namespace, has moved in, a listener made earlier with
// Index hears w1's traffic and a new ListenConfig with that Index binds w1
// (documented), while a pin fails new sockets with ErrLinkGone.
func TestIndexComesBackByMove(t *testing.T) {
	w := newWire(t) // c0 in X, its peer p0 in P
	index := w.index
	m := monitorIn(t, w.x, monitorConfig{})
	pin, err := m.Pin("c0")
	if err != nil {
		t.Fatalf("failed to pin c0: %v", err)
	}
	// w1 is born in namespace Y with c0's index; its peer w1p in P2.
	_, hy := linkNS(t)
	p2, hp2 := linkNS(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "w1", Index: index}, PeerName: "w1p", PeerNamespace: netlink.NsFd(p2.FD())}
	if err := hy.LinkAdd(veth); err != nil {
		t.Fatalf("failed to add w1 with index %d in another namespace: %v", index, err)
	}

	ctx := context.Background()
	var old net.PacketConn
	var oldLn net.Listener
	in(t, w.x, func() (err error) {
		if old, err = (&ListenConfig{Index: index}).ListenPacket(ctx, "udp4", ":5000"); err != nil {
			return err
		}
		oldLn, err = (&ListenConfig{Index: index}).Listen(ctx, "tcp4", ":5000")
		return err
	})
	defer old.Close()
	defer oldLn.Close()

	// c0 leaves, w1 moves in.
	gone := testnet.NewNS(t)
	c0, err := w.hx.LinkByName("c0")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.hx.LinkSetNsFd(c0, gone.FD()); err != nil {
		t.Fatalf("failed to move c0 out: %v", err)
	}
	w1, err := hy.LinkByName("w1")
	if err != nil {
		t.Fatal(err)
	}
	if err := hy.LinkSetNsFd(w1, w.x.FD()); err != nil {
		t.Fatalf("failed to move w1 in: %v", err)
	}
	if w1, err = w.hx.LinkByName("w1"); err != nil || w1.Attrs().Index != index {
		t.Fatalf("w1 in X: %v, %v; want index %d", w1, err, index)
	}
	for _, end := range []struct {
		h          *netlink.Handle
		name, addr string
	}{{w.hx, "w1", "203.0.113.1/24"}, {hp2, "w1p", "203.0.113.2/24"}} {
		l, err := end.h.LinkByName(end.name)
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := netlink.ParseAddr(end.addr)
		if err := end.h.AddrAdd(l, addr); err != nil {
			t.Fatalf("failed to add %s to %s: %v", end.addr, end.name, err)
		}
		if err := end.h.LinkSetUp(l); err != nil {
			t.Fatalf("failed to set %s up: %v", end.name, err)
		}
	}
	settle(t, m, "w1 moved in", hasName("w1"))

	// The old listener hears w1's peer.
	in(t, p2, func() error {
		c, err := net.Dial("udp4", "203.0.113.1:5000")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("w1"))
		return err
	})
	old.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 8)
	if n, _, err := old.ReadFrom(buf); err != nil || string(buf[:n]) != "w1" {
		t.Errorf("listener made with Index %d before c0 left: got %q, %v; want w1's datagram", index, buf[:n], err)
	}
	var dialed net.Conn
	in(t, p2, func() (err error) { dialed, err = net.Dial("tcp4", "203.0.113.1:5000"); return err })
	defer dialed.Close()
	oldLn.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	if c, err := oldLn.Accept(); err != nil {
		t.Errorf("TCP listener made with Index %d before c0 left: got %v, want w1's connection", index, err)
	} else {
		c.Close()
	}
	// A new Index listen binds w1; the pin fails closed.
	if got, err := listenIn(t, w.x, &ListenConfig{Index: index}); err != nil || got != index {
		t.Errorf("new listen with Index %d: bound to %d, %v; want w1 (%d)", index, got, err, index)
	}
	if _, err := listenIn(t, w.x, &ListenConfig{Binding: pin}); !errors.Is(err, ErrLinkGone) {
		t.Errorf("new listen through the pin of c0: got %v, want ErrLinkGone", err)
	}
	if _, err := dialIn(t, w.x, &Dialer{Binding: pin}); !errors.Is(err, ErrLinkGone) {
		t.Errorf("new dial through the pin of c0: got %v, want ErrLinkGone", err)
	}
}

// second returns the error of a call that returns two values.
func second[T any](_ T, err error) error { return err }
