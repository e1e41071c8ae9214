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
	hdr := unix.CmsgLen(0) // the aligned header length
	for len(oob) >= unix.SizeofCmsghdr {
		var l uint64
		if unix.SizeofCmsghdr == 16 {
			l = binary.NativeEndian.Uint64(oob)
		} else {
			l = uint64(binary.NativeEndian.Uint32(oob))
		}
		lenSize := unix.SizeofCmsghdr - 8
		level := int32(binary.NativeEndian.Uint32(oob[lenSize:]))
		typ := int32(binary.NativeEndian.Uint32(oob[lenSize+4:]))
		if l < uint64(hdr) || l > uint64(len(oob)) {
			break
		}
		data := oob[hdr:l]
		switch {
		case level == unix.IPPROTO_IP && typ == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo { int ipi_ifindex; struct in_addr
			// ipi_spec_dst, ipi_addr; }: ipi_addr is the header's
			// destination.
			in.Index = int(int32(binary.NativeEndian.Uint32(data)))
			in.Dst = netip.AddrFrom4([4]byte(data[8:12]))
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			// struct in6_pktinfo { struct in6_addr ipi6_addr; int
			// ipi6_ifindex; }
			in.Dst = netip.AddrFrom16([16]byte(data[:16])).Unmap()
			in.Index = int(int32(binary.NativeEndian.Uint32(data[16:])))
		}
		next := unix.CmsgSpace(int(l) - hdr)
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return in
}

// checkBound refuses a conn bound to another interface than index.
func checkBound(c *net.UDPConn, index int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var got int
	if cerr := rc.Control(func(fd uintptr) { got, err = boundIndex(int(fd)) }); cerr != nil {
		return cerr
	}
	if err != nil {
		return &BindError{Index: index, Err: os.NewSyscallError("getsockopt", err)}
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
func listenPing(network string, laddr netip.Addr, zone int, ctl ctlFunc) (net.PacketConn, error) {
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
			sa = &unix.SockaddrInet6{Addr: laddr.As16(), ZoneId: uint32(zone)}
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
	if cerr := rc.Control(func(fd uintptr) { berr = unix.Bind(int(fd), sa) }); cerr != nil {
		return nil, cerr
	}
	if berr != nil {
		return nil, os.NewSyscallError("bind", berr)
	}
	return net.FilePacketConn(f)
}
