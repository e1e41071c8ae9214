package ifbind

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"golang.org/x/sys/unix"
)

// quiet is how long a socket must read nothing to show that traffic meant
// for another NIC did not reach it.
const quiet = 300 * time.Millisecond

// listenUDP is ListenUDP on index in the calling namespace, closed when t
// ends.
func listenUDP(t *testing.T, index int, network string, laddr netip.AddrPort) *net.UDPConn {
	t.Helper()
	lc := &ListenConfig{Index: index}
	c, err := lc.ListenUDP(context.Background(), network, laddr)
	if err != nil {
		t.Fatalf("failed to listen on %s %v bound to %d: %v", network, laddr, index, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// peerUDP is ListenUDP inside s's peer, bound to its eth0: the peers need a
// binding to send broadcasts and multicast, as they have no routes for them.
func peerUDP(t *testing.T, s *testnet.Side, network string, laddr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := s.Peer.Do(func() error {
		var err error
		lc := &ListenConfig{Index: s.PeerIndex}
		c, err = lc.ListenUDP(context.Background(), network, laddr)
		return err
	})
	if err != nil {
		t.Fatalf("failed to listen on %s %v in peer %s: %v", network, laddr, s.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// send writes msg from c to dst, failing t on error.
func send(t *testing.T, c *net.UDPConn, msg string, dst netip.AddrPort) {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort([]byte(msg), dst); err != nil {
		t.Fatalf("failed to send %q to %v from %v: %v", msg, dst, c.LocalAddr(), err)
	}
}

// recv reads one datagram from c, failing t when none comes.
func recv(t *testing.T, c *net.UDPConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("failed to receive on %v: %v", c.LocalAddr(), err)
	}
	return string(buf[:n])
}

// expect reads from c and checks that want came, then that nothing more did.
func expect(t *testing.T, c *net.UDPConn, name string, want ...string) {
	t.Helper()
	for _, w := range want {
		if got := recv(t, c); got != w {
			t.Errorf("%s received %q, want %q", name, got, w)
		}
	}
	if !testnet.Quiet(c, quiet) {
		t.Errorf("%s received more than %q", name, want)
	}
}

func TestListenUDPSamePortTwoNICs(t *testing.T) {
	tp := testnet.New(t)
	tp.WaitReady(t)
	for _, tc := range []struct {
		network string
		laddr   netip.Addr
		dsts    []netip.Addr
	}{
		{"udp4", netip.IPv4Unspecified(), []netip.Addr{testnet.ClientV4}},
		{"udp6", netip.IPv6Unspecified(), []netip.Addr{testnet.ClientV6}},
		{"udp", netip.Addr{}, []netip.Addr{testnet.ClientV4, testnet.ClientV6}},
		{"udp4", testnet.ClientV4, []netip.Addr{testnet.ClientV4}},
		{"udp6", testnet.ClientV6, []netip.Addr{testnet.ClientV6}},
	} {
		t.Run(tc.network+"/"+tc.laddr.String(), func(t *testing.T) {
			const port = 7100
			laddr := netip.AddrPortFrom(tc.laddr, port)
			ca := listenUDP(t, tp.A.Index, tc.network, laddr)
			cb := listenUDP(t, tp.B.Index, tc.network, laddr)
			var want []string
			for _, dst := range tc.dsts {
				network := "udp4"
				if dst.Is6() {
					network = "udp6"
				}
				for _, s := range tp.Sides() {
					pc := peerUDP(t, s, network, netip.AddrPort{})
					send(t, pc, s.Name+"-"+network, netip.AddrPortFrom(dst, port))
				}
				want = append(want, "-"+network)
			}
			for i, c := range []*net.UDPConn{ca, cb} {
				s := tp.Sides()[i]
				var names []string
				for _, w := range want {
					names = append(names, s.Name+w)
				}
				expect(t, c, "socket bound to "+s.LinkName, names...)
			}
		})
	}
}

func TestListenUDPBroadcastEgress(t *testing.T) {
	tp := testnet.New(t)
	tp.WaitReady(t)
	const port = 7101
	for _, s := range tp.Sides() {
		other := tp.A
		if s == tp.A {
			other = tp.B
		}
		t.Run(s.LinkName, func(t *testing.T) {
			here := peerUDP(t, s, "udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), port))
			there := peerUDP(t, other, "udp4", netip.AddrPortFrom(netip.IPv4Unspecified(), port))
			c := listenUDP(t, s.Index, "udp4", netip.AddrPort{})
			if on := sockoptInt(t, c, unix.SOL_SOCKET, unix.SO_BROADCAST); on != 1 {
				t.Errorf("SO_BROADCAST is %d, want 1", on)
			}
			for _, dst := range []string{"255.255.255.255", "192.0.2.255"} {
				send(t, c, "to "+dst, netip.AddrPortFrom(netip.MustParseAddr(dst), port))
			}
			expect(t, here, "peer "+s.Name, "to 255.255.255.255", "to 192.0.2.255")
			if !testnet.Quiet(there, quiet) {
				t.Errorf("peer %s received a broadcast sent bound to %s", other.Name, s.LinkName)
			}
		})
	}
}

func TestListenUDPBroadcastIngress(t *testing.T) {
	tp := testnet.New(t)
	tp.WaitReady(t)
	const port = 7102
	wild := netip.AddrPortFrom(netip.IPv4Unspecified(), port)
	conns := []*net.UDPConn{listenUDP(t, tp.A.Index, "udp4", wild), listenUDP(t, tp.B.Index, "udp4", wild)}
	dsts := []netip.Addr{netip.MustParseAddr("255.255.255.255"), netip.MustParseAddr("192.0.2.255")}
	for i, s := range tp.Sides() {
		r, err := NewIngressReader(conns[i])
		if err != nil {
			t.Fatalf("failed to make an ingress reader: %v", err)
		}
		pc := peerUDP(t, s, "udp4", netip.AddrPort{})
		for _, dst := range dsts {
			send(t, pc, s.Name, netip.AddrPortFrom(dst, port))
		}
		buf := make([]byte, 64)
		for _, dst := range dsts {
			conns[i].SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, in, err := r.ReadFrom(buf)
			if err != nil {
				t.Fatalf("socket bound to %s: failed to receive the broadcast to %v: %v", s.LinkName, dst, err)
			}
			if got := string(buf[:n]); got != s.Name {
				t.Errorf("socket bound to %s received %q, want %q", s.LinkName, got, s.Name)
			}
			if want := (Ingress{Index: s.Index, Dst: dst, Local: testnet.ClientV4}); in != want {
				t.Errorf("socket bound to %s: ingress %+v, want %+v", s.LinkName, in, want)
			}
		}
	}
	for i, s := range tp.Sides() {
		if !testnet.Quiet(conns[i], quiet) {
			t.Errorf("socket bound to %s received the other NIC's broadcast", s.LinkName)
		}
	}
}

func sockoptInt(t *testing.T, c *net.UDPConn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	if cerr := rc.Control(func(fd uintptr) { v, err = unix.GetsockoptInt(int(fd), level, opt) }); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatalf("failed to read socket option %d/%d: %v", level, opt, err)
	}
	return v
}

func TestMulticastByIndex(t *testing.T) {
	tp := testnet.New(t)
	tp.WaitReady(t)
	for _, tc := range []struct {
		network string
		group   netip.Addr
	}{
		// MCAST-TEST-NET (RFC 5771) and the IPv6 documentation groups
		// (RFC 6676).
		{"udp4", netip.MustParseAddr("233.252.0.1")},
		{"udp6", netip.MustParseAddr("ff02::db8:0:1")},
		{"udp", netip.MustParseAddr("233.252.0.2")},
		{"udp", netip.MustParseAddr("ff02::db8:0:2")},
	} {
		t.Run(tc.network+"/"+tc.group.String(), func(t *testing.T) {
			const port = 7103
			gaddr := netip.AddrPortFrom(tc.group, port)
			peerNet := "udp4"
			if tc.group.Is6() {
				peerNet = "udp6"
			}
			ca := listenUDP(t, tp.A.Index, tc.network, netip.AddrPortFrom(netip.Addr{}, port))
			cb := listenUDP(t, tp.B.Index, tc.network, netip.AddrPortFrom(netip.Addr{}, port))
			if err := JoinGroup(ca, tp.A.Index, tc.group); err != nil {
				t.Fatalf("failed to join %v on %s: %v", tc.group, tp.A.LinkName, err)
			}
			var peers []*net.UDPConn
			for _, s := range tp.Sides() {
				pc := peerUDP(t, s, peerNet, netip.AddrPortFrom(netip.Addr{}, port))
				if err := JoinGroup(pc, s.PeerIndex, tc.group); err != nil {
					t.Fatalf("failed to join %v in peer %s: %v", tc.group, s.Name, err)
				}
				if err := SetMulticastLoopback(pc, false); err != nil {
					t.Fatalf("failed to turn multicast loopback off in peer %s: %v", s.Name, err)
				}
				peers = append(peers, pc)
			}

			// Ingress: A joined, B did not; both peers send.
			send(t, peers[0], "a1", gaddr)
			send(t, peers[1], "b1", gaddr)
			expect(t, ca, "member bound to ifb-a", "a1")
			expect(t, cb, "non-member bound to ifb-b", []string{}...)

			// B joins on its own NIC: each hears its own peer only.
			if err := JoinGroup(cb, tp.B.Index, tc.group); err != nil {
				t.Fatalf("failed to join %v on %s: %v", tc.group, tp.B.LinkName, err)
			}
			send(t, peers[0], "a2", gaddr)
			send(t, peers[1], "b2", gaddr)
			expect(t, ca, "member bound to ifb-a", "a2")
			expect(t, cb, "member bound to ifb-b", "b2")

			// Egress goes through the bound NIC only, with loopback
			// as configured.
			for _, loop := range []bool{true, false} {
				if err := SetMulticastLoopback(ca, loop); err != nil {
					t.Fatalf("failed to set multicast loopback %v: %v", loop, err)
				}
				send(t, ca, "from a", gaddr)
				expect(t, peers[0], "peer a", "from a")
				if !testnet.Quiet(peers[1], quiet) {
					t.Errorf("peer b received a multicast sent bound to ifb-a")
				}
				if loop {
					expect(t, ca, "sender with loopback on", "from a")
				} else {
					expect(t, ca, "sender with loopback off", []string{}...)
				}
				if !testnet.Quiet(cb, quiet) {
					t.Errorf("socket bound to ifb-b received a multicast sent bound to ifb-a")
				}
			}

			// A leaves: it hears nothing more.
			if err := LeaveGroup(ca, tp.A.Index, tc.group); err != nil {
				t.Fatalf("failed to leave %v on %s: %v", tc.group, tp.A.LinkName, err)
			}
			send(t, peers[0], "a3", gaddr)
			expect(t, ca, "socket that left, bound to ifb-a", []string{}...)
		})
	}
}

func TestIngressReaderSharedSocket(t *testing.T) {
	tp := testnet.New(t)
	tp.WaitReady(t)
	const port = 7104
	for _, tc := range []struct {
		network string
		dst     netip.Addr
	}{
		{"udp4", testnet.ClientV4},
		{"udp6", testnet.ClientV6},
		{"udp", testnet.ClientV4}, // dual-stack: IPv4 arrives as IPV6_PKTINFO
		{"udp", testnet.ClientV6},
	} {
		t.Run(tc.network+"/"+tc.dst.String(), func(t *testing.T) {
			// One unbound wildcard socket shared by both NICs.
			c, err := net.ListenUDP(tc.network, &net.UDPAddr{Port: port})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r, err := NewIngressReader(c)
			if err != nil {
				t.Fatalf("failed to make an ingress reader: %v", err)
			}
			peerNet := "udp4"
			if tc.dst.Is6() {
				peerNet = "udp6"
			}
			byName := map[string]*testnet.Side{}
			for _, s := range tp.Sides() {
				send(t, peerUDP(t, s, peerNet, netip.AddrPort{}), s.Name, netip.AddrPortFrom(tc.dst, port))
				byName[s.Name] = s
			}
			buf := make([]byte, 64)
			for range tp.Sides() {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, _, in, err := r.ReadFrom(buf)
				if err != nil {
					t.Fatalf("failed to receive: %v", err)
				}
				s := byName[string(buf[:n])]
				if s == nil {
					t.Fatalf("received %q, want a or b", buf[:n])
				}
				if want := (Ingress{Index: s.Index, Dst: tc.dst, Local: tc.dst}); in != want {
					t.Errorf("datagram from peer %s: ingress %+v, want %+v", s.Name, in, want)
				}
			}
		})
	}
}

// loopbackIngress returns an IngressReader of a conn on 127.0.0.1, a conn
// that sends to it, and its address; both conns close when t ends.
func loopbackIngress(t *testing.T) (*IngressReader, *net.UDPConn, netip.AddrPort) {
	t.Helper()
	rc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	r, err := NewIngressReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	return r, sc, rc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestIngressReaderAllocs(t *testing.T) {
	testnet.Require(t)
	r, sc, dst := loopbackIngress(t)
	msg, buf := []byte("x"), make([]byte, 64)
	lo := 0
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := sc.WriteToUDPAddrPort(msg, dst); err != nil {
			t.Fatal(err)
		}
		_, _, in, err := r.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		lo = in.Index
	})
	if allocs != 0 {
		t.Errorf("a write and an ingress read allocate %v times, want 0", allocs)
	}
	if l, err := LinkByName("lo"); err != nil || lo != l.Index {
		t.Errorf("ingress index %d, want lo's (%v, %v)", lo, l, err)
	}
}

func TestListenUDPErrors(t *testing.T) {
	tp := testnet.New(t)
	tp.WaitReady(t)
	ctx := context.Background()
	var oe *net.OpError
	_, err := (&ListenConfig{}).ListenUDP(ctx, "udp4", netip.AddrPort{})
	if !errors.As(err, &oe) || oe.Op != "listen" || !errors.Is(err, syscall.EINVAL) {
		t.Errorf("listen with Index 0: got %v, want a listen *net.OpError wrapping EINVAL", err)
	}
	_, err = (&ListenConfig{Index: 1 << 20}).ListenUDP(ctx, "udp4", netip.AddrPort{})
	if !errors.Is(err, syscall.ENODEV) {
		t.Errorf("listen on a missing interface: got %v, want ENODEV", err)
	}
	var unk net.UnknownNetworkError
	if _, err = (&ListenConfig{Index: tp.A.Index}).ListenUDP(ctx, "tcp", netip.AddrPort{}); !errors.As(err, &unk) {
		t.Errorf("listen on tcp: got %v, want net.UnknownNetworkError", err)
	}
	c := listenUDP(t, tp.B.Index, "udp4", netip.AddrPort{})
	if err := JoinGroup(c, tp.A.Index, netip.MustParseAddr("233.252.0.1")); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("join on ifb-a by a socket bound to ifb-b: got %v, want EINVAL", err)
	}
	if err := JoinGroup(c, tp.B.Index, testnet.PeerV4); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("join of a unicast address: got %v, want EINVAL", err)
	}
	if err := JoinGroup(c, 0, netip.MustParseAddr("233.252.0.1")); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("join on index 0: got %v, want EINVAL", err)
	}
	if _, err := (&ListenConfig{Index: tp.A.Index}).ListenICMP(ctx, "udp", netip.Addr{}); !errors.As(err, &unk) {
		t.Errorf("ICMP on udp: got %v, want net.UnknownNetworkError", err)
	}
	if _, err := (&ListenConfig{}).ListenICMP(ctx, "ip4:icmp", netip.Addr{}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("ICMP with Index 0: got %v, want EINVAL", err)
	}
}

// TestListenPacketMulticastEgress shows that on Linux the binding alone,
// without IP_MULTICAST_IF, keeps multicast on the bound NIC: a conn from
// ListenPacket, which does not pin multicast egress as ListenUDP does.
func TestListenPacketMulticastEgress(t *testing.T) {
	tp := testnet.New(t)
	tp.WaitReady(t)
	const port = 7105
	for _, group := range []netip.Addr{netip.MustParseAddr("233.252.0.3"), netip.MustParseAddr("ff02::db8:0:3")} {
		network := "udp4"
		if group.Is6() {
			network = "udp6"
		}
		var peers []*net.UDPConn
		for _, s := range tp.Sides() {
			pc := peerUDP(t, s, network, netip.AddrPortFrom(netip.Addr{}, port))
			if err := JoinGroup(pc, s.PeerIndex, group); err != nil {
				t.Fatalf("failed to join %v in peer %s: %v", group, s.Name, err)
			}
			peers = append(peers, pc)
		}
		for i, s := range tp.Sides() {
			pc, err := (&ListenConfig{Index: s.Index}).ListenPacket(context.Background(), network, ":0")
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			send(t, pc.(*net.UDPConn), "via "+s.LinkName, netip.AddrPortFrom(group, port))
			expect(t, peers[i], "peer "+s.Name, "via "+s.LinkName)
			if !testnet.Quiet(peers[1-i], quiet) {
				t.Errorf("%v: the other peer received a multicast sent bound to %s", group, s.LinkName)
			}
		}
	}
}

// TestIngressReaderReply answers, through one unbound socket shared by both
// NICs, the datagrams of both peers, unicast and broadcast: each reply goes
// back through the NIC its datagram came in on, from the address it was
// sent to (for a broadcast, the NIC's own), and the other peer hears
// nothing.
func TestIngressReaderReply(t *testing.T) {
	tp := testnet.New(t)
	tp.WaitReady(t)
	for i, tc := range []struct {
		network   string
		dst, from netip.Addr // where the peers send, where the reply comes from
	}{
		{"udp4", testnet.ClientV4, testnet.ClientV4},
		{"udp4", netip.MustParseAddr("192.0.2.255"), testnet.ClientV4},
		{"udp4", netip.MustParseAddr("255.255.255.255"), testnet.ClientV4},
		{"udp6", testnet.ClientV6, testnet.ClientV6},
		{"udp", testnet.ClientV4, testnet.ClientV4},
		{"udp", netip.MustParseAddr("192.0.2.255"), testnet.ClientV4},
		{"udp", testnet.ClientV6, testnet.ClientV6},
	} {
		port := 7120 + i
		t.Run(tc.network+"/"+tc.dst.String(), func(t *testing.T) {
			t.Parallel()
			c, err := net.ListenUDP(tc.network, &net.UDPAddr{Port: port})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r, err := NewIngressReader(c)
			if err != nil {
				t.Fatalf("failed to make an ingress reader: %v", err)
			}
			peerNet := "udp4"
			if tc.dst.Is6() {
				peerNet = "udp6"
			}
			peers := map[string]*net.UDPConn{}
			for _, s := range tp.Sides() {
				peers[s.Name] = peerUDP(t, s, peerNet, netip.AddrPort{})
				send(t, peers[s.Name], s.Name, netip.AddrPortFrom(tc.dst, uint16(port)))
			}
			buf := make([]byte, 64)
			for range tp.Sides() {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, from, in, err := r.ReadFrom(buf)
				if err != nil {
					t.Fatalf("failed to receive: %v", err)
				}
				if _, err := r.Reply([]byte("re:"+string(buf[:n])), from, in); err != nil {
					t.Fatalf("failed to reply to %v through %d: %v", from, in.Index, err)
				}
			}
			for _, s := range tp.Sides() {
				pc := peers[s.Name]
				pc.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, src, err := pc.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("peer %s: no reply: %v", s.Name, err)
				}
				if got, want := string(buf[:n]), "re:"+s.Name; got != want {
					t.Errorf("peer %s received %q, want %q", s.Name, got, want)
				}
				if got := src.Addr().Unmap(); got != tc.from {
					t.Errorf("peer %s: reply from %v, want %v", s.Name, got, tc.from)
				}
				if !testnet.Quiet(pc, quiet) {
					t.Errorf("peer %s received more than its reply", s.Name)
				}
			}
		})
	}
}

