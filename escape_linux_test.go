package ifbind

// The escape routes: every way known to us in which the kernel may choose,
// for a packet of a socket that ifbind bound to NIC A, another NIC than A.
// Each row sets its trap up on one shared topology, shows where it can that
// the trap works (an unbound socket's packet crosses B), then counts, with
// a capture on B's peer side, the packets of ifbind's sockets that crossed
// B: none. The rows the kernel allows and ifbind cannot stop are here too,
// asserted as the documented behaviour (the README's "What the binding
// covers, and what it cannot"), so that this test fails when it changes.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// What a row proves.
const (
	escClosed   = "closed"         // the binding holds: nothing crosses B
	escRefused  = "refused"        // ifbind sees the override and refuses it
	escKernel   = "kernel refuses" // the kernel refuses the override
	escDocument = "allowed"        // the kernel allows it, ifbind cannot see it: documented
)

// Link-local addresses given to the client NICs and to their peers.
var (
	escLLClient = netip.MustParseAddr("fe80::1")
	escLLPeer   = netip.MustParseAddr("fe80::2")
	// escOnlyB is an address that only B carries, for one row.
	escOnlyB = netip.MustParseAddr("198.51.100.1")
)

func TestEscapeRoutes(t *testing.T) {
	tp := testnet.New(t)
	h, err := netlink.NewHandle()
	if err != nil {
		t.Fatalf("failed to open netlink: %v", err)
	}
	defer h.Close()
	for _, s := range tp.Sides() {
		escAddr(t, h, s.Index, netip.PrefixFrom(escLLClient, 64))
		ph, err := netlink.NewHandleAt(netns.NsHandle(s.Peer.FD()))
		if err != nil {
			t.Fatalf("failed to open netlink in peer %s: %v", s.Name, err)
		}
		escAddr(t, ph, s.PeerIndex, netip.PrefixFrom(escLLPeer, 64))
		ph.Close()
	}
	tp.WaitReady(t)
	e := &escape{tp: tp, h: h,
		capA: testnet.StartCapture(t, tp.A.Peer, tp.A.PeerIndex),
		capB: testnet.StartCapture(t, tp.B.Peer, tp.B.PeerIndex),
	}
	for _, row := range escapeRows {
		t.Run(row.kind+"/"+row.name, func(t *testing.T) { row.run(t, e) })
	}
}

