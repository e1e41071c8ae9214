package ifbind

import (
	"encoding/binary"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

// From ws2ipdef.h; golang.org/x/sys/windows does not define them.
const (
	ipUnicastIf     = 31     // IP_UNICAST_IF, at IPPROTO_IP
	ipv6UnicastIf   = 31     // IPV6_UNICAST_IF, at IPPROTO_IPV6
	soProtocolInfoW = 0x2005 // SO_PROTOCOL_INFOW, at SOL_SOCKET (winsock2.h)
)

// bindsReceive tells whether a binding here filters what a socket receives.
// IP_UNICAST_IF and IPV6_UNICAST_IF choose only the interface a socket sends
// through: a listener would still hear every interface, so ListenConfig
// refuses to listen on windows rather than pretend.
const bindsReceive = false

// bindRawConn binds what the socket sends with IPV6_UNICAST_IF and, for an
// IPv4 socket or a dual-stack IPv6 one, IP_UNICAST_IF.
func bindRawConn(c syscall.RawConn, t target) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		err = bindHandle(windows.Handle(fd), t.index)
	}); cerr != nil {
		return cerr
	}
	return err
}

// bindHandle reads the socket's family from SO_PROTOCOL_INFOW, and so never
// trusts the network string: Go hands Control "udp6" for a dual-stack socket
// that carries IPv4 too.
func bindHandle(h windows.Handle, index int) error {
	var info windows.WSAProtocolInfo
	size := int32(unsafe.Sizeof(info))
	if err := windows.Getsockopt(h, windows.SOL_SOCKET, soProtocolInfoW, (*byte)(unsafe.Pointer(&info)), &size); err != nil {
		return &BindError{Index: index, Err: os.NewSyscallError("getsockopt", err)}
	}
	switch info.AddressFamily {
	case windows.AF_INET:
		return bindIPv4(h, index)
	case windows.AF_INET6:
	default:
		return &BindError{Index: index, Err: unsupportedError("binding a socket that is not IPv4 or IPv6")}
	}
	if err := windows.SetsockoptInt(h, windows.IPPROTO_IPV6, ipv6UnicastIf, index); err != nil {
		return &BindError{Index: index, Err: os.NewSyscallError("setsockopt", err)}
	}
	only, err := windows.GetsockoptInt(h, windows.IPPROTO_IPV6, windows.IPV6_V6ONLY)
	if err != nil {
		return &BindError{Index: index, Err: os.NewSyscallError("getsockopt", err)}
	}
	if only != 0 {
		return nil
	}
	return bindIPv4(h, index) // dual-stack: IPv4 goes out through the same interface
}

// bindIPv4 sets IP_UNICAST_IF, which takes the index in network byte order.
func bindIPv4(h windows.Handle, index int) error {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(index))
	if err := windows.Setsockopt(h, windows.IPPROTO_IP, ipUnicastIf, &b[0], int32(len(b))); err != nil {
		return &BindError{Index: index, Err: os.NewSyscallError("setsockopt", err)}
	}
	return nil
}

func dialError(err error, _ int) error { return err }
