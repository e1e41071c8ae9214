package ifbind

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// ListenUDP announces on the local UDP address laddr, as net.ListenUDP does,
// through a socket bound to lc.Index, and pins the socket's multicast egress
// to the same interface (IP_MULTICAST_IF, by index through ip_mreqn on
// Linux, and IPV6_MULTICAST_IF; both when the socket is dual-stack). network
// is "udp", "udp4" or "udp6". A zero laddr, or one with an invalid address,
// listens on every address of the interface; a zero port picks one.
//
// The conn receives only datagrams that arrive through the interface, sent
// to one of its addresses, to a broadcast address (a wildcard laddr is
// needed for those) or to a multicast group joined with JoinGroup, and it
// sends only through the interface: datagrams to 255.255.255.255, to the
// subnet broadcast and to multicast groups included, whatever the routing
// table says. Several conns may listen on the same port when each is bound
// to a different interface; no SO_REUSEADDR is needed for that.
//
// Broadcast needs nothing more: Go enables SO_BROADCAST on every UDP socket
// it makes, and so on this one, before the binding is made.
//
// What ifbind cannot see: the conn is net's *net.UDPConn, and Linux lets a
// single write override the binding, without an error, in two ways: a
// destination whose zone names another interface (WriteToUDPAddrPort to
// fe80::1%eth2) and an IP_PKTINFO control message naming one (WriteMsgUDP,
// on "udp4" and dual-stack conns, connected or not). No socket option
// stops either. To stay on the interface, write to addresses without a
// zone, addr.WithZone(""), and pass no control message that names an
// interface; to answer through the interface a datagram came in on, use
// IngressReader.Reply. A zone in laddr that names another interface is
// refused with a *BindError for which errors.Is(err, syscall.EINVAL) holds.
//
// ctx is used while the conn is made; it does not affect the conn once
// made. Privileges are those of a bound listen (see BindRawConn), plus
// those of binding a port below 1024 where laddr asks for one.
func (lc *ListenConfig) ListenUDP(ctx context.Context, network string, laddr netip.AddrPort) (*net.UDPConn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	if err := closingRefused(lc.Binding, "listen", network, "ListenUDP"); err != nil {
		return nil, err
	}
	address := ":" + strconv.Itoa(int(laddr.Port()))
	if laddr.Addr().IsValid() {
		address = laddr.String()
	}
	nlc, bd, address, err := lc.prepare(network, address, true)
	if err != nil {
		return nil, err
	}
	var pc net.PacketConn
	if bd.ns == nil {
		pc, err = nlc.ListenPacket(ctx, network, address)
	} else {
		nlc := nlc // the closure's own copy, so that only this path allocates it
		pc, err = listenInNetns(bd, network, func() (net.PacketConn, error) { return nlc.ListenPacket(ctx, network, address) })
	}
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	v4, v6 := udpFamilies(network, laddr.Addr())
	// Pin multicast to the interface the socket was bound to, which a
	// Binding chose: never to lc.Index, which is 0 with a Binding.
	if err := pinMulticast(c, int(*bd.bound), v4, v6); err != nil {
		c.Close()
		return nil, &net.OpError{Op: "listen", Net: network, Addr: c.LocalAddr(), Err: err}
	}
	return c, nil
}

// udpFamilies tells which address families a UDP socket made by the net
// package for network and laddr carries: a "udp" socket on a wildcard
// address is an IPv6 socket that also carries IPv4.
func udpFamilies(network string, laddr netip.Addr) (v4, v6 bool) {
	switch {
	case network == "udp4":
		return true, false
	case network == "udp6":
		return false, true
	case laddr.IsValid() && !laddr.IsUnspecified():
		return laddr.Is4() || laddr.Is4In6(), laddr.Is6() && !laddr.Is4In6()
	}
	return true, true
}

// pinMulticast sets the interface multicast datagrams leave by to index,
// for each family the socket carries.
func pinMulticast(c *net.UDPConn, index int, v4, v6 bool) error {
	ifi := &net.Interface{Index: index}
	if v6 {
		if err := ipv6.NewPacketConn(c).SetMulticastInterface(ifi); err != nil {
			return &BindError{Index: index, Err: fmt.Errorf("pinning IPv6 multicast egress: %w", err)}
		}
	}
	if v4 {
		if err := ipv4.NewPacketConn(c).SetMulticastInterface(ifi); err != nil {
			return &BindError{Index: index, Err: fmt.Errorf("pinning IPv4 multicast egress: %w", err)}
		}
	}
	return nil
}