// escapeRows are run in order, on one topology: the last one deletes A.
var escapeRows = []struct {
	name string
	kind string
	run  func(t *testing.T, e *escape)
}{
	{"a more specific route via B", escClosed, func(t *testing.T, e *escape) {
		e.route(t, &netlink.Route{Dst: escNet(testnet.PeerV4, 32), LinkIndex: e.tp.B.Index, Priority: 1})
		e.route(t, &netlink.Route{Dst: escNet(testnet.PeerV6, 128), LinkIndex: e.tp.B.Index, Priority: 1})
		e.boundDialsStayOnA(t, &net.Dialer{})
	}},
	{"a route with a lower metric via B", escClosed, func(t *testing.T, e *escape) {
		// The connected routes of both NICs have the best metric
		// there is (0 for IPv4, 256 for IPv6): give A's a worse one
		// and B's a better one, so that unbound traffic prefers B.
		for _, p := range []netip.Prefix{netip.PrefixFrom(testnet.PeerV4, testnet.BitsV4).Masked(), netip.PrefixFrom(testnet.PeerV6, testnet.BitsV6).Masked()} {
			e.reroute(t, p, e.tp.A.Index, 300)
			e.reroute(t, p, e.tp.B.Index, 100)
		}
		e.boundDialsStayOnA(t, &net.Dialer{})
	}},
	{"an ip rule sending the destination to a table via B", escClosed, func(t *testing.T, e *escape) {
		for _, p := range []netip.Addr{testnet.PeerV4, testnet.PeerV6} {
			e.route(t, &netlink.Route{Dst: escNet(p, p.BitLen()), LinkIndex: e.tp.B.Index, Table: 100})
			r := netlink.NewRule()
			r.Dst, r.Table, r.Priority = escNet(p, p.BitLen()), 100, 100
			r.Family = escFamily(p)
			e.rule(t, r)
		}
		e.boundDialsStayOnA(t, &net.Dialer{})
	}},
	{"a source address only B owns, with a rule from it via B", escClosed, func(t *testing.T, e *escape) {
		escAddr(t, e.h, e.tp.B.Index, netip.PrefixFrom(escOnlyB, 32))
		t.Cleanup(func() {
			if l, err := e.h.LinkByIndex(e.tp.B.Index); err == nil {
				e.h.AddrDel(l, &netlink.Addr{IPNet: escNet(escOnlyB, 32)})
			}
		})
		e.route(t, &netlink.Route{Dst: escNet(testnet.PeerV4, 32), LinkIndex: e.tp.B.Index, Table: 101})
		r := netlink.NewRule()
		r.Src, r.Table, r.Priority, r.Family = escNet(escOnlyB, 32), 101, 101, unix.AF_INET
		e.rule(t, r)
		local := &net.UDPAddr{IP: escOnlyB.AsSlice()}
		// The trap: an unbound socket with that source leaves by B.
		e.udpCrossesB(t, &net.Dialer{LocalAddr: local}, testnet.PeerV4)
		// Bound to A, it leaves by A, with B's address as its source.
		d := &Dialer{Index: e.tp.A.Index}
		d.LocalAddr = local
		e.udpStaysOnA(t, d, testnet.PeerV4)
	}},
	{"a multicast route via B", escClosed, func(t *testing.T, e *escape) {
		group4 := netip.AddrPortFrom(netip.MustParseAddr("239.1.2.3"), 7400)
		group6 := netip.AddrPortFrom(netip.MustParseAddr("ff0e::db8:1"), 7400)
		e.route(t, &netlink.Route{Dst: escNet(netip.MustParseAddr("239.0.0.0"), 8), LinkIndex: e.tp.B.Index})
		// IPv6 multicast routes live in the local table, one
		// ff00::/8 for each link: a more specific one there wins.
		e.route(t, &netlink.Route{Dst: escNet(netip.MustParseAddr("ff0e::"), 16), LinkIndex: e.tp.B.Index, Table: unix.RT_TABLE_LOCAL, Type: unix.RTN_MULTICAST})
		for _, g := range []netip.AddrPort{group4, group6} {
			e.packetCrossesB(t, escUnboundPacket(t, g.Addr()), g)
			// ListenUDP pins multicast egress; ListenPacket and
			// DialUDP have only the binding, which holds too.
			e.packetStaysOnA(t, listenUDP(t, e.tp.A.Index, escUDP(g.Addr()), netip.AddrPort{}), g)
			lc := &ListenConfig{Index: e.tp.A.Index}
			pc, err := lc.ListenPacket(context.Background(), escUDP(g.Addr()), ":0")
			if err != nil {
				t.Fatalf("failed to listen: %v", err)
			}
			defer pc.Close()
			e.packetStaysOnA(t, pc, g)
			e.udpStaysOnA(t, &Dialer{Index: e.tp.A.Index}, g.Addr())
		}
	}},
	{"a broadcast route via B", escClosed, func(t *testing.T, e *escape) {
		bcast := netip.AddrPortFrom(netip.MustParseAddr("255.255.255.255"), 7401)
		e.route(t, &netlink.Route{Dst: escNet(bcast.Addr(), 32), LinkIndex: e.tp.B.Index})
		e.packetCrossesB(t, escUnboundPacket(t, bcast.Addr()), bcast)
		e.packetStaysOnA(t, listenUDP(t, e.tp.A.Index, "udp4", netip.AddrPort{}), bcast)
		// The subnet broadcast, which both NICs' subnets share.
		e.packetStaysOnA(t, listenUDP(t, e.tp.A.Index, "udp4", netip.AddrPort{}), netip.AddrPortFrom(netip.MustParseAddr("192.0.2.255"), 7401))
	}},
	{"a link-local destination without a zone", escClosed, func(t *testing.T, e *escape) {
		dst := netip.AddrPortFrom(escLLPeer, 7402)
		e.packetStaysOnA(t, listenUDP(t, e.tp.A.Index, "udp6", netip.AddrPort{}), dst)
		e.udpStaysOnA(t, &Dialer{Index: e.tp.A.Index}, escLLPeer)
	}},
	{"a zone naming B where ifbind sees the address", escRefused, func(t *testing.T, e *escape) {
		ctx := context.Background()
		zoneB := escLLClient.WithZone(e.tp.B.LinkName)
		// A listen on B's link-local address: the bind would rebind
		// the socket to B.
		lc := &ListenConfig{Index: e.tp.A.Index}
		for _, network := range []string{"udp6", "tcp6"} {
			ln, err := escListen(ctx, lc, network, netip.AddrPortFrom(zoneB, 0))
			if ln != nil {
				ln.Close()
			}
			e.wantZoneRefused(t, "listen "+network, err)
		}
		c, err := lc.ListenUDP(ctx, "udp6", netip.AddrPortFrom(escLLClient.WithZone(strconv.Itoa(e.tp.B.Index)), 0))
		if c != nil {
			c.Close()
		}
		e.wantZoneRefused(t, "ListenUDP with a numeric zone", err)
		// A Dialer whose LocalAddr has B's zone: the same rebind.
		for _, network := range []string{"udp6", "tcp6"} {
			d := &Dialer{Index: e.tp.A.Index}
			d.LocalAddr = escLocal(network, zoneB)
			d.Timeout = time.Second
			port := e.port()
			c, err := d.Dial(network, netip.AddrPortFrom(escLLPeer, port).String())
			if c != nil {
				c.Close()
			}
			e.wantZoneRefused(t, "dial "+network+" from "+zoneB.String(), err)
			e.portNotOnB(t, port)
		}
		// The same through NetDialer's copy.
		d := &Dialer{Index: e.tp.A.Index}
		d.LocalAddr = escLocal("udp6", zoneB)
		c2, err := d.NetDialer().Dial("udp6", netip.AddrPortFrom(escLLPeer, 7403).String())
		if c2 != nil {
			c2.Close()
		}
		e.wantZoneRefused(t, "NetDialer with a LocalAddr zone of B", err)
		// The laddr that DialTCP, DialUDP and DialIP take, and Uplinks'.
		d = &Dialer{Index: e.tp.A.Index}
		d.Timeout = time.Second
		port := e.port()
		tc, err := d.DialTCP(context.Background(), "tcp6", netip.AddrPortFrom(zoneB, 0), netip.AddrPortFrom(escLLPeer, port))
		if tc != nil {
			tc.Close()
		}
		e.wantZoneRefused(t, "DialTCP from "+zoneB.String(), err)
		e.portNotOnB(t, port)
		uc, err := d.DialUDP(context.Background(), "udp6", netip.AddrPortFrom(zoneB, 0), netip.AddrPortFrom(escLLPeer, 7403))
		if uc != nil {
			uc.Close()
		}
		e.wantZoneRefused(t, "DialUDP from "+zoneB.String(), err)
		ic, err := d.DialIP(context.Background(), "ip6:ipv6-icmp", zoneB, escLLPeer)
		if ic != nil {
			ic.Close()
		}
		e.wantZoneRefused(t, "DialIP from "+zoneB.String(), err)
		u := &Uplinks{Bindings: []Binding{IndexBinding(e.tp.A.Index)}}
		uc, err = u.DialUDP(context.Background(), "udp6", netip.AddrPortFrom(zoneB, 0), netip.AddrPortFrom(escLLPeer, 7403))
		if uc != nil {
			uc.Close()
		}
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Uplinks DialUDP from %v: got %v, want EINVAL", zoneB, err)
		}
		// A remote address with B's zone (the kernel refuses the
		// connect too; ifbind says why).
		d = &Dialer{Index: e.tp.A.Index}
		_, err = d.Dial("udp6", netip.AddrPortFrom(escLLPeer.WithZone(e.tp.B.LinkName), 7403).String())
		e.wantZoneRefused(t, "dial to a zone of B", err)
		// The conns of ListenICMP.
		raw, err := lc.ListenICMP(ctx, "ip6:ipv6-icmp", netip.Addr{})
		if err != nil {
			t.Fatalf("failed to listen for ICMPv6: %v", err)
		}
		defer raw.Close()
		m := e.mark()
		_, err = raw.WriteTo(escEcho(true, m), &net.IPAddr{IP: escLLPeer.AsSlice(), Zone: e.tp.B.LinkName})
		e.wantZoneRefused(t, "raw ICMPv6 WriteTo a zone of B", err)
		_, _, err = raw.(interface {
			WriteMsgIP(b, oob []byte, addr *net.IPAddr) (int, int, error)
		}).WriteMsgIP(escEcho(true, m), nil, &net.IPAddr{IP: escLLPeer.AsSlice(), Zone: e.tp.B.LinkName})
		e.wantZoneRefused(t, "raw ICMPv6 WriteMsgIP to a zone of B", err)
		e.notOnB(t, m)
		// The reply path.
		r, c6 := e.ingressReader(t, "udp6")
		m = e.mark()
		_, err = r.Reply(m, netip.AddrPortFrom(escLLPeer.WithZone(e.tp.B.LinkName), 7404), Ingress{Index: e.tp.A.Index, Dst: escLLClient})
		e.wantZoneRefused(t, "Reply to a zone of B", err)
		e.notOnB(t, m)
		// And the same reply without the zone leaves through A.
		m = e.mark()
		if _, err := r.Reply(m, netip.AddrPortFrom(escLLPeer, 7404), Ingress{Index: e.tp.A.Index, Dst: escLLClient, Local: escLLClient}); err != nil {
			t.Errorf("failed to reply from %v: %v", c6.LocalAddr(), err)
		}
		e.staysOnA(t, m)
	}},
	{"a zone that net would read otherwise than ifbind", escClosed, func(t *testing.T, e *escape) {
		ctx := context.Background()
		// A number that is also A's altname names A to a name lookup
		// and B to net, which does not know altnames: refused.
		digits := strconv.Itoa(e.tp.B.Index)
		a, err := e.h.LinkByIndex(e.tp.A.Index)
		if err != nil {
			t.Fatalf("failed to find A: %v", err)
		}
		if err := e.h.LinkAddAltName(a, digits); err != nil {
			t.Fatalf("failed to give A the altname %s: %v", digits, err)
		}
		d := &Dialer{Index: e.tp.A.Index}
		d.LocalAddr = escLocal("udp6", escLLClient.WithZone(digits))
		c, err := d.Dial("udp6", netip.AddrPortFrom(escLLPeer, 7406).String())
		if c != nil {
			c.Close()
		}
		e.wantZoneRefused(t, "dial from a zone that is A's altname and B's index", err)
		if err := e.h.LinkDelAltName(a, digits); err != nil {
			t.Fatalf("failed to drop A's altname %s: %v", digits, err)
		}
		// net's own table of zones, filled now, is stale once A and B
		// swap names: for net, B's old name still names B. ifbind finds
		// the zone names A, binds without it, and the kernel keeps A.
		if _, err := net.Interfaces(); err != nil {
			t.Fatalf("failed to list interfaces: %v", err)
		}
		e.rename(t, e.tp.A.Index, "ifb-t")
		e.rename(t, e.tp.B.Index, e.tp.A.LinkName)
		e.rename(t, e.tp.A.Index, e.tp.B.LinkName)
		t.Cleanup(func() {
			e.rename(t, e.tp.A.Index, "ifb-t")
			e.rename(t, e.tp.B.Index, e.tp.B.LinkName)
			e.rename(t, e.tp.A.Index, e.tp.A.LinkName)
		})
		zone := e.tp.B.LinkName // A's name now
		d = &Dialer{Index: e.tp.A.Index}
		d.LocalAddr = escLocal("udp6", escLLClient.WithZone(zone))
		e.udpStaysOnA(t, d, escLLPeer)
		lc := &ListenConfig{Index: e.tp.A.Index}
		pc, err := lc.ListenPacket(ctx, "udp6", netip.AddrPortFrom(escLLClient.WithZone(zone), 0).String())
		if err != nil {
			t.Fatalf("failed to listen on %%%s: %v", zone, err)
		}
		defer pc.Close()
		if got := boundIndexOf(t, pc.(*net.UDPConn)); got != e.tp.A.Index {
			t.Errorf("a listen on %%%s is bound to %d, want A's %d", zone, got, e.tp.A.Index)
		}
		e.packetStaysOnA(t, pc, netip.AddrPortFrom(escLLPeer, 7407))
		// A copy from NetListenConfig cannot cut the zone from what its
		// caller passes: it refuses every zone in a listen address.
		_, err = lc.NetListenConfig().ListenPacket(ctx, "udp6", netip.AddrPortFrom(escLLClient.WithZone(zone), 0).String())
		var be *BindError
		if !errors.As(err, &be) || be.Index != e.tp.A.Index || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("NetListenConfig listen on %%%s: got %v, want a *BindError for %d, EINVAL", zone, err, e.tp.A.Index)
		}
	}},
	{"a zone naming B in WriteTo on a *net.UDPConn", escDocument, func(t *testing.T, e *escape) {
		// ifbind hands out net's own *net.UDPConn and does not see its
		// writes: the kernel lets the zone override the binding.
		c := listenUDP(t, e.tp.A.Index, "udp6", netip.AddrPort{})
		m := e.mark()
		if _, err := c.WriteToUDPAddrPort(m, netip.AddrPortFrom(escLLPeer.WithZone(e.tp.B.LinkName), 7405)); err != nil {
			t.Fatalf("WriteToUDPAddrPort to a zone of B: %v; the kernel used to allow it", err)
		}
		e.crossesB(t, m)
	}},
	{"IP_PKTINFO naming B where ifbind sees it", escRefused, func(t *testing.T, e *escape) {
		ctx := context.Background()
		lc := &ListenConfig{Index: e.tp.A.Index}
		oob := (&ipv4.ControlMessage{IfIndex: e.tp.B.Index}).Marshal()
		raw, err := lc.ListenICMP(ctx, "ip4:icmp", netip.Addr{})
		if err != nil {
			t.Fatalf("failed to listen for ICMP: %v", err)
		}
		defer raw.Close()
		m := e.mark()
		_, _, err = raw.(interface {
			WriteMsgIP(b, oob []byte, addr *net.IPAddr) (int, int, error)
		}).WriteMsgIP(escEcho(false, m), oob, &net.IPAddr{IP: testnet.PeerV4.AsSlice()})
		e.wantPktinfoRefused(t, "raw ICMP WriteMsgIP", err)
		allowPing(t, e.tp.A.Index)
		ping, err := lc.ListenICMP(ctx, "udp4", netip.Addr{})
		if err != nil {
			t.Fatalf("failed to open a ping socket: %v", err)
		}
		defer ping.Close()
		_, _, err = ping.(interface {
			WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (int, int, error)
		}).WriteMsgUDPAddrPort(escEcho(false, m), oob, netip.AddrPortFrom(testnet.PeerV4, 0))
		e.wantPktinfoRefused(t, "ping socket WriteMsgUDPAddrPort", err)
		// Without the control message, both reach A's peer.
		if _, err := raw.WriteTo(escEcho(false, m), &net.IPAddr{IP: testnet.PeerV4.AsSlice()}); err != nil {
			t.Errorf("raw ICMP WriteTo: %v", err)
		}
		e.staysOnA(t, m)
		// Reply refuses an ingress through B on a conn bound to A.
		r, _ := e.ingressReader(t, "udp4")
		m = e.mark()
		_, err = r.Reply(m, netip.AddrPortFrom(testnet.PeerV4, 7406), Ingress{Index: e.tp.B.Index, Dst: testnet.ClientV4})
		var be *BindError
		if !errors.As(err, &be) || be.Index != e.tp.A.Index || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("Reply with an ingress through B on a conn bound to A: got %v, want a *BindError for %d, EINVAL", err, e.tp.A.Index)
		}
		e.notOnB(t, m)
	}},
	{"IP_PKTINFO naming B in WriteMsgUDP on a *net.UDPConn", escDocument, func(t *testing.T, e *escape) {
		// udp4, dual-stack udp and a connected DialUDP conn: the kernel
		// lets the control message override the binding.
		oob := (&ipv4.ControlMessage{IfIndex: e.tp.B.Index}).Marshal()
		dst := netip.AddrPortFrom(testnet.PeerV4, 7407)
		lc := &ListenConfig{Index: e.tp.A.Index}
		dual, err := lc.ListenPacket(context.Background(), "udp", ":0")
		if err != nil {
			t.Fatalf("failed to listen: %v", err)
		}
		defer dual.Close()
		dialed, err := (&Dialer{Index: e.tp.A.Index}).DialUDP(context.Background(), "udp4", netip.AddrPort{}, dst)
		if err != nil {
			t.Fatalf("failed to dial: %v", err)
		}
		defer dialed.Close()
		for name, send := range map[string]func(m []byte) error{
			"udp4": func(m []byte) error {
				_, _, err := listenUDP(t, e.tp.A.Index, "udp4", netip.AddrPort{}).WriteMsgUDPAddrPort(m, oob, dst)
				return err
			},
			"udp": func(m []byte) error {
				_, _, err := dual.(*net.UDPConn).WriteMsgUDPAddrPort(m, oob, netip.AddrPortFrom(netip.AddrFrom16(dst.Addr().As16()), dst.Port()))
				return err
			},
			"DialUDP": func(m []byte) error {
				_, _, err := dialed.WriteMsgUDPAddrPort(m, oob, netip.AddrPort{})
				return err
			},
		} {
			m := e.mark()
			if err := send(m); err != nil {
				t.Errorf("%s: WriteMsgUDP with IP_PKTINFO naming B: %v; the kernel used to allow it", name, err)
				continue
			}
			e.crossesB(t, m)
		}
	}},
	{"IPV6_PKTINFO naming B in WriteMsgUDP on a *net.UDPConn", escKernel, func(t *testing.T, e *escape) {
		oob := (&ipv6.ControlMessage{IfIndex: e.tp.B.Index}).Marshal()
		m := e.mark()
		_, _, err := listenUDP(t, e.tp.A.Index, "udp6", netip.AddrPort{}).WriteMsgUDPAddrPort(m, oob, netip.AddrPortFrom(testnet.PeerV6, 7408))
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("udp6: got %v, want EINVAL from the kernel", err)
		}
		mapped := (&ipv6.ControlMessage{IfIndex: e.tp.B.Index, Src: net.ParseIP("::ffff:192.0.2.1")}).Marshal()
		_, _, err = listenUDP(t, e.tp.A.Index, "udp", netip.AddrPort{}).WriteMsgUDPAddrPort(m, mapped, netip.AddrPortFrom(netip.AddrFrom16(testnet.PeerV4.As16()), 7408))
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("dual-stack udp to an IPv4 peer: got %v, want EINVAL from the kernel", err)
		}
		e.notOnB(t, m)
	}},
	{"IP_UNICAST_IF cannot guard a bound socket", escDocument, func(t *testing.T, e *escape) {
		// The one per-socket option that names an egress interface is
		// refused on a socket bound to a device, and loses to a
		// control message anyway: nothing at the socket level stops
		// a caller's own IP_PKTINFO or zone.
		c := listenUDP(t, e.tp.A.Index, "udp4", netip.AddrPort{})
		rc, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var serr error
		rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_UNICAST_IF, int(escNetOrder(uint32(e.tp.A.Index))))
		})
		if !errors.Is(serr, syscall.EINVAL) {
			t.Errorf("IP_UNICAST_IF on a bound socket: got %v, want EINVAL", serr)
		}
	}},
	{"SO_MARK with a rule to a table via B", escClosed, func(t *testing.T, e *escape) {
		const mark = 7
		e.route(t, &netlink.Route{Dst: escNet(testnet.PeerV4, 32), LinkIndex: e.tp.B.Index, Table: 102})
		r := netlink.NewRule()
		r.Mark, r.Table, r.Priority, r.Family = mark, 102, 102, unix.AF_INET
		e.rule(t, r)
		setMark := func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, mark) }); err != nil {
				return err
			}
			return serr
		}
		e.udpCrossesB(t, &net.Dialer{Control: setMark}, testnet.PeerV4)
		d := &Dialer{Index: e.tp.A.Index}
		d.Control = setMark
		e.udpStaysOnA(t, d, testnet.PeerV4)
		e.tcpStaysOnA(t, d, testnet.PeerV4)
	}},
	{"B takes over A's name", escClosed, func(t *testing.T, e *escape) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		m, err := NewMonitor(ctx)
		if err != nil {
			t.Fatalf("failed to start a monitor: %v", err)
		}
		defer m.Close()
		pin, err := m.Pin(e.tp.A.LinkName)
		if err != nil {
			t.Fatalf("failed to pin %s: %v", e.tp.A.LinkName, err)
		}
		follow := m.Follow(e.tp.A.LinkName)
		e.rename(t, e.tp.A.Index, "ifb-t")
		e.rename(t, e.tp.B.Index, e.tp.A.LinkName)
		t.Cleanup(func() {
			e.rename(t, e.tp.B.Index, e.tp.B.LinkName)
			e.rename(t, e.tp.A.Index, e.tp.A.LinkName)
		})
		for l, err := follow.Link(); err != nil || l.Index != e.tp.B.Index; l, err = follow.Link() {
			time.Sleep(5 * time.Millisecond) // the monitor sees the renames
		}
		e.udpStaysOnA(t, &Dialer{Index: e.tp.A.Index}, testnet.PeerV4)
		e.udpStaysOnA(t, &Dialer{Binding: pin}, testnet.PeerV4)
		// Documented: Follow follows the name, to the device that has
		// it now.
		e.udpCrossesB(t, &Dialer{Binding: follow}, testnet.PeerV4)
	}},
	// needs i10a: without its plain-TCP listeners (Go makes them MPTCP
	// by default), the listener half of this row fails: an MP_JOIN SYN
	// crosses B. Passes with i10a merged.
	{"MPTCP endpoints on both sides", escClosed, func(t *testing.T, e *escape) {
		escMPTCP(t)
	}},
	// Last: it deletes A.
	{"A deleted and another link moved in with A's index", escDocument, func(t *testing.T, e *escape) {
		escIndexComesBack(t, e)
	}},
}

