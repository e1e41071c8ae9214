package ifbind

import (
	"context"
	"net"
	"strconv"
	"strings"
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

// isTCPNetwork reports whether network names TCP, the one protocol that
// may be Multipath TCP.
func isTCPNetwork(network string) bool {
	switch network {
	case "tcp", "tcp4", "tcp6":
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
	// exposed is set in the hooks of the copies NetDialer and
	// NetListenConfig hand out, which a caller may turn to Multipath TCP
	// after the fact: there each TCP socket is asked whether it is one, and
	// refused before it is bound. The package's own copies turn Multipath
	// TCP off and skip the question.
	exposed bool

	ctl    ctlFunc
	ctlCtx ctlContextFunc

	// bound, when not nil, receives the index of each socket bound, so that
	// a dial error or a multicast pin can name what was bound.
	bound *int64

	// rare holds what few binders have, so that the hook each dial
	// allocates stays small.
	rare *binderRare

	// ns, when not nil, is the network namespace the socket is made in: the
	// call runs there (runIn), and control first takes its thread back.
	ns *nsEntry
}

// binderRare is the part of a binder that few have.
type binderRare struct {
	err error // when not nil, every socket but a Unix one fails with it

	// lzone is the zone of the socket's local address (a Dialer's
	// LocalAddr, a listen address): checked against the interface
	// decided, and cut from the address the kernel is given (cutZone).
	lzone string
}

// fail makes every socket of bd but a Unix one fail with err.
func (bd *binder) fail(err error) {
	if bd.rare == nil {
		bd.rare = new(binderRare)
	}
	bd.rare.err = err
}

// setLocalZone records the zone cut from the socket's local address.
func (bd *binder) setLocalZone(zone string) {
	if zone == "" {
		return
	}
	if bd.rare == nil {
		bd.rare = new(binderRare)
	}
	bd.rare.lzone = zone
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
	var err error
	switch {
	case listen && !bindsReceive:
		err = &BindError{Index: index, Err: errListenSendOnly}
	case b == nil:
		err = invalidIndex(index)
	case index != 0:
		err = &BindError{Index: index, Err: errBothSet}
	}
	if err != nil {
		bd.fail(err)
	}
	return bd, err
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
		if bd.rare != nil && bd.rare.err != nil {
			return bd.rare.err
		}
		t, err := bd.decide(si)
		if err != nil {
			return err
		}
		if bd.exposed && isTCPNetwork(si.network) {
			if err := refuseMultipathTCP(c, t); err != nil {
				return err
			}
		}
		if bd.bound != nil {
			atomic.StoreInt64(bd.bound, int64(t.index))
		}
		// A zone naming another interface would override the binding
		// in a local address (the kernel rebinds on bind): the local
		// zone was cut and is checked here. A dial's remote zone is
		// refused by the kernel at connect; here with a clearer error.
		zone := zoneOf(si.address)
		if si.listen && zone != "" {
			// Only a copy from NetListenConfig gets here with a zone
			// (ListenConfig's methods cut it): net would turn it into a
			// scope through its own cache, which ifbind cannot check.
			return &BindError{Index: t.index, Name: t.name, Err: &zoneError{zone: zone, rebind: true}}
		}
		if err := checkZone(zone, t.index, t.name); err != nil {
			return err
		}
		if bd.rare != nil {
			if err := checkZone(bd.rare.lzone, t.index, t.name); err != nil {
				return err
			}
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

// zoneOf returns the zone of the host in address ("[fe80::1%eth0]:80",
// "fe80::1%2"), or "" when it has none. It does not allocate.
func zoneOf(address string) string {
	i := strings.IndexByte(address, '%')
	if i < 0 {
		return ""
	}
	zone := address[i+1:]
	if j := strings.IndexByte(zone, ']'); j >= 0 {
		zone = zone[:j]
	}
	return zone
}

// cutAddrZone returns a, a local address a caller set on a net.Dialer,
// without its zone, and the zone: see cutZone.
func cutAddrZone(a net.Addr) (net.Addr, string) {
	switch a := a.(type) {
	case *net.TCPAddr:
		if a != nil && a.Zone != "" {
			c := *a
			c.Zone = ""
			return &c, a.Zone
		}
	case *net.UDPAddr:
		if a != nil && a.Zone != "" {
			c := *a
			c.Zone = ""
			return &c, a.Zone
		}
	case *net.IPAddr:
		if a != nil && a.Zone != "" {
			c := *a
			c.Zone = ""
			return &c, a.Zone
		}
	}
	return a, ""
}

// cutZone returns address ("host%zone:port", "[host%zone]:port" or
// "host%zone") without its zone, and the zone. ifbind checks a local
// address's zone against the interface it binds the socket to, then binds
// without it: the kernel rebinds a socket to the interface an IPv6 scope
// names (bind(2) of a link-local address), and net turns a zone name into
// that scope through a cache of its own, which may be stale or of another
// namespace, so that a zone that ifbind found to name the bound interface
// could reach the kernel as another's. Without a scope, the kernel binds
// the address on the interface the socket is already bound to.
func cutZone(address string) (string, string) {
	i := strings.IndexByte(address, '%')
	if i < 0 {
		return address, ""
	}
	j := len(address)
	if k := strings.IndexByte(address[i:], ']'); k >= 0 {
		j = i + k
	}
	return address[:i] + address[j:], address[i+1 : j]
}

// checkZone refuses an IPv6 zone that names another interface than index,
// the one a socket is (or is to be) bound to. The kernel lets a zone
// override the binding: a datagram sent to fe80::1%B leaves through B, and
// a bind to fe80::1%B rebinds the socket to B, both without an error. A
// zone that names no interface is refused too. name is the bound
// interface's name, for the error, when known.
func checkZone(zone string, index int, name string) error {
	if err := zoneCause(zone, index); err != nil {
		return &BindError{Index: index, Name: name, Err: err}
	}
	return nil
}

// zoneCause is checkZone's cause, without the BindError around it. A zone
// is read as net reads it (see zoneIndex).
func zoneCause(zone string, index int) error {
	if zone == "" {
		return nil
	}
	zi, err := zoneIndex(zone)
	if err != nil {
		return &zoneError{zone: zone}
	}
	if zi != index {
		return &zoneError{zone: zone, index: zi}
	}
	if isDigits(zone) {
		// A number that is also a link's name or altname names two
		// interfaces, and net may take it for either.
		if n, err := strconv.Atoi(zone); err == nil && n != zi {
			return &zoneError{zone: zone, index: n}
		}
	}
	return nil
}

// A zoneError says that an address's zone names another interface than
// the one bound, or none. It unwraps to syscall.EINVAL.
type zoneError struct {
	zone   string
	index  int  // the interface the zone names; 0 when it names none
	rebind bool // a zone in a listen address of a plain net.ListenConfig
}

func (e *zoneError) Error() string {
	if e.rebind {
		return "address zone %" + e.zone + " in a listen address would rebind the socket to the interface net takes it for: " +
			"drop it, the binding already chooses the interface (" + syscall.EINVAL.Error() + ")"
	}
	if e.index == 0 {
		return "address zone %" + e.zone + " names no interface (" + syscall.EINVAL.Error() + ")"
	}
	other := "interface " + strconv.Itoa(e.index)
	if e.zone != strconv.Itoa(e.index) {
		other += " (" + e.zone + ")"
	} else if l, err := LinkByIndex(e.index); err == nil {
		other += " (" + l.Name + ")"
	}
	return "address zone %" + e.zone + " names " + other +
		", not this one: the kernel would send through it (" + syscall.EINVAL.Error() + ")"
}

func (e *zoneError) Unwrap() error { return syscall.EINVAL }
