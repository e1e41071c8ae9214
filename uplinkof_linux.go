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
// The Link's Name is the one the link has now, in the socket's network
// namespace; its flags and the rest are looked up by index through netlink,
// in the calling thread's namespace, and given only when that lookup finds
// the same name. Otherwise (a socket of another namespace, a link deleted
// since) the Link has only the Index and the Name, if any. UplinkOf is safe
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
	var name string
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if index, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX); serr == nil && index > 0 {
			// Named in the socket's own namespace, which may not be
			// the caller's (Netns).
			name, _ = indexName(int(fd), index)
		}
	}); err != nil || serr != nil || index <= 0 {
		return Link{}, false
	}
	l, err := LinkByIndex(index)
	if err != nil || l.Name != name {
		// Gone, or a link of another namespace: what the socket says.
		return Link{Index: index, Name: name}, true
	}
	return l, true
}