// An escape holds the shared topology of TestEscapeRoutes and the
// captures on both peers' sides.
type escape struct {
	tp         *testnet.Topo
	h          *netlink.Handle
	capA, capB *testnet.Capture
	n          int
}

// mark returns a payload no other packet carries.
func (e *escape) mark() []byte {
	e.n++
	return []byte("ifbind-escape-" + strconv.Itoa(e.n))
}

// port returns a port no other probe uses.
func (e *escape) port() uint16 {
	e.n++
	return uint16(20000 + e.n)
}

// staysOnA fails t unless the packets carrying m reached A's peer and none
// crossed B.
func (e *escape) staysOnA(t *testing.T, m []byte) {
	t.Helper()
	if escWait(e.capA, bytesIn(m)) == 0 {
		t.Errorf("%s never reached A's peer", m)
	}
	e.notOnB(t, m)
}

// notOnB fails t if a packet carrying m crossed B.
func (e *escape) notOnB(t *testing.T, m []byte) {
	t.Helper()
	time.Sleep(20 * time.Millisecond) // what was sent has been delivered
	if n := escCount(e.capB, bytesIn(m)); n != 0 {
		t.Errorf("%d packets carrying %s crossed B, want 0", n, m)
	}
}

// crossesB fails t unless a packet carrying m crossed B.
func (e *escape) crossesB(t *testing.T, m []byte) {
	t.Helper()
	if escWait(e.capB, bytesIn(m)) == 0 {
		t.Errorf("%s never crossed B (%d on A); this row is documented as crossing it", m, escCount(e.capA, bytesIn(m)))
	}
}

