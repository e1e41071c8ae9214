package ifbind

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
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
// ctx is used while the conn is made; it does not affect the conn once
// made. Privileges are those of a bound listen (see BindRawConn), plus
// those of binding a port below 1024 where laddr asks for one.
func (lc *ListenConfig) ListenUDP(ctx context.Context, network string, laddr netip.AddrPort) (*net.UDPConn, error) {
	switch network {
	case "udp", "udp4", "udp6":
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	nlc, bd, err := lc.prepare(network, true)
	if err != nil {
		return nil, err
	}
	address := ":" + strconv.Itoa(int(laddr.Port()))
	if laddr.Addr().IsValid() {
		address = laddr.String()
	}
	pc, err := nlc.ListenPacket(ctx, network, address)
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
}

// An IngressReader reads datagrams from a UDP conn together with their
// Ingress, without allocating: for a program that shares one wildcard socket
// across NICs and must tell, per datagram, which NIC and which destination
// (unicast, broadcast, multicast) it came through, for example to answer
// through the same NIC with a Dialer or a ListenConfig of that index.
//
// It is made by NewIngressReader and holds a buffer for control messages,
// so it is not safe for concurrent use: give each reading goroutine its
// own. Linux only; elsewhere NewIngressReader returns an error wrapping
// ErrUnsupported.
type IngressReader struct {
	c   *net.UDPConn
	oob []byte
}

// NewIngressReader asks the kernel to attach ingress information to every
// datagram c receives from now on (IP_PKTINFO on an IPv4 conn,
// IPV6_RECVPKTINFO on an IPv6 or dual-stack one, set through
// golang.org/x/net/ipv4 and ipv6) and returns a reader of c. c may be bound
// to an interface or not.
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
	} else {
		err = ipv6.NewPacketConn(c).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
	}
	if err != nil {
		return nil, fmt.Errorf("ifbind: ingress information: %w", err)
	}
	return &IngressReader{c: c, oob: make([]byte, ingressOOBSize)}, nil
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

// ListenICMP opens an ICMP packet conn bound to lc.Index, as `ping -I`
// does, for sending echo requests and reading what comes back. laddr is the
// local address; the zero value means any. network is one of:
//
//   - "ip4:icmp" or "ip4:1", "ip6:ipv6-icmp" or "ip6:58": a raw socket,
//     which needs CAP_NET_RAW, made by the net package. The conn is a
//     *net.IPConn; it reads every ICMP message that arrives through the
//     interface, without the IPv4 header.
//   - "udp4" or "udp6": an unprivileged ICMP ("ping") socket of Linux,
//     which needs the caller's group in sysctl net.ipv4.ping_group_range
//     (for both families); a refusal unwraps to syscall.EACCES. The conn is
//     a *net.UDPConn that writes to and reads from *net.UDPAddr (the port
//     is not used); the kernel sets the echo identifier and delivers only
//     the replies to it. Elsewhere these fail with ErrUnsupported.
//
// Messages are built and parsed with golang.org/x/net/icmp. ctx is used
// while the conn is made; it does not affect the conn once made.
func (lc *ListenConfig) ListenICMP(ctx context.Context, network string, laddr netip.Addr) (net.PacketConn, error) {
	address := ""
	if laddr.IsValid() {
		address = laddr.String()
	}
	switch network {
	case "ip4:icmp", "ip4:1", "ip6:ipv6-icmp", "ip6:58":
		nlc, _, err := lc.prepare(network, false)
		if err != nil {
			return nil, err
		}
		return nlc.ListenPacket(ctx, network, address)
	case "udp4", "udp6":
		nlc, _, err := lc.prepare(network, false)
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, &net.OpError{Op: "listen", Net: network, Err: err}
		}
		if laddr.IsValid() && (laddr.Is4() || laddr.Is4In6()) != (network == "udp4") {
			return nil, &net.OpError{Op: "listen", Net: network, Err: &net.AddrError{Err: "address of the wrong family", Addr: address}}
		}
		c, err := listenPing(network, laddr.Unmap(), nlc.Control)
		if err != nil {
			return nil, &net.OpError{Op: "listen", Net: network, Err: err}
		}
		return c, nil
	}
	return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
}

// errPingGroup explains a refused unprivileged ICMP socket.
var errPingGroup = errors.New("unprivileged ICMP sockets need the caller's group in sysctl net.ipv4.ping_group_range; or use a raw \"ip4:icmp\" or \"ip6:ipv6-icmp\" socket with CAP_NET_RAW")
