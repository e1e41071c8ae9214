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
	// socket before it connects.
	Binding Binding
}

// NetDialer returns a copy of the embedded net.Dialer whose ControlContext
// binds every socket to d.Index, or to the link d.Binding chooses, before
// running d's own Control or ControlContext, for APIs that take a
// *net.Dialer, such as tls.Dialer.NetDialer and tls.DialWithDialer. Later
// changes to d do not affect the copy. A d that cannot bind (Index 0, both
// fields set) gives a copy whose every dial fails.
//
// Errors from a dial through the copy are those of net.Dialer: when the
// interface has gone, they say "no such device" (IPv4) or "network is
// unreachable" (IPv6), where d's own methods say which interface is missing.
func (d *Dialer) NetDialer() *net.Dialer {
	bd, _ := newBinder(d.Index, d.Binding, false, d.Control, d.ControlContext)
	nd := d.Dialer
	nd.Control = nil
	nd.ControlContext = bd.dialHook()
	return &nd
}

// prepare returns a copy of d.Dialer whose sockets are bound, and the binder
// that binds them, or the error of a dial that cannot bind, before any
// socket exists.
func (d *Dialer) prepare(network string) (net.Dialer, binder, error) {
	bd, err := newBinder(d.Index, d.Binding, false, d.Control, d.ControlContext)
	if err != nil {
		return net.Dialer{}, bd, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	if bd.b != nil {
		bd.bound = new(int64) // each socket's index, for dialError
	}
	nd := d.Dialer
	nd.Control = nil
	nd.ControlContext = bd.dialHook()
	return nd, bd, nil
}

// dial is the body of every Dial method: it makes the bound copy of d's
// net.Dialer, dials through it with do, and names the cause of a failure.
// do takes the copy by value: a pointer handed to a func value would move
// the copy to the heap, one allocation more per dial.
func dial[C any](d *Dialer, network string, do func(nd net.Dialer) (C, error)) (C, error) {
	nd, bd, err := d.prepare(network)
	if err != nil {
		var zero C
		return zero, err
	}
	c, err := do(nd)
	if err != nil {
		index := bd.fixed()
		if bd.bound != nil {
			if index = int(atomic.LoadInt64(bd.bound)); index == 0 {
				return c, err // failed before any socket was bound
			}
		}
		return c, dialError(err, index)
	}
	return c, nil
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
// that resolver is. Unix networks ("unix", "unixgram", "unixpacket") reach no
// interface: they are dialed as by net.Dialer, without binding.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if isUnixNetwork(network) {
		return d.Dialer.DialContext(ctx, network, address)
	}
	return dial(d, network, func(nd net.Dialer) (net.Conn, error) {
		return nd.DialContext(ctx, network, address)
	})
}

// DialTCP is net.Dialer's DialTCP through a socket bound to d.Index, or to
// the link d.Binding chooses. ctx bounds the connect; it does not affect the
// connection once made.
func (d *Dialer) DialTCP(ctx context.Context, network string, laddr, raddr netip.AddrPort) (*net.TCPConn, error) {
	return dial(d, network, func(nd net.Dialer) (*net.TCPConn, error) {
		return nd.DialTCP(ctx, network, laddr, raddr)
	})
}

// DialUDP is net.Dialer's DialUDP through a socket bound to d.Index, or to
// the link d.Binding chooses. ctx bounds the making of the socket; it does
// not affect the conn once made.
func (d *Dialer) DialUDP(ctx context.Context, network string, laddr, raddr netip.AddrPort) (*net.UDPConn, error) {
	return dial(d, network, func(nd net.Dialer) (*net.UDPConn, error) {
		return nd.DialUDP(ctx, network, laddr, raddr)
	})
}

// DialIP is net.Dialer's DialIP through a raw IP socket bound to d.Index,
// or to the link d.Binding chooses. Raw sockets need CAP_NET_RAW. ctx bounds
// the making of the socket; it does not affect the conn once made.
func (d *Dialer) DialIP(ctx context.Context, network string, laddr, raddr netip.Addr) (*net.IPConn, error) {
	return dial(d, network, func(nd net.Dialer) (*net.IPConn, error) {
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
