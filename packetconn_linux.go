package ifbind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

const ingressSupported = true

// ingressOOBSize holds an in_pktinfo or in6_pktinfo message, with room for
// one more that a caller's Control may have asked for.
var ingressOOBSize = unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(unix.SizeofInet4Pktinfo) + 64

// parseIngress finds IP_PKTINFO or IPV6_PKTINFO in a control message buffer
// the kernel filled. It does what unix.ParseSocketControlMessage and
// x/net's ControlMessage.Parse do, without their allocations: it walks the
// headers in place and decodes the two messages it knows. A malformed
// buffer yields what was found before the flaw.
func parseIngress(oob []byte) Ingress {
	var in Ingress
	for {
		level, typ, data, rest, ok := nextCmsg(oob)
		if !ok {
			break
		}
		oob = rest
		switch {
		case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo { int ipi_ifindex; struct in_addr
			// ipi_spec_dst, ipi_addr; }: ipi_addr is the header's
			// destination.
			in.Index = int(int32(binary.NativeEndian.Uint32(data)))
			in.Local = netip.AddrFrom4([4]byte(data[4:8]))
			in.Dst = netip.AddrFrom4([4]byte(data[8:12]))
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			// struct in6_pktinfo { struct in6_addr ipi6_addr; int
			// ipi6_ifindex; }
			in.Dst = netip.AddrFrom16([16]byte(data[:16])).Unmap()
			in.Index = int(int32(binary.NativeEndian.Uint32(data[16:])))
			switch {
			case in.Dst.Is4():
				// A dual-stack conn's IPv4 datagram: Local is
				// IP_PKTINFO's, which comes first, if it came.
			case in.Dst.IsMulticast():
				in.Local = netip.Addr{}
			default:
				in.Local = in.Dst
			}
		}
	}
	return in
}

// replyOOBSize holds the one control message Reply sends.
var replyOOBSize = unix.CmsgSpace(unix.SizeofInet6Pktinfo)

// putCmsgHeader writes a control message header of the given level and
// type, for data of n bytes, at the start of b, and returns the message's
// data part.
func putCmsgHeader(b []byte, level, typ int32, n int) []byte {
	l := unix.CmsgLen(n)
	lenSize := unix.SizeofCmsghdr - 8
	if lenSize == 8 {
		binary.NativeEndian.PutUint64(b, uint64(l))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(l))
	}
	binary.NativeEndian.PutUint32(b[lenSize:], uint32(level))
	binary.NativeEndian.PutUint32(b[lenSize+4:], uint32(typ))
	data := b[unix.CmsgLen(0):l]
	clear(data)
	return data
}

// replyOOB builds, in b, the control message that sends a reply to `to`
// through in.Index from the address the datagram was sent to: IP_PKTINFO
// for an IPv4 `to` (on a dual-stack conn too, which the kernel accepts),
// IPV6_PKTINFO for an IPv6 one. It returns the part of b it filled.
func replyOOB(b []byte, to netip.Addr, in Ingress) []byte {
	if to.Is4() || to.Is4In6() {
		data := putCmsgHeader(b, unix.IPPROTO_IP, unix.IP_PKTINFO, unix.SizeofInet4Pktinfo)
		binary.NativeEndian.PutUint32(data, uint32(in.Index))
		if src := in.Local.Unmap(); src.Is4() {
			a := src.As4()
			copy(data[4:8], a[:]) // ipi_spec_dst: the source address
		}
		return b[:unix.CmsgSpace(unix.SizeofInet4Pktinfo)]
	}
	data := putCmsgHeader(b, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unix.SizeofInet6Pktinfo)
	if src := in.Local; src.Is6() && !src.Is4In6() {
		a := src.As16()
		copy(data[:16], a[:])
	}
	binary.NativeEndian.PutUint32(data[16:], uint32(in.Index))
	return b[:unix.CmsgSpace(unix.SizeofInet6Pktinfo)]
}

// checkOOB refuses control messages that name another outgoing interface
// than index: IP_PKTINFO and IPV6_PKTINFO override the socket's binding on
// an unconnected send. It does not allocate unless it refuses.
func checkOOB(oob []byte, index int) error {
	for {
		level, typ, data, rest, ok := nextCmsg(oob)
		if !ok {
			// The kernel refuses a malformed buffer with EINVAL.
			return nil
		}
		oob = rest
		oif := 0
		switch {
		case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(data) >= 4:
			oif = int(int32(binary.NativeEndian.Uint32(data)))
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			oif = int(int32(binary.NativeEndian.Uint32(data[16:])))
		}
		if oif != 0 && oif != index {
			return &BindError{Index: index, Err: &ingressError{index: oif, pktinfo: true}}
		}
	}
}