// portNotOnB fails t if a TCP or UDP packet to or from port crossed B.
func (e *escape) portNotOnB(t *testing.T, port uint16) {
	t.Helper()
	time.Sleep(20 * time.Millisecond)
	if n := escCount(e.capB, escPort(port)); n != 0 {
		t.Errorf("%d packets of port %d crossed B, want 0", n, port)
	}
}

// dialer is what udpStaysOnA and friends dial with.
type escDialer interface {
	Dial(network, address string) (net.Conn, error)
}

func (e *escape) udpSend(t *testing.T, d escDialer, dst netip.Addr) []byte {
	t.Helper()
	m := e.mark()
	c, err := d.Dial(escUDP(dst), netip.AddrPortFrom(dst, 7409).String())
	if err != nil {
		t.Fatalf("failed to dial %v: %v", dst, err)
	}
	defer c.Close()
	if _, err := c.Write(m); err != nil {
		t.Fatalf("failed to send to %v: %v", dst, err)
	}
	return m
}

func (e *escape) udpStaysOnA(t *testing.T, d escDialer, dst netip.Addr) {
	t.Helper()
	e.staysOnA(t, e.udpSend(t, d, dst))
}

func (e *escape) udpCrossesB(t *testing.T, d escDialer, dst netip.Addr) {
	t.Helper()
	e.crossesB(t, e.udpSend(t, d, dst))
}

