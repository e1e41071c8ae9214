package ifbind

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
)

// A Dialer is a net.Dialer that binds every socket it creates to one network
// interface, by index, before the socket connects. Packets then leave and
// arrive only through that interface, whatever the routing table says, and a
// rename of the interface cannot move the binding to another one.
//
// Every field of the embedded net.Dialer works as it does there, Control and
// ControlContext included: the binding is made first, and the caller's hook
// then sees the socket already bound; an error from it aborts the socket.
//
// Multipath TCP cannot be bound: the kernel's path manager opens subflows
// through the endpoints of other interfaces, whatever the first one was bound
// to. Every TCP dial of a Dialer whose MultipathTCP reports true
// (SetMultipathTCP(true), or GODEBUG=multipathtcp=1 or 3) fails before any
// socket exists, with a *BindError for which errors.Is(err, ErrUnsupported)
// holds; the default is plain TCP.
//
// A zone that names another interface, in the address dialed or in
// LocalAddr (a bind to fe80::1%eth2 would rebind the socket to eth2), fails
// the dial with a *BindError for which errors.Is(err, syscall.EINVAL)
// holds. The conns returned are net's own: what ifbind cannot see on them
// is said at ListenUDP.
//
// The zero value has no interface to bind to and every dial fails: set Index,
// or Binding to follow a name or pin a link through a Monitor. A Dialer is
// safe for concurrent use, as long as its fields are not changed while dials
// run.
type Dialer struct {
	net.Dialer

	// Index is the index of the interface to bind to, as in
	// net.Interface.Index or Link.Index. 0 means none: every dial fails
	// rather than leave by the default route. An index that names no
	// interface fails with an error for which errors.Is(err,
	// syscall.ENODEV) holds.
	Index int

	// Binding, when not nil, chooses the interface for each socket in place
	// of Index, which must then be 0: a Dialer with both set fails every
	// dial. Bindings come from a Monitor: Follow binds each socket to
	// whatever link has a name when the socket is made, Pin to one link
	// until it is deleted. Each socket reads the monitor's table once,
	// without a lock or a system call; a binding that cannot be made (no
	// link by that name, a pinned link gone, a closed monitor) fails the
	// socket before it connects. A Binding from PinClosing also closes the
	// conns when their link goes, and Dial and DialContext then return
	// wrappers: see PinClosing.
	Binding Binding

	// Netns, when not "", is the network namespace every socket is made
	// in: a name under /run/netns ("blue"), or a path such as
	// /proc/PID/ns/net or /proc/self/fd/N. Index and Binding are then read
	// in that namespace, and a Binding must come from NewMonitorAt of the
	// same namespace. "" means the caller's namespace, or the one of a
	// Binding from NewMonitorAt. Names are resolved as without Netns, by
	// d.Resolver in the caller's namespace, unless d.Resolver is one from
	// NewResolver(d). Each socket opens Netns anew, so a namespace deleted
	// or gone with its process fails the dial with an error for which
	// errors.Is(err, ErrNetnsGone) holds; the errors name Netns. Making a
	// socket there needs CAP_SYS_ADMIN over the namespace (see
	// NewMonitorAt); Linux only, elsewhere dials fail with ErrUnsupported.
	// Unix networks are dialed in the caller's namespace.
	Netns string
}

