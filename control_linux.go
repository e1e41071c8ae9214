package ifbind

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockOps are the socket operations a binding is made of. The package uses
// kernelOps; tests hand bindFD other values to drive the fallback for kernels
// older than 5.0, which this kernel is not.
type sockOps struct {
	bindIndex    func(fd, index int) error           // setsockopt(SO_BINDTOIFINDEX)
	bindName     func(fd int, name string) error     // setsockopt(SO_BINDTODEVICE)
	boundIndex   func(fd int) (int, error)           // the index the socket is bound to
	indexName    func(fd, index int) (string, error) // the name index has now
	checkBinding func(fd int) error                  // ENODEV unless fd is bound to an interface that exists
}

var kernelOps = sockOps{
	bindIndex: func(fd, index int) error {
		return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, index)
	},
	bindName: func(fd int, name string) error {
		return unix.BindToDevice(fd, name)
	},
	boundIndex:   boundIndex,
	indexName:    indexName,
	checkBinding: checkBinding,
}

// bindsReceive tells whether a binding here filters what a socket receives:
// on Linux a bound socket sends and receives through its interface only.
const bindsReceive = true

// fallbackTries bounds how often the SO_BINDTODEVICE fallback binds again
// after an interface was renamed under it.
const fallbackTries = 3

func bindRawConn(c syscall.RawConn, t target) error {
	var err error
	if cerr := c.Control(func(fd uintptr) {
		err = bindFD(int(fd), t, &kernelOps)
	}); cerr != nil {
		return cerr
	}
	return err
}

// bindFD binds fd to t.index. With t.check set it also makes sure that the
// socket is bound to an interface that exists, which the kernel does not
// check for SO_BINDTOIFINDEX.
func bindFD(fd int, t target, ops *sockOps) error {
	index := t.index
	err := ops.bindIndex(fd, index)
	switch {
	case err == nil:
		if !t.check {
			return nil
		}
		if err = ops.checkBinding(fd); err == nil {
			return nil
		}
		if errors.Is(err, unix.ENODEV) {
			return &BindError{Index: index, Err: syscall.ENODEV}
		}
		err = os.NewSyscallError("getsockopt", err)
	case err == unix.ENOPROTOOPT:
		// Linux before 5.0: bind by the name the index has now.
		if err = bindByName(fd, index, ops); err == nil {
			return nil
		}
	default:
		err = os.NewSyscallError("setsockopt", err)
	}
	name := t.name
	if name == "" {
		name, _ = ops.indexName(fd, index)
	}
	return &BindError{Index: index, Name: name, Err: err}
}

// bindByName binds fd with SO_BINDTODEVICE to the name index has, then reads
// the binding back, so that an interface renamed between the lookup and the
// binding is caught: the socket is bound again, or the binding fails.
func bindByName(fd, index int, ops *sockOps) error {
	for range fallbackTries {
		name, err := ops.indexName(fd, index)
		if err != nil {
			if errors.Is(err, unix.ENODEV) {
				return syscall.ENODEV
			}
			return os.NewSyscallError("ioctl", err)
		}
		if err := ops.bindName(fd, name); err != nil {
			if err == unix.ENODEV {
				continue // renamed away since the lookup
			}
			return os.NewSyscallError("setsockopt", err)
		}
		got, err := ops.boundIndex(fd)
		if err != nil {
			return os.NewSyscallError("getsockopt", err)
		}
		if got == index {
			return nil
		}
		// Another interface carried the name when the socket was bound.
	}
	return fmt.Errorf("interface renamed while binding by name, %d times: %w", fallbackTries, syscall.EAGAIN)
}

// boundIndex returns the index fd is bound to, 0 for none.
func boundIndex(fd int) (int, error) {
	index, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX)
	if err != unix.ENOPROTOOPT {
		return index, err
	}
	return boundIndexByName(fd)
}

// boundIndexByName returns the index fd is bound to on kernels before 5.0,
// which tell only the name: it reads the name and asks for its index.
func boundIndexByName(fd int) (int, error) {
	name, err := unix.GetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE)
	if err != nil || name == "" {
		return 0, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, err
	}
	return int(ifr.Uint32()), nil
}

// indexName returns the name the interface with index has in fd's network
// namespace, or ENODEV.
func indexName(fd, index int) (string, error) {
	var ifr unix.Ifreq
	ifr.SetUint32(uint32(index))
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFNAME, &ifr); err != nil {
		return "", err
	}
	return ifr.Name(), nil
}

// checkBinding reads the binding of fd back as a name (getsockopt
// SO_BINDTODEVICE), which the kernel answers with ENODEV when the index fd
// is bound to names no interface. It is one system call, the cheapest
// check we measured (SIOCGIFNAME takes about 13 % longer), and makes no
// string.
func checkBinding(fd int) error {
	var name [unix.IFNAMSIZ]byte
	n := uint32(len(name))
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE,
		uintptr(unsafe.Pointer(&name[0])), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// dialError names the cause of a failed connect on a socket bound to index:
// the kernel answers ENODEV (IPv4) or ENETUNREACH (IPv6) when the interface
// is gone, and only a look at the interface tells the two apart. The look
// happens on failure only, so that dials pay nothing for it.
func dialError(err error, index int) error {
	var oe *net.OpError
	if !errors.As(err, &oe) {
		return err
	}
	var se *os.SyscallError
	if !errors.As(oe.Err, &se) || se.Syscall != "connect" {
		return err
	}
	switch se.Err {
	case unix.ENODEV, unix.ENETUNREACH, unix.EHOSTUNREACH, unix.EADDRNOTAVAIL, unix.EINVAL:
	default:
		return err
	}
	if interfaceExists(index) {
		return err
	}
	e := *oe
	e.Err = &BindError{Index: index, Err: syscall.ENODEV}
	return &e
}

// interfaceExists reports whether index names an interface in the calling
// thread's network namespace. It answers true when it cannot tell.
func interfaceExists(index int) bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return true
		}
	}
	defer unix.Close(fd)
	_, err = indexName(fd, index)
	return !errors.Is(err, unix.ENODEV)
}

// refuseMultipathTCP fails when c is a Multipath TCP socket, which would
// open subflows through other interfaces than t's: the caller turned it on
// in a copy from NetDialer or NetListenConfig.
func refuseMultipathTCP(c syscall.RawConn, t target) error {
	var proto int
	var err error
	if cerr := c.Control(func(fd uintptr) {
		proto, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL)
	}); cerr != nil {
		return cerr
	}
	if err != nil {
		return &BindError{Index: t.index, Name: t.name, Err: os.NewSyscallError("getsockopt", err)}
	}
	if proto == unix.IPPROTO_MPTCP {
		return &BindError{Index: t.index, Name: t.name, Err: errMultipathTCP}
	}
	return nil
}
