package ifbind

import (
	"context"
	"net"
)

// A ListenConfig is a net.ListenConfig that binds every socket it creates to
// one network interface, by index, before the socket binds to its address.
// A listener then accepts, and a packet conn receives, only what arrives
// through that interface, and sends only through it; several sockets may
// share one port when each is bound to a different interface.
//
// Every field of the embedded net.ListenConfig works as it does there,
// Control included: the binding is made first, and the caller's Control then
// sees the socket already bound; an error from it aborts the socket.
//
// A listener is always plain TCP, never Multipath TCP, whose path manager
// would accept and open subflows through other interfaces: Listen turns it
// off whatever the embedded config says (net cannot tell its default from
// SetMultipathTCP(true)). A Multipath TCP client then falls back to TCP.
//
// A listen address whose zone names another interface (a bind to
// fe80::1%eth2 would rebind the socket to eth2) fails with a *BindError for
// which errors.Is(err, syscall.EINVAL) holds. The conns returned are net's
// own, whose writes ifbind does not see: a zone or a control message in a
// write can still pick another interface (see ListenUDP).
//
// The zero value has no interface to bind to and every listen fails: set
// Index, or Binding to follow a name or pin a link through a Monitor. A
// ListenConfig is safe for concurrent use, as long as its fields
// are not changed while listens run.
type ListenConfig struct {
	net.ListenConfig

	// Index is the index of the interface to bind to. 0 means none: every
	// listen fails. An index that names no interface fails with an error
	// for which errors.Is(err, syscall.ENODEV) holds.
	Index int

	// Binding, when not nil, chooses the interface for each socket in place
	// of Index, which must then be 0: a ListenConfig with both set fails
	// every listen. See Dialer.Binding. The monitor's table, not a system
	// call, vouches that the link exists. A Binding from PinClosing also
	// closes the sockets when their link goes: see PinClosing.
	Binding Binding

	// Netns, when not "", is the network namespace every socket is made
	// in: a name under /run/netns, or a path such as /proc/PID/ns/net. See
	// Dialer.Netns. Listeners accept, and packet conns receive, there.
	Netns string
}

// NetListenConfig returns a copy of the embedded net.ListenConfig whose
// Control binds every socket to lc.Index, or to the link lc.Binding
// chooses, before running lc's own Control, for APIs that take a
// *net.ListenConfig. Later changes to lc do not affect the copy. An lc that
// cannot bind gives a copy whose every listen fails, and so does one with
// Netns set or a Binding from NewMonitorAt: net would listen in the
// caller's namespace. The copy has Multipath TCP turned off, and its hook
// refuses a Multipath TCP socket before binding it: after
// SetMultipathTCP(true) the copy still listens on plain TCP, since net falls
// back to it when Multipath TCP fails.
func (lc *ListenConfig) NetListenConfig() *net.ListenConfig {
	bd, _ := newBinder(lc.Index, lc.Binding, true, lc.Control, nil)
	bd.exposed = true
	if g := closingOf(lc.Binding); g != nil {
		bd.fail(g.unwrappable("NetListenConfig"))
	}
	if r, err := netnsOf(lc.Netns, lc.Binding); r != nil || err != nil {
		bd.fail(&netnsError{netns: lc.Netns, err: errNetnsNetDialer})
	}
	nlc := lc.ListenConfig
	nlc.SetMultipathTCP(false)
	nlc.Control = bd.listenHook()
	return &nlc
}

// Listen announces on the local network address, as net.ListenConfig's
// Listen does, through a socket bound to lc.Index. A wildcard address
// ("tcp", ":8080") accepts only connections that arrive through the
// interface. ctx is used while the listener is made; it does not affect the
// listener once made. Unix networks are listened on without binding.
func (lc *ListenConfig) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	nlc, bd, address, err := lc.prepare(network, address, false)
	if err != nil {
		return nil, err
	}
	var ln net.Listener
	if bd.ns != nil {
		nlc := nlc // the closure's own copy, so that only this path allocates it
		ln, err = listenInNetns(bd, network, func() (net.Listener, error) { return nlc.Listen(ctx, network, address) })
	} else {
		ln, err = nlc.Listen(ctx, network, address)
	}
	if g := closingOf(lc.Binding); g != nil && err == nil && !isUnixNetwork(network) {
		return g.wrapListener(ln, network)
	}
	return ln, err
}

// ListenPacket announces on the local network address, as net.ListenConfig's
// ListenPacket does, through a socket bound to lc.Index. The conn receives
// only datagrams that arrive through the interface and sends only through
// it. ctx is used while the conn is made; it does not affect the conn once
// made. Unix networks are listened on without binding.
func (lc *ListenConfig) ListenPacket(ctx context.Context, network, address string) (net.PacketConn, error) {
	nlc, bd, address, err := lc.prepare(network, address, false)
	if err != nil {
		return nil, err
	}
	var pc net.PacketConn
	if bd.ns != nil {
		nlc := nlc // the closure's own copy, so that only this path allocates it
		pc, err = listenInNetns(bd, network, func() (net.PacketConn, error) { return nlc.ListenPacket(ctx, network, address) })
	} else {
		pc, err = nlc.ListenPacket(ctx, network, address)
	}
	if g := closingOf(lc.Binding); g != nil && err == nil && !isUnixNetwork(network) {
		return g.wrapPacketConn(pc, network)
	}
	return pc, err
}

// prepare returns a copy of lc.ListenConfig that binds its sockets, and the
// binder that binds them, or the error of a listen that cannot bind, before
// any socket exists. With track set, the binder records the index it bound.
func (lc *ListenConfig) prepare(network, address string, track bool) (net.ListenConfig, binder, string, error) {
	nlc := lc.ListenConfig
	if isUnixNetwork(network) {
		return nlc, binder{}, address, nil
	}
	bd, err := newBinder(lc.Index, lc.Binding, true, lc.Control, nil)
	if err != nil {
		return nlc, bd, address, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	// The binder checks the zone; the kernel never sees it (see cutZone).
	var zone string
	address, zone = cutZone(address)
	bd.setLocalZone(zone)
	if track {
		bd.bound = new(int64)
	}
	nlc.SetMultipathTCP(false)
	if err := bd.enter(lc.Netns); err != nil {
		return nlc, bd, address, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	nlc.Control = bd.listenHook()
	return nlc, bd, address, nil
}
