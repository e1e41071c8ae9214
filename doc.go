// Package ifbind keeps a Go program's traffic on one network interface.
//
// A Dialer and a ListenConfig embed net.Dialer and net.ListenConfig and bind
// every socket they create to an interface by its index, in the Control hook,
// before the socket connects or binds. Packets then leave and arrive only
// through that interface, whatever the routing table says. Everything else
// about the embedded types works as before, the caller's own Control hooks
// included, and NetDialer and NetListenConfig hand the binding to APIs that
// take the plain types.
//
//	d := &ifbind.Dialer{Index: link.Index}
//	conn, err := d.DialContext(ctx, "tcp", "192.0.2.10:443")
//
// # Why bind by index
//
// SO_BINDTODEVICE, the older way, takes the interface's name. Names change
// under a running program: udev renames interfaces, the hand-over from an
// initrd to the real system renames them again, containers move links
// between namespaces. A program that holds an index and resolves it to a name
// in order to bind can bind to another interface, the one that took the name
// a moment later, or fail. SO_BINDTOIFINDEX (Linux 5.0) takes the index and
// closes that race, and ifbind uses nothing else on Linux.
//
// # Failing closed
//
// A socket that cannot be bound is an error, never a socket that leaves by
// the default route: an Index of 0, an index that names no interface
// (errors.Is(err, syscall.ENODEV)), a refused binding (syscall.EPERM, with
// what would fix it), a platform without a way to bind (ErrUnsupported).
// The kernel itself lets an IPv4 socket bind to a missing index and then
// receive nothing; ifbind checks listeners for that, and names the missing
// interface when a dial fails because of it.
//
// # Requirements
//
// Linux 5.0 or newer binds by index. On older kernels ifbind falls back to
// SO_BINDTODEVICE with the name the index has at that moment and reads the
// binding back, binding again or failing when a rename came in between.
// Binding a fresh socket needs no privilege on Linux 5.7 and newer; binding
// a socket that is already bound, or any socket on older kernels, needs
// CAP_NET_RAW. On darwin ifbind uses IP_BOUND_IF and IPV6_BOUND_IF, on
// windows IP_UNICAST_IF and IPV6_UNICAST_IF (which bind only what is sent);
// on other systems every bind returns ErrUnsupported.
package ifbind