// tcpStaysOnA dials dst, where nothing listens, and checks that the SYN
// reached A's peer and nothing of the port crossed B.
func (e *escape) tcpStaysOnA(t *testing.T, d escDialer, dst netip.Addr) {
	t.Helper()
	port := e.port()
	c, err := d.Dial(escTCP(dst), netip.AddrPortFrom(dst, port).String())
	if err == nil {
		c.Close()
	}
	if escWait(e.capA, escPort(port)) == 0 {
		t.Errorf("no TCP packet of port %d reached A's peer (dial: %v)", port, err)
	}
	e.portNotOnB(t, port)
}

// boundDialsStayOnA checks the trap with an unbound dial, then that bound
// UDP and TCP dials, IPv4 and IPv6, stay on A.
func (e *escape) boundDialsStayOnA(t *testing.T, unbound *net.Dialer) {
	t.Helper()
	for _, dst := range []netip.Addr{testnet.PeerV4, testnet.PeerV6} {
		e.udpCrossesB(t, unbound, dst)
		d := &Dialer{Index: e.tp.A.Index}
		d.Timeout = time.Second
		e.udpStaysOnA(t, d, dst)
		e.tcpStaysOnA(t, d, dst)
	}
}

func (e *escape) packetStaysOnA(t *testing.T, c net.PacketConn, dst netip.AddrPort) {
	t.Helper()
	m := e.mark()
	if _, err := c.WriteTo(m, net.UDPAddrFromAddrPort(dst)); err != nil {
		t.Fatalf("failed to send to %v from %v: %v", dst, c.LocalAddr(), err)
	}
	e.staysOnA(t, m)
}