// NetDialer returns a copy of the embedded net.Dialer whose ControlContext
// binds every socket to d.Index, or to the link d.Binding chooses, before
// running d's own Control or ControlContext, for APIs that take a
// *net.Dialer, such as tls.Dialer.NetDialer and tls.DialWithDialer. Later
// changes to d do not affect the copy. A d that cannot bind (Index 0, both
// fields set) gives a copy whose every dial fails.
//
// The copy's hook refuses a Multipath TCP socket before binding it (see
// Dialer): a copy set to Multipath TCP, by d or later, dials plain TCP,
// since net falls back to it when Multipath TCP fails.
//
// The copy's hook never sees the local address: the zone of d.LocalAddr is
// checked and cut when the copy is made, but a zoned IPv6 LocalAddr set on
// the copy later, or a zoned laddr passed to its DialTCP, DialUDP or DialIP,
// would rebind the socket to the interface the zone names. Give the copy
// none; d's own methods check and cut such zones.
//
// Errors from a dial through the copy are those of net.Dialer: when the
// interface has gone, they say "no such device" (IPv4) or "network is
// unreachable" (IPv6), where d's own methods say which interface is missing.
//
// With Netns set, or a Binding from NewMonitorAt, every dial through the copy
// fails: a net.Dialer makes its sockets in the caller's namespace.
func (d *Dialer) NetDialer() *net.Dialer {
	bd, _ := newBinder(d.Index, d.Binding, false, d.Control, d.ControlContext)
	bd.exposed = true
	if g := closingOf(d.Binding); g != nil {
		bd.fail(g.unwrappable("NetDialer"))
	}
	if d.inNetns() {
		bd.fail(&netnsError{netns: d.Netns, err: errNetnsNetDialer})
	}
	nd := d.Dialer
	var zone string
	nd.LocalAddr, zone = cutAddrZone(nd.LocalAddr)
	bd.setLocalZone(zone)
	nd.Control = nil
	nd.ControlContext = bd.dialHook()
	return &nd
}

// prepare returns a copy of d.Dialer whose sockets are bound, and the binder
// that binds them, or the error of a dial that cannot bind, before any
// socket exists.
//
// lzone is the zone of a local address the Dial method itself was given
// (DialTCP's laddr...), which the caller cut from it: checked as
// LocalAddr's is, and never seen by the kernel.
func (d *Dialer) prepare(network, lzone string) (net.Dialer, binder, error) {
	bd, err := newBinder(d.Index, d.Binding, false, d.Control, d.ControlContext)
	if err != nil {
		return net.Dialer{}, bd, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	if bd.b != nil {
		bd.bound = new(int64) // each socket's index, for dialError
	}
	if err := bd.enter(d.Netns); err != nil {
		return net.Dialer{}, bd, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	nd := d.Dialer
	// The binder checks the zone; the kernel never sees it (see cutZone).
	var zone string
	nd.LocalAddr, zone = cutAddrZone(nd.LocalAddr)
	bd.setLocalZone(zone)
	bd.setLocalZone(lzone) // the Dial method's own laddr, used in LocalAddr's place
	if isTCPNetwork(network) && nd.MultipathTCP() {
		return net.Dialer{}, bd, &net.OpError{Op: "dial", Net: network, Err: &BindError{Index: d.Index, Err: errMultipathTCP}}
	}
	nd.SetMultipathTCP(false)
	nd.Control = nil
	nd.ControlContext = bd.dialHook()
	return nd, bd, nil
}

// dial is the body of every Dial method: it makes the bound copy of d's
// net.Dialer, dials through it with do, and names the cause of a failure.
// Dials made in another namespace go through dialInNetns instead.
// do takes the copy by value: a pointer handed to a func value would move
// the copy to the heap, one allocation more per dial.
func dial[C any](d *Dialer, network, lzone string, do func(nd net.Dialer) (C, error)) (C, error) {
	nd, bd, err := d.prepare(network, lzone)
	if err != nil {
		var zero C
		return zero, err
	}
	c, err := do(nd)
	if err != nil {
		return c, bd.dialError(err)
	}
	return c, nil
}

// dialError names the cause of err, the failure of a dial through bd.
func (bd *binder) dialError(err error) error {
	index := bd.fixed()
	if bd.bound != nil {
		if index = int(atomic.LoadInt64(bd.bound)); index == 0 {
			return err // failed before any socket was bound
		}
	}
	if bd.ns != nil {
		return netnsDialError(bd.ns.ref, err, index)
	}
	return dialError(err, index)
}

// Dial is DialContext with the background context.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address on the named network, as net.Dialer's
// DialContext does, through a socket bound to d.Index, or to the link
// d.Binding chooses (each socket of a dial that tries several addresses
// resolves it anew). ctx bounds the whole dial, name resolution included; it
// does not affect the connection once made.
//
// Name resolution uses d.Resolver and is not bound to the interface unless
// that resolver is. When that resolver was made by NewResolver, a
// *net.DNSError names as its Server the nameserver asked. Unix networks
// ("unix", "unixgram", "unixpacket") reach no interface: they are dialed as
// by net.Dialer, without binding.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if isUnixNetwork(network) {
		return d.Dialer.DialContext(ctx, network, address)
	}
	var a *asked
	if d.Resolver != nil && isHostName(address) {
		ctx, a = withAsked(ctx) // for a DNS error, the nameserver asked
	}
	var c net.Conn
	var err error
	if d.inNetns() {
		c, err = d.dialNetns(ctx, network, address)
	} else {
		c, err = dial(d, network, "", func(nd net.Dialer) (net.Conn, error) {
			return nd.DialContext(ctx, network, address)
		})
	}
	if err != nil && a != nil {
		err = a.name(err)
	}
	if g := closingOf(d.Binding); g != nil && err == nil {
		return g.wrapConn(c, "dial", network)
	}
	return c, err
}

