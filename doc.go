// Package ifbind keeps a Go program's traffic on one network interface.
//
// A Dialer and a ListenConfig embed net.Dialer and net.ListenConfig and bind
// every socket they create to an interface by its index, in the Control hook,
// before the socket connects or binds; the caller's own hooks run after, and
// everything else about the embedded types works as before. NetDialer and
// NetListenConfig hand the binding to APIs that take the plain types.
//
//	d := &ifbind.Dialer{Index: link.Index}
//	conn, err := d.DialContext(ctx, "tcp", "192.0.2.10:443")
//
// A socket that cannot be bound is an error, never a socket that leaves by
// the default route: an Index of 0, an index that names no interface
// (syscall.ENODEV: listeners are checked, since the kernel lets an IPv4
// socket bind to a missing index), a refused binding (syscall.EPERM), a
// platform without a way to bind (ErrUnsupported). See BindError.
//
// On Linux 5.0 and newer ifbind binds with SO_BINDTOIFINDEX, which takes the
// index, so that a rename cannot make a socket bind to another interface; on
// older kernels it binds with SO_BINDTODEVICE to the name the index has, then
// reads the binding back. A fresh socket needs no privilege on Linux 5.7 and
// newer; re-binding one, or any on older kernels, needs CAP_NET_RAW. darwin
// uses IP_BOUND_IF and IPV6_BOUND_IF, windows IP_UNICAST_IF and
// IPV6_UNICAST_IF (which bind only what is sent: listens fail); elsewhere
// every bind fails with ErrUnsupported. The README says why.
package ifbind