// nextCmsg reads the first control message of oob, in place: its level,
// type and data, and what follows it. ok is false when oob holds no whole
// message (it is empty, or malformed from here on).
func nextCmsg(oob []byte) (level, typ int32, data, rest []byte, ok bool) {
	hdr := unix.CmsgLen(0) // the aligned header length
	if len(oob) < unix.SizeofCmsghdr {
		return 0, 0, nil, nil, false
	}
	var l uint64
	if unix.SizeofCmsghdr == 16 {
		l = binary.NativeEndian.Uint64(oob)
	} else {
		l = uint64(binary.NativeEndian.Uint32(oob))
	}
	lenSize := unix.SizeofCmsghdr - 8
	level = int32(binary.NativeEndian.Uint32(oob[lenSize:]))
	typ = int32(binary.NativeEndian.Uint32(oob[lenSize+4:]))
	if l < uint64(hdr) || l > uint64(len(oob)) {
		return 0, 0, nil, nil, false
	}
	data = oob[hdr:l]
	if next := unix.CmsgSpace(int(l) - hdr); next < len(oob) {
		rest = oob[next:]
	}
	return level, typ, data, rest, true
}

// boundOf returns the index c is bound to, 0 for none.
func boundOf(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var got int
	if cerr := rc.Control(func(fd uintptr) { got, err = boundIndex(int(fd)) }); cerr != nil {
		return 0, cerr
	}
	if err != nil {
		return 0, os.NewSyscallError("getsockopt", err)
	}
	return got, nil
}

// checkBound refuses a conn bound to another interface than index.
func checkBound(c *net.UDPConn, index int) error {
	got, err := boundOf(c)
	if err != nil {
		return &BindError{Index: index, Err: err}
	}
	if got != 0 && got != index {
		return &BindError{Index: index, Err: fmt.Errorf("conn is bound to interface %d, not this one (%w)", got, syscall.EINVAL)}
	}
	return nil
}

// ipv6Only reads IPV6_V6ONLY of an IPv6 socket.
func ipv6Only(c *net.UDPConn) (bool, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return false, err
	}
	var v int
	if cerr := rc.Control(func(fd uintptr) { v, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY) }); cerr != nil {
		return false, cerr
	}
	if err != nil {
		return false, os.NewSyscallError("getsockopt", err)
	}
	return v != 0, nil
}

// listenPing makes an unprivileged ICMP socket (SOCK_DGRAM, IPPROTO_ICMP or
// IPPROTO_ICMPV6), runs ctl on it (the binding of a ListenConfig), binds it
// to laddr, scoped to the interface index zone when laddr has a zone, and
// hands it to the net package.
func listenPing(network string, laddr netip.Addr, ctl ctlFunc) (net.PacketConn, error) {
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	var sa unix.Sockaddr = &unix.SockaddrInet4{}
	if network == "udp6" {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
		sa = &unix.SockaddrInet6{}
	}
	if laddr.IsValid() {
		if laddr.Is4() {
			sa = &unix.SockaddrInet4{Addr: laddr.As4()}
		} else {
			sa = &unix.SockaddrInet6{Addr: laddr.As16()}
		}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
	if err != nil {
		err = os.NewSyscallError("socket", err)
		if errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("ifbind: %w (%w)", err, errPingGroup)
		}
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "ifbind-"+network+"-icmp")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	if err := ctl(network, laddr.String(), rc); err != nil {
		return nil, err
	}
	var berr error
	if cerr := rc.Control(func(fd uintptr) {
		if sa6, ok := sa.(*unix.SockaddrInet6); ok && (laddr.IsLinkLocalUnicast() || laddr.IsLinkLocalMulticast()) {
			// A ping socket wants a scope for a link-local address:
			// the one it is bound to, whatever laddr's zone said.
			var index int
			if index, berr = boundIndex(int(fd)); berr != nil {
				return
			}
			sa6.ZoneId = uint32(index)
		}
		berr = unix.Bind(int(fd), sa)
	}); cerr != nil {
		return nil, cerr
	}
	if berr != nil {
		return nil, os.NewSyscallError("bind", berr)
	}
	return net.FilePacketConn(f)
}
