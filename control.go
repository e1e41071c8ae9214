package ifbind

import (
	"context"
	"sync/atomic"
	"syscall"
)

// ctlFunc and ctlContextFunc are the shapes of net.Dialer.Control and
// net.Dialer.ControlContext (and of net.ListenConfig.Control).
type (
	ctlFunc        = func(network, address string, c syscall.RawConn) error
	ctlContextFunc = func(ctx context.Context, network, address string, c syscall.RawConn) error
)

// BindRawConn binds the socket behind c to the interface with the given
// index, so that it sends and receives only through that interface. It is
// the primitive the Dialer and ListenConfig use in their Control hooks, for
// callers who create sockets some other way.
//
// On Linux it uses SO_BINDTOIFINDEX (Linux 5.0), falling back to
// SO_BINDTODEVICE on older kernels, checked against the index after binding.
// Binding a socket that is already bound needs CAP_NET_RAW; binding a fresh
// one without it needs Linux 5.7 or newer. On darwin it uses IP_BOUND_IF or
// IPV6_BOUND_IF and on windows IP_UNICAST_IF and IPV6_UNICAST_IF; elsewhere
// it returns an error wrapping ErrUnsupported.
//
// An index of 0 or less, or past 32 bits, is an error (syscall.EINVAL), and
// so on Linux is one that names no interface (syscall.ENODEV): the kernel
// would bind to it, and the socket would hear nothing. On any error the
// socket may be left bound to no interface, or to another one: close it.
func BindRawConn(c syscall.RawConn, index int) error {
	if err := invalidIndex(index); err != nil {
		return err
	}
	return bindRawConn(c, target{index: index, check: true})
}

// isUnixNetwork reports whether network names a Unix domain socket, which
// never reaches a network interface and so is never bound.
func isUnixNetwork(network string) bool {
	switch network {
	case "unix", "unixgram", "unixpacket":
		return true
	}
	return false
}

// A target is the interface one socket is to be bound to, as a binder
// decided it.
type target struct {
	index int
	name  string // the name it has, when the decider knows it; for errors
	// check asks the kernel whether index names an interface after binding
	// (listens by a bare Index: the kernel lets an IPv4 socket bind to a
	// missing index, and it then hears nothing). A Monitor's table vouches
	// for the links it hands out.
	check bool
}

// A sockInfo is what a Control hook knows of the socket it is called for.
type sockInfo struct {
	network string // as Control receives it: "tcp4", "udp6", "ip4:icmp"...
	address string // the remote address of a dial, the local one of a listen
	listen  bool
}

// A binder decides the interface of every socket a Dialer or ListenConfig
// makes, binds the socket to it, then runs the caller's own hook. It is the
// one place where Index and Binding are read: every hook, multicast pin and
// error uses what it decided.
type binder struct {
	index  int     // a fixed index, when b is nil
	b      Binding // chooses per socket, when not nil
	listen bool
	err    error // when not nil, every socket but a Unix one fails with it

	ctl    ctlFunc
	ctlCtx ctlContextFunc

	// bound, when not nil, receives the index of each socket bound, so that
	// a dial error or a multicast pin can name what was bound.
	bound *int64

	// ns, when not nil, is the network namespace the socket is made in: the
	// call runs there (runIn), and control first takes its thread back.
	ns *nsEntry
}

// enter sets the namespace of bd's sockets: netns, or that of bd's Binding.
func (bd *binder) enter(netns string) error {
	r, err := netnsOf(netns, bd.b)
	if r != nil {
		bd.ns = &nsEntry{ref: r}
	}
	return err
}

// newBinder returns the binder of a Dialer (listen false) or ListenConfig
// with the given Index and Binding. A binder that cannot bind has err set,
// and newBinder returns that error too, for callers that fail before making
// any socket.
func newBinder(index int, b Binding, listen bool, ctl ctlFunc, ctlCtx ctlContextFunc) (binder, error) {
	bd := binder{index: index, b: b, listen: listen, ctl: ctl, ctlCtx: ctlCtx}
	switch {
	case listen && !bindsReceive:
		bd.err = &BindError{Index: index, Err: errListenSendOnly}
	case b == nil:
		bd.err = invalidIndex(index)
	case index != 0:
		bd.err = &BindError{Index: index, Err: errBothSet}
	}
	return bd, bd.err
}

// fixed returns the index every socket of bd binds to, or 0 when a Binding
// decides per socket.
func (bd *binder) fixed() int {
	if bd.b != nil {
		return 0
	}
	return bd.index
}

// decide returns the interface a socket of bd is bound to.
func (bd *binder) decide(si sockInfo) (target, error) {
	if bd.b != nil {
		return bd.b.target(si)
	}
	return target{index: bd.index, check: bd.listen}, nil
}

// control binds c, then runs the caller's hook. Unix domain sockets reach no
// interface and are left to the caller's hook.
func (bd binder) control(ctx context.Context, si sockInfo, c syscall.RawConn) error {
	if bd.ns != nil {
		if err := bd.ns.leave(); err != nil {
			return err
		}
	}
	if !isUnixNetwork(si.network) {
		if bd.err != nil {
			return bd.err
		}
		t, err := bd.decide(si)
		if err != nil {
			return err
		}
		if bd.bound != nil {
			atomic.StoreInt64(bd.bound, int64(t.index))
		}
		if err := bindRawConn(c, t); err != nil {
			return err
		}
	}
	if bd.ctlCtx != nil {
		return bd.ctlCtx(ctx, si.network, si.address, c)
	}
	if bd.ctl != nil {
		return bd.ctl(si.network, si.address, c)
	}
	return nil
}

// dialHook returns bd as a net.Dialer's ControlContext.
func (bd binder) dialHook() ctlContextFunc {
	return func(ctx context.Context, network, address string, c syscall.RawConn) error {
		return bd.control(ctx, sockInfo{network: network, address: address}, c)
	}
}

// listenHook returns bd as a net.ListenConfig's Control.
func (bd binder) listenHook() ctlFunc {
	return func(network, address string, c syscall.RawConn) error {
		return bd.control(context.Background(), sockInfo{network: network, address: address, listen: true}, c)
	}
}