func (e *escape) packetCrossesB(t *testing.T, c net.PacketConn, dst netip.AddrPort) {
	t.Helper()
	m := e.mark()
	if _, err := c.WriteTo(m, net.UDPAddrFromAddrPort(dst)); err != nil {
		t.Fatalf("failed to send to %v from an unbound socket: %v", dst, err)
	}
	e.crossesB(t, m)
}

// ingressReader returns an IngressReader of a conn bound to A.
func (e *escape) ingressReader(t *testing.T, network string) (*IngressReader, *net.UDPConn) {
	t.Helper()
	c := listenUDP(t, e.tp.A.Index, network, netip.AddrPort{})
	r, err := NewIngressReader(c)
	if err != nil {
		t.Fatalf("failed to make an ingress reader: %v", err)
	}
	return r, c
}

// wantZoneRefused checks that err is ifbind's refusal of a zone naming B
// on a socket bound to A: a *BindError naming A, whose message names B,
// unwrapping to EINVAL.
func (e *escape) wantZoneRefused(t *testing.T, what string, err error) {
	t.Helper()
	var be *BindError
	if !errors.As(err, &be) || be.Index != e.tp.A.Index || !errors.Is(err, syscall.EINVAL) ||
		!bytes.Contains([]byte(err.Error()), []byte("interface "+strconv.Itoa(e.tp.B.Index))) {
		t.Errorf("%s: got %v, want a *BindError for %d naming interface %d, EINVAL", what, err, e.tp.A.Index, e.tp.B.Index)
	}
}

func (e *escape) wantPktinfoRefused(t *testing.T, what string, err error) {
	t.Helper()
	var be *BindError
	if !errors.As(err, &be) || be.Index != e.tp.A.Index || !errors.Is(err, syscall.EINVAL) ||
		!bytes.Contains([]byte(err.Error()), []byte("IP_PKTINFO")) {
		t.Errorf("%s with IP_PKTINFO naming B: got %v, want a *BindError for %d, EINVAL", what, err, e.tp.A.Index)
	}
}

// route adds r in the calling namespace until t ends.
func (e *escape) route(t *testing.T, r *netlink.Route) {
	t.Helper()
	if err := e.h.RouteAdd(r); err != nil {
		t.Fatalf("failed to add route %v: %v", r, err)
	}
	t.Cleanup(func() { e.h.RouteDel(r) })
}

// reroute gives the route of dst through the link with the given index
// another metric until t ends.
func (e *escape) reroute(t *testing.T, dst netip.Prefix, index, metric int) {
	t.Helper()
	routes, err := e.h.RouteListFiltered(escFamily(dst.Addr()), &netlink.Route{Dst: escNet(dst.Addr(), dst.Bits()), LinkIndex: index},
		netlink.RT_FILTER_DST|netlink.RT_FILTER_OIF)
	if err != nil || len(routes) != 1 {
		t.Fatalf("failed to find the route of %v through %d: %v %v", dst, index, routes, err)
	}
	old := routes[0]
	r := old
	r.Priority = metric
	if err := e.h.RouteDel(&old); err != nil {
		t.Fatalf("failed to delete route %v: %v", old, err)
	}
	if err := e.h.RouteAppend(&r); err != nil {
		e.h.RouteAppend(&old)
		t.Fatalf("failed to add route %v: %v", r, err)
	}
	t.Cleanup(func() {
		if err := errors.Join(e.h.RouteDel(&r), e.h.RouteAppend(&old)); err != nil {
			t.Errorf("failed to put route %v back: %v", old, err)
		}
	})
}

// rule adds r in the calling namespace until t ends.
func (e *escape) rule(t *testing.T, r *netlink.Rule) {
	t.Helper()
	if err := e.h.RuleAdd(r); err != nil {
		t.Fatalf("failed to add rule %v: %v", r, err)
	}
	t.Cleanup(func() { e.h.RuleDel(r) })
}

// rename renames the link with the given index while it is up.
func (e *escape) rename(t *testing.T, index int, name string) {
	t.Helper()
	l, err := e.h.LinkByIndex(index)
	if err != nil {
		t.Fatalf("failed to find link %d: %v", index, err)
	}
	if err := e.h.LinkSetName(l, name); err != nil {
		t.Fatalf("failed to rename %s to %s: %v", l.Attrs().Name, name, err)
	}
}

