package ifbind

import (
	"context"
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
	return bindRawConn(c, "", index, true)
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

// callerHook runs the caller's ControlContext or, when that is nil, its
// Control, as net.Dialer does.
func callerHook(ctx context.Context, network, address string, c syscall.RawConn, ctl ctlFunc, ctlCtx ctlContextFunc) error {
	if ctlCtx != nil {
		return ctlCtx(ctx, network, address, c)
	}
	if ctl != nil {
		return ctl(network, address, c)
	}
	return nil
}

// dialHook returns a ControlContext for a net.Dialer that binds every
// socket to index, which must be valid, then runs the caller's hook. A
// failed binding aborts the socket before the caller's hook runs, and so
// does an error of the caller's hook.
func dialHook(index int, ctl ctlFunc, ctlCtx ctlContextFunc) ctlContextFunc {
	return func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if !isUnixNetwork(network) {
			// A dial needs no check that the interface exists: the
			// kernel routes no packet through a missing one, and
			// dialError names the cause when connect fails.
			if err := bindRawConn(c, network, index, false); err != nil {
				return err
			}
		}
		return callerHook(ctx, network, address, c, ctl, ctlCtx)
	}
}

// failDialHook returns a ControlContext that fails every socket with err,
// but for Unix domain sockets, which reach no interface and are left to the
// caller's hook, as Dialer.DialContext leaves them.
func failDialHook(err error, ctl ctlFunc, ctlCtx ctlContextFunc) ctlContextFunc {
	return func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if !isUnixNetwork(network) {
			return err
		}
		return callerHook(ctx, network, address, c, ctl, ctlCtx)
	}
}

// listenHook returns a Control for a net.ListenConfig that binds every
// socket to index, which must be valid, and checks that the interface
// exists (the kernel lets an IPv4 socket bind to a missing index and then
// receives nothing), then runs the caller's ctl.
func listenHook(index int, ctl ctlFunc) ctlFunc {
	return func(network, address string, c syscall.RawConn) error {
		if !isUnixNetwork(network) {
			if err := bindRawConn(c, network, index, true); err != nil {
				return err
			}
		}
		if ctl != nil {
			return ctl(network, address, c)
		}
		return nil
	}
}

// failListenHook is failDialHook for a net.ListenConfig.
func failListenHook(err error, ctl ctlFunc) ctlFunc {
	return func(network, address string, c syscall.RawConn) error {
		if !isUnixNetwork(network) {
			return err
		}
		if ctl != nil {
			return ctl(network, address, c)
		}
		return nil
	}
}