// JoinGroup makes c, a UDP conn bound to the interface with the given index
// (as ListenUDP makes), a member of the IPv4 or IPv6 multicast group on that
// interface, named by index (MCAST_JOIN_GROUP on Linux), never by address.
// It also pins c's multicast egress for the group's family to the
// interface, as ListenUDP already does. An IPv4 group needs an IPv4 or
// dual-stack conn, an IPv6 group an IPv6 one.
//
// c receives the group's datagrams only where it listens on the group's
// port with a wildcard address or the group's own. On Linux a conn bound to
// another interface is refused with an error for which errors.Is(err,
// syscall.EINVAL) holds, since it could never receive the group. Note that
// Linux delivers a group's datagrams to every conn on the port and
// interface once any socket joined it there (IP_MULTICAST_ALL), unless that
// option is turned off.
//
// JoinGroup is safe for concurrent use with c's reads and writes. A socket
// may join at most 20 IPv4 groups by default (sysctl
// net.ipv4.igmp_max_memberships).
func JoinGroup(c *net.UDPConn, index int, group netip.Addr) error {
	return membership(c, index, group, true)
}

// LeaveGroup ends the membership of c in the multicast group on the
// interface with the given index, which JoinGroup began. Closing c ends all
// its memberships.
func LeaveGroup(c *net.UDPConn, index int, group netip.Addr) error {
	return membership(c, index, group, false)
}

func membership(c *net.UDPConn, index int, group netip.Addr, join bool) error {
	if err := invalidIndex(index); err != nil {
		return err
	}
	op := "leave"
	if join {
		op = "join"
	}
	group = group.Unmap()
	if !group.IsMulticast() {
		return fmt.Errorf("ifbind: cannot %s %v: not a multicast group (%w)", op, group, syscall.EINVAL)
	}
	if err := checkBound(c, index); err != nil {
		return err
	}
	ifi := &net.Interface{Index: index}
	gaddr := &net.UDPAddr{IP: group.AsSlice()}
	var p interface {
		SetMulticastInterface(*net.Interface) error
		JoinGroup(*net.Interface, net.Addr) error
		LeaveGroup(*net.Interface, net.Addr) error
	} = ipv6.NewPacketConn(c)
	if group.Is4() {
		p = ipv4.NewPacketConn(c)
	}
	var err error
	if join {
		if err = p.SetMulticastInterface(ifi); err == nil {
			err = p.JoinGroup(ifi, gaddr)
		}
	} else {
		err = p.LeaveGroup(ifi, gaddr)
	}
	if err != nil {
		return &BindError{Index: index, Err: fmt.Errorf("%s multicast group %v: %w", op, group, err)}
	}
	return nil
}