// escIndexComesBack deletes A, then moves in, from another namespace, a
// link that has A's index there, wired to a peer of its own. A Pin of A
// fails with ErrLinkGone; an Index binding binds the newcomer and its
// traffic reaches the newcomer's peer: documented, never B.
func escIndexComesBack(t *testing.T, e *escape) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := NewMonitor(ctx)
	if err != nil {
		t.Fatalf("failed to start a monitor: %v", err)
	}
	defer m.Close()
	pin, err := m.Pin(strconv.Itoa(e.tp.A.Index))
	if err != nil {
		t.Fatalf("failed to pin %d: %v", e.tp.A.Index, err)
	}
	// The newcomer: w1, made with A's index in a namespace of its own,
	// its peer w1p in another that carries the peer addresses.
	home, far := testnet.NewNS(t), testnet.NewNS(t)
	err = home.Do(func() error {
		return netlink.LinkAdd(&netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: "w1", Index: e.tp.A.Index},
			PeerName:      "w1p",
			PeerNamespace: netlink.NsFd(far.FD()),
		})
	})
	if err != nil {
		t.Fatalf("failed to make w1 with index %d: %v", e.tp.A.Index, err)
	}
	fh, err := netlink.NewHandleAt(netns.NsHandle(far.FD()))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	w1p, err := fh.LinkByName("w1p")
	if err != nil {
		t.Fatal(err)
	}
	escAddr(t, fh, w1p.Attrs().Index, netip.PrefixFrom(testnet.PeerV4, testnet.BitsV4))
	if err := fh.LinkSetUp(w1p); err != nil {
		t.Fatal(err)
	}
	capW := testnet.StartCapture(t, far, w1p.Attrs().Index)

	a, err := e.h.LinkByIndex(e.tp.A.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.h.LinkDel(a); err != nil {
		t.Fatalf("failed to delete A: %v", err)
	}
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	hh, err := netlink.NewHandleAt(netns.NsHandle(home.FD()))
	if err != nil {
		t.Fatal(err)
	}
	defer hh.Close()
	w1, err := hh.LinkByName("w1")
	if err != nil {
		t.Fatal(err)
	}
	if err := hh.LinkSetNsFd(w1, int(self.Fd())); err != nil {
		t.Fatalf("failed to move w1 in: %v", err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName("w1"); err == nil {
			netlink.LinkDel(l)
		}
	})
	w1, err = e.h.LinkByName("w1")
	if err != nil {
		t.Fatal(err)
	}
	if w1.Attrs().Index != e.tp.A.Index {
		t.Fatalf("w1 moved in with index %d, want A's %d", w1.Attrs().Index, e.tp.A.Index)
	}
	escAddr(t, e.h, w1.Attrs().Index, netip.PrefixFrom(testnet.ClientV4, testnet.BitsV4))
	if err := e.h.LinkSetUp(w1); err != nil {
		t.Fatal(err)
	}

	for i := 0; ; i++ {
		c, err := (&Dialer{Binding: pin}).Dial("udp4", netip.AddrPortFrom(testnet.PeerV4, 7410).String())
		if err == nil {
			c.Close()
		}
		if errors.Is(err, ErrLinkGone) {
			break
		}
		if i == 400 {
			t.Fatalf("a Pin of A, after A was deleted and w1 moved in with its index: got %v, want ErrLinkGone", err)
		}
		time.Sleep(5 * time.Millisecond) // until the monitor sees the delete
	}
	if err := errors.Join(escWaitReady(e.h, w1.Attrs().Index), escWaitReady(fh, w1p.Attrs().Index)); err != nil {
		t.Fatal(err)
	}
	msg := e.udpSend(t, &Dialer{Index: e.tp.A.Index}, testnet.PeerV4)
	if escWait(capW, bytesIn(msg)) == 0 {
		t.Errorf("%s never reached w1's peer; documented: an Index binding binds the newcomer", msg)
	}
	e.notOnB(t, msg)
}

// escMPTCP uses the topology of the MPTCP tests (mptcp_linux_test.go): a
// client and a server namespace wired by two veth pairs, A and B, with
// MPTCP endpoints on B on both sides, signal and subflow. It checks that
// an ifbind listener (Go's default config) and a plain ifbind dial, both
// bound to A, open no subflow through B: the far side of B sees no TCP
// segment at all, hence no join and no byte.
func escMPTCP(t *testing.T) {
	tp := newMPTCPTopo(t)
	for _, w := range []struct {
		ns    *testnet.NS
		index int
	}{{tp.client, tp.clientA}, {tp.client, tp.clientB}, {tp.server, tp.serverA}, {tp.server, tp.serverB}} {
		if err := escWaitQdisc(w.ns, w.index); err != nil {
			t.Fatal(err)
		}
	}
	const port = 7411
	for _, c := range []struct {
		name   string
		listen bool // ifbind listens in the server; else it dials from the client
	}{
		{"an ifbind listener, an MPTCP client", true},
		{"a plain ifbind dial, an MPTCP listener", false},
	} {
		// B's far side from the ifbind socket.
		farNS, farB := tp.server, tp.serverB
		if c.listen {
			farNS, farB = tp.client, tp.clientB
		}
		capB := testnet.StartCapture(t, farNS, farB)
		var ln net.Listener
		if err := tp.server.Do(func() error {
			var err error
			if c.listen {
				ln, err = (&ListenConfig{Index: tp.serverA}).Listen(context.Background(), "tcp4", ":"+strconv.Itoa(port))
			} else {
				ln, err = net.Listen("tcp4", ":"+strconv.Itoa(port)) // MPTCP: Go's default
			}
			return err
		}); err != nil {
			t.Fatalf("%s: failed to listen: %v", c.name, err)
		}
		done := make(chan error, 1)
		go func() { done <- echoOnce(ln) }()
		var conn net.Conn
		err := tp.client.Do(func() error {
			var err error
			to := netip.AddrPortFrom(mptcpServerA, port).String()
			if c.listen {
				var d net.Dialer
				d.SetMultipathTCP(true)
				conn, err = d.Dial("tcp4", to)
			} else {
				conn, err = (&Dialer{Index: tp.clientA}).Dial("tcp4", to)
			}
			return err
		})
		if err == nil {
			if err := exchange(conn.(*net.TCPConn)); err != nil {
				t.Errorf("%s: exchange: %v", c.name, err)
			}
		} else {
			t.Errorf("%s: failed to dial: %v", c.name, err)
		}
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("%s: echo: %v", c.name, err)
		}
		time.Sleep(50 * time.Millisecond) // a late join would come now
		if got := countTCP(capB.Packets()); got != (tcpCount{}) {
			t.Errorf("%s: B's far side saw %v, want none", c.name, got)
		}
		capB.Stop()
	}
}

