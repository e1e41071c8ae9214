package ifbind

import (
	"encoding/binary"
	"os"
	"syscall"

	"golang.org/x/sys/windows"
)

// From ws2ipdef.h; golang.org/x/sys/windows does not define them.
const (
	ipUnicastIf   = 31 // IP_UNICAST_IF, at IPPROTO_IP
	ipv6UnicastIf = 31 // IPV6_UNICAST_IF, at IPPROTO_IPV6
)

// bindRawConn binds with IP_UNICAST_IF and IPV6_UNICAST_IF. The network
// string Go hands Control ends in '4' or '6' after the socket's own family,
// not after the address: an IPv6 socket may be dual-stack and carry IPv4
// too, and then both options are set. Windows binds only the sending side:
// received packets are not filtered by interface.
func bindRawConn(c syscall.RawConn, network string, index int, _ bool) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		err = bindHandle(windows.Handle(fd), network, index)
	}); cerr != nil {
		return cerr
	}
	return err
}

func bindHandle(h windows.Handle, network string, index int) error {
	v6 := len(network) > 0 && network[len(network)-1] == '6'
	if network == "" {
		// No network string (BindRawConn): try IPv6 first, then IPv4.
		if err := windows.SetsockoptInt(h, windows.IPPROTO_IPV6, ipv6UnicastIf, index); err == nil {
			v6 = true
		} else {
			return bindIPv4(h, index)
		}
	} else if v6 {
		if err := windows.SetsockoptInt(h, windows.IPPROTO_IPV6, ipv6UnicastIf, index); err != nil {
			return &bindError{index: index, err: os.NewSyscallError("setsockopt", err)}
		}
	}
	if v6 {
		only, err := windows.GetsockoptInt(h, windows.IPPROTO_IPV6, windows.IPV6_V6ONLY)
		if err != nil {
			return &bindError{index: index, err: os.NewSyscallError("getsockopt", err)}
		}
		if only != 0 {
			return nil
		}
	}
	return bindIPv4(h, index)
}

// bindIPv4 sets IP_UNICAST_IF, which takes the index in network byte order.
func bindIPv4(h windows.Handle, index int) error {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(index))
	if err := windows.Setsockopt(h, windows.IPPROTO_IP, ipUnicastIf, &b[0], int32(len(b))); err != nil {
		return &bindError{index: index, err: os.NewSyscallError("setsockopt", err)}
	}
	return nil
}

func dialError(err error, _ int) error { return err }
