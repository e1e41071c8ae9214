package ifbind

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// UplinkOf returns the link c's socket is bound to, read back from the
// kernel (SO_BINDTOIFINDEX): for a conn an Uplinks made, the uplink it went
// through, and for one a Dialer made, its interface. It keeps no record of
// conns, so it costs a dial nothing and holds no conn alive. It reports
// false when c is not a socket (a tls.Conn: pass its NetConn), is closed,
// or is bound to no interface.
//
// The Link's Name, flags and the rest are looked up by index through
// netlink when UplinkOf is called, in the calling thread's network
// namespace: they are what the link has then. When that lookup fails (the
// link was deleted since), the Link has only the Index. UplinkOf is safe
// for concurrent use. It needs Linux 5.0 (reading SO_BINDTOIFINDEX back);
// before, and outside Linux, it reports false.
func UplinkOf(c net.Conn) (Link, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return Link{}, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return Link{}, false
	}
	var index int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		index, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX)
	}); err != nil || serr != nil || index <= 0 {
		return Link{}, false
	}
	l, err := LinkByIndex(index)
	if err != nil {
		return Link{Index: index}, true
	}
	return l, true
}