// escWaitQdisc waits until the link with the given index in ns can carry
// packets (see testnet's WaitReady).
func escWaitQdisc(ns *testnet.NS, index int) error {
	h, err := netlink.NewHandleAt(netns.NsHandle(ns.FD()))
	if err != nil {
		return err
	}
	defer h.Close()
	return escWaitReady(h, index)
}

func escWaitReady(h *netlink.Handle, index int) error {
	for range 200 {
		l, err := h.LinkByIndex(index)
		if err != nil {
			return err
		}
		if l.Attrs().OperState == netlink.OperUp {
			qs, err := h.QdiscList(l)
			if err != nil {
				return err
			}
			ready := len(qs) > 0
			for _, q := range qs {
				ready = ready && q.Type() != "noop"
			}
			if ready {
				return nil
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("link %d never became ready", index)
}

// escAddr adds p to the link with the given index, without duplicate
// address detection.
func escAddr(t *testing.T, h *netlink.Handle, index int, p netip.Prefix) {
	t.Helper()
	l, err := h.LinkByIndex(index)
	if err != nil {
		t.Fatalf("failed to find link %d: %v", index, err)
	}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: escNet(p.Addr(), p.Bits()), Flags: unix.IFA_F_NODAD}); err != nil {
		t.Fatalf("failed to add %v to %s: %v", p, l.Attrs().Name, err)
	}
}

func escNet(a netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())}
}

func escFamily(a netip.Addr) int {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func escUDP(a netip.Addr) string {
	if a.Is4() {
		return "udp4"
	}
	return "udp6"
}

func escTCP(a netip.Addr) string {
	if a.Is4() {
		return "tcp4"
	}
	return "tcp6"
}

// escLocal returns a local address of network's kind.
func escLocal(network string, a netip.Addr) net.Addr {
	if network[:3] == "tcp" {
		return &net.TCPAddr{IP: a.AsSlice(), Zone: a.Zone()}
	}
	return &net.UDPAddr{IP: a.AsSlice(), Zone: a.Zone()}
}

// escListen listens on laddr with lc, by network.
func escListen(ctx context.Context, lc *ListenConfig, network string, laddr netip.AddrPort) (interface{ Close() error }, error) {
	if network[:3] == "tcp" {
		if ln, err := lc.Listen(ctx, network, laddr.String()); err == nil {
			return ln, nil
		} else {
			return nil, err
		}
	}
	if c, err := lc.ListenUDP(ctx, network, laddr); err == nil {
		return c, nil
	} else {
		return nil, err
	}
}

// escUnboundPacket is an unbound UDP socket for dst's family: the control
// that shows a trap works.
func escUnboundPacket(t *testing.T, dst netip.Addr) net.PacketConn {
	t.Helper()
	c, err := net.ListenPacket(escUDP(dst), ":0")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// escEcho returns an ICMP or ICMPv6 echo request carrying data, with its
// checksum left to the kernel (ICMPv6) or computed here (ICMP).
func escEcho(v6 bool, data []byte) []byte {
	b := []byte{8, 0, 0, 0, 0, 1, 0, 1}
	if v6 {
		b[0] = 128
	}
	b = append(b, data...)
	if !v6 {
		var sum uint32
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
		for sum > 0xffff {
			sum = sum>>16 + sum&0xffff
		}
		binary.BigEndian.PutUint16(b[2:], ^uint16(sum))
	}
	return b
}

// escNetOrder puts v in network byte order, as IP_UNICAST_IF wants it.
func escNetOrder(v uint32) uint32 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return binary.NativeEndian.Uint32(b[:])
}

// escCount returns how many frames c captured so far pred accepts.
func escCount(c *testnet.Capture, pred func(frame []byte) bool) int {
	return c.Count(func(p testnet.Packet) bool { return pred(p.Frame) })
}

// escWait counts with pred until it counts something, for up to 2 s.
func escWait(c *testnet.Capture, pred func([]byte) bool) int {
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if n := escCount(c, pred); n > 0 || time.Now().After(deadline) {
			return n
		}
	}
}

func bytesIn(m []byte) func([]byte) bool {
	return func(f []byte) bool { return bytes.Contains(f, m) }
}

// escPort accepts IPv4 and IPv6 TCP and UDP packets to or from port.
func escPort(port uint16) func([]byte) bool {
	return func(f []byte) bool {
		if len(f) < 14 {
			return false
		}
		var proto byte
		var l4 []byte
		switch binary.BigEndian.Uint16(f[12:]) {
		case unix.ETH_P_IP:
			ip := f[14:]
			if len(ip) < 20 || len(ip) < int(ip[0]&0x0f)*4 {
				return false
			}
			proto, l4 = ip[9], ip[int(ip[0]&0x0f)*4:]
		case unix.ETH_P_IPV6:
			ip := f[14:]
			if len(ip) < 40 {
				return false
			}
			proto, l4 = ip[6], ip[40:]
		default:
			return false
		}
		if (proto != unix.IPPROTO_TCP && proto != unix.IPPROTO_UDP) || len(l4) < 4 {
			return false
		}
		return binary.BigEndian.Uint16(l4) == port || binary.BigEndian.Uint16(l4[2:]) == port
	}
}