// TestIngressReaderReplyRefuses checks what Reply refuses, on a conn bound
// to A: an ingress through B or through nothing, and a zone naming B.
func TestIngressReaderReplyRefuses(t *testing.T) {
	tp := testnet.New(t)
	c := listenUDP(t, tp.A.Index, "udp6", netip.AddrPort{})
	r, err := NewIngressReader(c)
	if err != nil {
		t.Fatal(err)
	}
	to := netip.AddrPortFrom(testnet.PeerV6, 7106)
	for _, tc := range []struct {
		name string
		to   netip.AddrPort
		in   Ingress
	}{
		{"through B", to, Ingress{Index: tp.B.Index, Dst: testnet.ClientV6}},
		{"through nothing", to, Ingress{}},
		{"to a zone of B", netip.AddrPortFrom(netip.MustParseAddr("fe80::2").WithZone(tp.B.LinkName), 7106), Ingress{Index: tp.A.Index}},
		{"to a numeric zone of B", netip.AddrPortFrom(netip.MustParseAddr("fe80::2").WithZone(strconv.Itoa(tp.B.Index)), 7106), Ingress{Index: tp.A.Index}},
	} {
		_, err := r.Reply([]byte("x"), tc.to, tc.in)
		var be *BindError
		if !errors.As(err, &be) || be.Index != tp.A.Index || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Reply %s: got %v, want a *BindError for %d, EINVAL", tc.name, err, tp.A.Index)
		}
	}
	// The zone of A itself, by name or number, is fine.
	for _, zone := range []string{tp.A.LinkName, strconv.Itoa(tp.A.Index)} {
		if err := checkZone(zone, tp.A.Index, ""); err != nil {
			t.Errorf("zone %s on a conn bound to %d: %v", zone, tp.A.Index, err)
		}
	}
	if err := checkZone("nosuchlink", tp.A.Index, ""); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("a zone naming no link: got %v, want EINVAL", err)
	}
}

func TestIngressReaderReplyAllocs(t *testing.T) {
	testnet.Require(t)
	r, sc, dst := loopbackIngress(t)
	if _, err := sc.WriteToUDPAddrPort([]byte("x"), dst); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_, from, in, err := r.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("re")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := r.Reply(msg, from, in); err != nil {
			t.Fatal(err)
		}
		if _, _, err := sc.ReadFromUDPAddrPort(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a reply allocates %v times, want 0", allocs)
	}
}