// SetMulticastLoopback sets whether c's own multicast datagrams are looped
// back to sockets of this host that listen to the group on the interface,
// c included (IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP, and on Linux both on
// a dual-stack conn; elsewhere only the IPv6 one there). The kernel default
// is on. It is safe for concurrent use with c's reads and writes.
func SetMulticastLoopback(c *net.UDPConn, on bool) error {
	a, _ := c.LocalAddr().(*net.UDPAddr)
	if a == nil {
		return fmt.Errorf("ifbind: multicast loopback: conn has no local UDP address (%w)", syscall.EINVAL)
	}
	var err error
	if len(a.IP) == net.IPv4len {
		err = ipv4.NewPacketConn(c).SetMulticastLoopback(on)
	} else {
		if err = ipv6.NewPacketConn(c).SetMulticastLoopback(on); err == nil {
			var only bool
			if only, err = ipv6Only(c); err == nil && !only {
				err = ipv4.NewPacketConn(c).SetMulticastLoopback(on)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("ifbind: multicast loopback: %w", err)
	}
	return nil
}

// Ingress is where a datagram came in: the interface it arrived through and
// the address it was sent to. The zero value means the kernel said nothing.
type Ingress struct {
	// Index is the index of the interface the datagram arrived through.
	Index int
	// Dst is the datagram's destination address: an address of the
	// interface, a broadcast address or a multicast group. IPv4
	// destinations are IPv4 addresses, on a dual-stack conn too.
	Dst netip.Addr
	// Local is the address a reply is sent from: Dst when that is a
	// unicast address; for an IPv4 broadcast or group, the address of
	// the interface the kernel names (ipi_spec_dst); for an IPv6 group,
	// the zero Addr (the kernel chooses).
	Local netip.Addr
}

// An IngressReader reads datagrams from a UDP conn together with their
// Ingress, and answers them through the interface they came in on, without
// allocating: for a program that shares one wildcard socket across NICs and
// must tell, per datagram, which NIC and which destination (unicast,
// broadcast, multicast) it came through.
//
// It is made by NewIngressReader and holds buffers for control messages,
// so it is not safe for concurrent use: give each goroutine its own. Linux
// only; elsewhere NewIngressReader returns an error wrapping
// ErrUnsupported.
type IngressReader struct {
	c     *net.UDPConn
	bound int // the interface c was bound to when the reader was made; 0 if none
	oob   []byte
	woob  []byte
}

// NewIngressReader asks the kernel to attach ingress information to every
// datagram c receives from now on (IP_PKTINFO on an IPv4 conn,
// IPV6_RECVPKTINFO on an IPv6 or dual-stack one, set through
// golang.org/x/net/ipv4 and ipv6) and returns a reader of c. c may be bound
// to an interface or not; the binding is read once, here, for Reply.
func NewIngressReader(c *net.UDPConn) (*IngressReader, error) {
	a, _ := c.LocalAddr().(*net.UDPAddr)
	if a == nil {
		return nil, fmt.Errorf("ifbind: ingress information: conn has no local UDP address (%w)", syscall.EINVAL)
	}
	if !ingressSupported {
		return nil, fmt.Errorf("ifbind: %w", unsupportedError("ingress information"))
	}
	var err error
	if len(a.IP) == net.IPv4len {
		err = ipv4.NewPacketConn(c).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
	} else if err = ipv6.NewPacketConn(c).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true); err == nil {
		// A dual-stack conn gets IP_PKTINFO too for its IPv4
		// datagrams: only that one says which address to answer a
		// broadcast from.
		var only bool
		if only, err = ipv6Only(c); err == nil && !only {
			err = ipv4.NewPacketConn(c).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ifbind: ingress information: %w", err)
	}
	bound, err := boundOf(c)
	if err != nil {
		return nil, fmt.Errorf("ifbind: ingress information: %w", err)
	}
	return &IngressReader{c: c, bound: bound, oob: make([]byte, ingressOOBSize), woob: make([]byte, replyOOBSize)}, nil
}

// ReadFrom reads one datagram into b, as ReadFromUDPAddrPort does, and
// returns with it where it came in. A datagram larger than b is truncated.
// It does not allocate. Deadlines are those of the conn.
func (r *IngressReader) ReadFrom(b []byte) (n int, from netip.AddrPort, in Ingress, err error) {
	n, oobn, _, from, err := r.c.ReadMsgUDPAddrPort(b, r.oob)
	if err != nil {
		return n, from, Ingress{}, err
	}
	return n, from, parseIngress(r.oob[:oobn]), nil
}

// Reply sends b to `to` through the interface in names, as an answer to a
// datagram that ReadFrom returned with in: it sets the outgoing interface
// to in.Index (IP_PKTINFO or IPV6_PKTINFO) and the source address to the
// one the datagram was sent to, where that is a unicast address (for a
// broadcast, the address the kernel names for replies; for a multicast
// group, the kernel's choice). It does not allocate.
//
// Reply cannot send through another interface than the one in names, nor,
// on a conn that was bound when the reader was made, through another
// interface than the binding: it refuses, with a *BindError for which
// errors.Is(err, syscall.EINVAL) holds, an in whose Index is 0 or is not
// the binding, and a `to` whose zone names another interface. On a conn
// bound to no interface it sends through in.Index. Deadlines are those of
// the conn.
func (r *IngressReader) Reply(b []byte, to netip.AddrPort, in Ingress) (int, error) {
	if in.Index <= 0 || (r.bound != 0 && in.Index != r.bound) {
		return 0, &BindError{Index: r.bound, Err: &ingressError{index: in.Index}}
	}
	if z := to.Addr().Zone(); z != "" {
		if err := checkZone(z, in.Index, ""); err != nil {
			return 0, err
		}
	}
	oob := replyOOB(r.woob, to.Addr(), in)
	n, _, err := r.c.WriteMsgUDPAddrPort(b, oob, to)
	return n, err
}

// An ingressError says that Reply was asked to send through another
// interface than the conn's binding, or through none; with pktinfo set,
// that a control message named another interface.
type ingressError struct {
	index   int
	pktinfo bool
}

func (e *ingressError) Error() string {
	if e.pktinfo {
		return "a control message (IP_PKTINFO or IPV6_PKTINFO) names interface " + strconv.Itoa(e.index) +
			", not this one: the kernel would send through it (" + syscall.EINVAL.Error() + ")"
	}
	if e.index <= 0 {
		return "reply: the ingress names no interface (" + syscall.EINVAL.Error() + ")"
	}
	return "reply: the datagram came in through interface " + strconv.Itoa(e.index) +
		", not this one (" + syscall.EINVAL.Error() + ")"
}

func (e *ingressError) Unwrap() error { return syscall.EINVAL }

// ListenICMP opens an ICMP packet conn bound to lc.Index, as `ping -I`
// does, for sending echo requests and reading what comes back. laddr is the
// local address; the zero value means any. network is one of:
//
//   - "ip4:icmp" or "ip4:1", "ip6:ipv6-icmp" or "ip6:58": a raw socket,
//     which needs CAP_NET_RAW, made by the net package. The conn embeds a
//     *net.IPConn and has its methods, but is not one: assert to an
//     interface of the methods needed. It reads every ICMP message that
//     arrives through the interface, without the IPv4 header.
//   - "udp4" or "udp6": an unprivileged ICMP ("ping") socket of Linux,
//     which needs the caller's group in sysctl net.ipv4.ping_group_range
//     (for both families); a refusal unwraps to syscall.EACCES. The conn
//     embeds a *net.UDPConn in the same way, and writes to and reads from
//     *net.UDPAddr (the port is not used); the kernel sets the
//     echo identifier and delivers only the replies to it. Elsewhere these
//     fail with ErrUnsupported.
//
// The conn's write methods refuse, with a *BindError for which
// errors.Is(err, syscall.EINVAL) holds, an address whose zone names
// another interface, and control messages (IP_PKTINFO, IPV6_PKTINFO) that
// name one: the kernel would send through it. What is sent through the
// conn's SyscallConn, as golang.org/x/net/ipv4 and ipv6 do with a
// ControlMessage, is not seen.
//
// The zone of a link-local laddr names the interface as in net, by name or
// by index; one that names another interface than the one bound is an error
// for which errors.Is(err, syscall.EINVAL) holds (the kernel would let it
// move a raw socket to that interface).
//
// Messages are built and parsed with golang.org/x/net/icmp. ctx is used
// while the conn is made; it does not affect the conn once made.
func (lc *ListenConfig) ListenICMP(ctx context.Context, network string, laddr netip.Addr) (net.PacketConn, error) {
	pc, err := lc.listenICMP(ctx, network, laddr)
	if g := closingOf(lc.Binding); g != nil && err == nil {
		return g.wrapPacketConn(pc, network)
	}
	return pc, err
}

func (lc *ListenConfig) listenICMP(ctx context.Context, network string, laddr netip.Addr) (net.PacketConn, error) {
	address := ""
	if laddr.IsValid() {
		address = laddr.String()
	}
	raw := false
	switch network {
	case "ip4:icmp", "ip4:1", "ip6:ipv6-icmp", "ip6:58":
		raw = true
	case "udp4", "udp6":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	if z := laddr.Zone(); z != "" {
		if _, err := zoneIndex(z); err != nil {
			return nil, &net.OpError{Op: "listen", Net: network, Err: &net.AddrError{Err: err.Error(), Addr: address}}
		}
		// A zone that names another interface than the one bound is
		// refused by the binder, before the socket binds to laddr; the
		// socket binds without it, so the kernel keeps the binding.
	}
	nlc, bd, address, err := lc.prepare(network, address, true)
	if err != nil {
		return nil, err
	}
	if raw {
		pc, err := listenInNetns(bd, network, func() (net.PacketConn, error) { return nlc.ListenPacket(ctx, network, address) })
		if err != nil {
			return nil, err
		}
		return &icmpIPConn{IPConn: pc.(*net.IPConn), index: int(atomic.LoadInt64(bd.bound))}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	if laddr.IsValid() && (laddr.Is4() || laddr.Is4In6()) != (network == "udp4") {
		return nil, &net.OpError{Op: "listen", Net: network, Err: &net.AddrError{Err: "address of the wrong family", Addr: address}}
	}
	c, err := runIn(bd.ns, func() (net.PacketConn, error) { return listenPing(network, laddr.Unmap().WithZone(""), nlc.Control) })
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	return &icmpUDPConn{UDPConn: c.(*net.UDPConn), index: int(atomic.LoadInt64(bd.bound))}, nil
}

// zoneIndex returns the index of the interface an IPv6 zone names, read as
// net reads zones: the name of an interface, or else its index in decimal.
func zoneIndex(zone string) (int, error) {
	l, err := LinkByName(zone)
	if err == nil {
		return l.Index, nil
	}
	if isDigits(zone) {
		if i, aerr := strconv.Atoi(zone); aerr == nil && invalidIndex(i) == nil {
			return i, nil
		}
	}
	return 0, err
}

// unzoned returns a without its zone: a checked zone goes no further, so
// that net cannot take it for another interface (see cutZone).
func unzoned[A interface{ *net.IPAddr | *net.UDPAddr }](a A) A {
	if a == nil {
		return a
	}
	c, _ := cutAddrZone(net.Addr(a))
	return c.(A)
}

// icmpIPConn is a raw ICMP conn of ListenICMP: a *net.IPConn whose write
// methods refuse a zone or a control message naming another interface
// than the one it is bound to.
type icmpIPConn struct {
	*net.IPConn
	index int
}

func (c *icmpIPConn) check(addr *net.IPAddr, oob []byte) error {
	var err error
	if addr != nil && addr.Zone != "" {
		err = checkZone(addr.Zone, c.index, "")
	}
	if err == nil && len(oob) > 0 {
		err = checkOOB(oob, c.index)
	}
	if err != nil {
		return &net.OpError{Op: "write", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: addr, Err: err}
	}
	return nil
}

func (c *icmpIPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if a, ok := addr.(*net.IPAddr); ok {
		if err := c.check(a, nil); err != nil {
			return 0, err
		}
		addr, _ = cutAddrZone(a) // the socket's binding is the scope
	}
	return c.IPConn.WriteTo(b, addr)
}

func (c *icmpIPConn) WriteToIP(b []byte, addr *net.IPAddr) (int, error) {
	if err := c.check(addr, nil); err != nil {
		return 0, err
	}
	return c.IPConn.WriteToIP(b, unzoned(addr))
}

func (c *icmpIPConn) WriteMsgIP(b, oob []byte, addr *net.IPAddr) (n, oobn int, err error) {
	if err := c.check(addr, oob); err != nil {
		return 0, 0, err
	}
	return c.IPConn.WriteMsgIP(b, oob, unzoned(addr))
}

// icmpUDPConn is an unprivileged ICMP conn of ListenICMP: a *net.UDPConn
// whose write methods refuse what icmpIPConn's refuse.
type icmpUDPConn struct {
	*net.UDPConn
	index int
}

func (c *icmpUDPConn) check(zone string, addr net.Addr, oob []byte) error {
	var err error
	if zone != "" {
		err = checkZone(zone, c.index, "")
	}
	if err == nil && len(oob) > 0 {
		err = checkOOB(oob, c.index)
	}
	if err != nil {
		return &net.OpError{Op: "write", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: addr, Err: err}
	}
	return nil
}

func (c *icmpUDPConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if a, ok := addr.(*net.UDPAddr); ok && a != nil {
		if err := c.check(a.Zone, a, nil); err != nil {
			return 0, err
		}
		addr, _ = cutAddrZone(a) // the socket's binding is the scope
	}
	return c.UDPConn.WriteTo(b, addr)
}

func (c *icmpUDPConn) WriteToUDP(b []byte, addr *net.UDPAddr) (int, error) {
	if addr != nil {
		if err := c.check(addr.Zone, addr, nil); err != nil {
			return 0, err
		}
	}
	return c.UDPConn.WriteToUDP(b, unzoned(addr))
}

func (c *icmpUDPConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if z := addr.Addr().Zone(); z != "" {
		if err := c.check(z, net.UDPAddrFromAddrPort(addr), nil); err != nil {
			return 0, err
		}
	}
	return c.UDPConn.WriteToUDPAddrPort(b, netip.AddrPortFrom(addr.Addr().WithZone(""), addr.Port()))
}

func (c *icmpUDPConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	zone := ""
	if addr != nil {
		zone = addr.Zone
	}
	if err := c.check(zone, addr, oob); err != nil {
		return 0, 0, err
	}
	return c.UDPConn.WriteMsgUDP(b, oob, unzoned(addr))
}

func (c *icmpUDPConn) WriteMsgUDPAddrPort(b, oob []byte, addr netip.AddrPort) (n, oobn int, err error) {
	if z := addr.Addr().Zone(); z != "" || len(oob) > 0 {
		if err := c.check(z, net.UDPAddrFromAddrPort(addr), oob); err != nil {
			return 0, 0, err
		}
	}
	return c.UDPConn.WriteMsgUDPAddrPort(b, oob, netip.AddrPortFrom(addr.Addr().WithZone(""), addr.Port()))
}

// errPingGroup explains a refused unprivileged ICMP socket.
var errPingGroup = errors.New("unprivileged ICMP sockets need the caller's group in sysctl net.ipv4.ping_group_range; or use a raw \"ip4:icmp\" or \"ip6:ipv6-icmp\" socket with CAP_NET_RAW")