// dialNet is the body of DialTCP, DialUDP and DialIP, which return net's
// own types: a closing binding, whose conns would need wrapping, is refused.
func dialNet[C any](d *Dialer, network, method, lzone string, do func(nd net.Dialer) (C, error)) (C, error) {
	if err := closingRefused(d.Binding, "dial", network, method); err != nil {
		var zero C
		return zero, err
	}
	if d.inNetns() {
		return dialInNetns(d, network, lzone, do)
	}
	return dial(d, network, lzone, do)
}

// DialTCP is net.Dialer's DialTCP through a socket bound to d.Index, or to
// the link d.Binding chooses. ctx bounds the connect; it does not affect the
// connection once made.
func (d *Dialer) DialTCP(ctx context.Context, network string, laddr, raddr netip.AddrPort) (*net.TCPConn, error) {
	// A zone in laddr would rebind the socket (see cutZone): checked,
	// then cut.
	lzone := laddr.Addr().Zone()
	laddr = netip.AddrPortFrom(laddr.Addr().WithZone(""), laddr.Port())
	return dialNet(d, network, "DialTCP", lzone, func(nd net.Dialer) (*net.TCPConn, error) {
		return nd.DialTCP(ctx, network, laddr, raddr)
	})
}

// DialUDP is net.Dialer's DialUDP through a socket bound to d.Index, or to
// the link d.Binding chooses. ctx bounds the making of the socket; it does
// not affect the conn once made.
func (d *Dialer) DialUDP(ctx context.Context, network string, laddr, raddr netip.AddrPort) (*net.UDPConn, error) {
	// A zone in laddr would rebind the socket (see cutZone): checked,
	// then cut.
	lzone := laddr.Addr().Zone()
	laddr = netip.AddrPortFrom(laddr.Addr().WithZone(""), laddr.Port())
	return dialNet(d, network, "DialUDP", lzone, func(nd net.Dialer) (*net.UDPConn, error) {
		return nd.DialUDP(ctx, network, laddr, raddr)
	})
}

// DialIP is net.Dialer's DialIP through a raw IP socket bound to d.Index,
// or to the link d.Binding chooses. Raw sockets need CAP_NET_RAW. ctx bounds
// the making of the socket; it does not affect the conn once made.
func (d *Dialer) DialIP(ctx context.Context, network string, laddr, raddr netip.Addr) (*net.IPConn, error) {
	lzone := laddr.Zone() // checked, then cut, as DialTCP's
	laddr = laddr.WithZone("")
	return dialNet(d, network, "DialIP", lzone, func(nd net.Dialer) (*net.IPConn, error) {
		return nd.DialIP(ctx, network, laddr, raddr)
	})
}

// DialUnix is net.Dialer's DialUnix, unchanged: a Unix domain socket never
// reaches a network interface, so there is nothing to bind and d.Index is
// not consulted, nor is d.Binding. It is defined so that this is said, not
// promoted silently.
func (d *Dialer) DialUnix(ctx context.Context, network string, laddr, raddr *net.UnixAddr) (*net.UnixConn, error) {
	return d.Dialer.DialUnix(ctx, network, laddr, raddr)
}
