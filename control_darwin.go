package ifbind

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// bindsReceive tells whether a binding here filters what a socket receives:
// on darwin a socket bound with IP_BOUND_IF or IPV6_BOUND_IF sends and
// receives through its interface only.
const bindsReceive = true

func bindRawConn(c syscall.RawConn, t target) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		err = bindFD(int(fd), t.index)
	}); cerr != nil {
		return cerr
	}
	return err
}

// bindFD binds fd with IP_BOUND_IF or IPV6_BOUND_IF, chosen by the socket's
// own family: Go hands Control "tcp6" or "udp6" for a dual-stack socket that
// also carries IPv4. Both options set the same binding in the kernel, and the
// kernel rejects an index that names no interface, with ENXIO, which is
// reported as ENODEV, as on Linux.
func bindFD(fd, index int) error {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return &BindError{Index: index, Err: os.NewSyscallError("getsockname", err)}
	}
	level, opt := unix.IPPROTO_IP, unix.IP_BOUND_IF
	switch sa.(type) {
	case *unix.SockaddrInet4:
	case *unix.SockaddrInet6:
		level, opt = unix.IPPROTO_IPV6, unix.IPV6_BOUND_IF
	default:
		return &BindError{Index: index, Err: unsupportedError("binding a socket that is not IPv4 or IPv6")}
	}
	if err := unix.SetsockoptInt(fd, level, opt, index); err != nil {
		if err == unix.ENXIO {
			return &BindError{Index: index, Err: syscall.ENODEV}
		}
		return &BindError{Index: index, Err: os.NewSyscallError("setsockopt", err)}
	}
	return nil
}

func dialError(err error, _ int) error { return err }
