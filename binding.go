package ifbind

import (
	"fmt"
	"strconv"
	"syscall"
)

// A Binding chooses, for each socket a Dialer or ListenConfig makes, the
// interface to bind it to, in place of a fixed Index. Bindings come from a
// Monitor, in two modes:
//
//   - (*Monitor).Follow follows a name: every socket binds to whatever link
//     carries the name when the socket is made. Pick it when the name is
//     what you mean and the device behind it may be replaced: a PPPoE or
//     WireGuard interface re-created on reconnect, a VLAN rebuilt by the
//     network manager, a USB modem that comes back with a new index.
//   - (*Monitor).Pin pins one link: every socket binds to the device the spec
//     named when Pin was called, and once that device is deleted every new
//     socket fails closed with ErrLinkGone, even if a new device takes its
//     name or its index. Pick it when traffic must not move to a device
//     nobody vetted: a VPN tunnel whose replacement may route elsewhere, a
//     NIC chosen by an operator, or a test that must see its own device.
//
// Two more follow the routing table rather than a link: (*Monitor).DefaultRoute
// binds each socket to the link of the best default route of its family,
// and (*Monitor).RouteTo to the link its destination is routed through,
// both leaving out the links a RouteFilter excludes (a VPN's own tun).
//
// Resolving a Binding reads the monitor's table once, without a lock or a
// system call, so a socket made through a Binding costs what one made
// through Index does, plus a map lookup. A Binding is safe for concurrent
// use. Its methods are unexported but for Link and String: Bindings are
// made only by this package, so that each one is known to fail closed.
type Binding interface {
	// Link returns the link a socket made now would be bound to, or the
	// error its binding would fail with.
	Link() (Link, error)

	// String describes the binding, as in "follow eth0" or "pin eth0
	// (index 3)".
	String() string

	// target returns the interface the socket si describes is to be bound
	// to, or the error (a *BindError) it fails with.
	target(si sockInfo) (target, error)
}

// entryTarget returns the target of a socket bound to the link of e, which
// a Monitor's table vouches for, or err.
func entryTarget(e *linkEntry, err error) (target, error) {
	if err != nil {
		return target{}, err
	}
	return target{index: e.link.Index, name: e.link.Name}, nil
}

// entryLink returns the link of e, or err.
func entryLink(e *linkEntry, err error) (Link, error) {
	if err != nil {
		return Link{}, err
	}
	return e.link, nil
}

// Follow returns a Binding that binds every socket to the link whose name
// or altname is name at the moment the socket is made, as m last saw it. The
// name need not exist yet: while no link carries it, sockets fail with an
// error for which errors.Is(err, syscall.ENODEV) holds, which names the
// links whose names are close; an empty name fails every socket so, with an
// error that says the name is empty. Once m is closed,
// they fail with one for which errors.Is(err, net.ErrClosed) holds.
//
// A socket stays bound to the link it was bound to; a rename or deletion
// after it was made does not move it. See Binding for when to follow.
func (m *Monitor) Follow(name string) Binding {
	return &follow{m: m, name: name}
}

// errEmptyFollow fails every socket of Follow(""), which names no link.
var errEmptyFollow = fmt.Errorf("follow: the interface name is empty: %w", syscall.ENODEV)

type follow struct {
	m    *Monitor
	name string
}

func (f *follow) resolve() (*linkEntry, error) {
	if f.name == "" {
		return nil, &BindError{Err: errEmptyFollow}
	}
	s := f.m.load()
	if e := s.byName[f.name]; e != nil {
		return e, nil
	}
	if s.err != nil {
		return nil, &BindError{Name: f.name, Err: s.err}
	}
	nf := notFound(s, linkKey{kind: specName, name: f.name})
	nf.follow = true
	return nil, &BindError{Name: f.name, Err: nf}
}

func (f *follow) target(sockInfo) (target, error) { return entryTarget(f.resolve()) }

func (f *follow) Link() (Link, error) { return entryLink(f.resolve()) }

func (f *follow) String() string { return "follow " + f.name }

func (f *follow) netns() *nsRef { return f.m.netns() }

// Pin resolves spec (an index, a hardware address, a name or altname, as
// LookupLink takes) through m's table, once, and returns a Binding that binds
// every socket to that link. Once m sees the link deleted (or moved to
// another namespace, which the kernel announces as a deletion), every new
// socket fails with an error for which errors.Is(err, ErrLinkGone) holds, even when
// a new link takes the same name or the same index; once m is closed, with
// one for which errors.Is(err, net.ErrClosed) holds. A rename of the pinned
// link does not matter. Sockets already made stay open; PinClosing closes
// them too. See Binding for when to pin.
//
// Deletion is seen as m sees it: a socket made within the microseconds
// between the kernel deleting the link and m reading the event still binds
// to its index. When the kernel dropped events, m tells the link from a new
// one under the same index by its kind, hardware address and parent; a new
// link that matches all three within that window goes unnoticed.
func (m *Monitor) Pin(spec string) (Binding, error) {
	k, err := parseLinkKey(spec)
	if err != nil {
		return nil, err
	}
	s := m.load()
	l, err := lookup(s, k)
	if err != nil {
		return nil, err
	}
	e := s.byIndex[l.Index]
	return &pin{m: m, index: e.link.Index, name: e.link.Name, gen: e.gen}, nil
}

type pin struct {
	m     *Monitor
	index int
	name  string // when pinned
	gen   uint64
}

func (p *pin) resolve() (*linkEntry, error) {
	s := p.m.load()
	if e := s.byIndex[p.index]; e != nil && e.gen == p.gen {
		return e, nil
	}
	if s.err != nil {
		return nil, &BindError{Index: p.index, Name: p.name, Err: s.err}
	}
	return nil, &BindError{Index: p.index, Name: p.name, Err: linkGoneError{}}
}

func (p *pin) target(sockInfo) (target, error) { return entryTarget(p.resolve()) }

func (p *pin) Link() (Link, error) { return entryLink(p.resolve()) }

func (p *pin) netns() *nsRef { return p.m.netns() }

func (p *pin) String() string {
	return "pin " + p.name + " (index " + strconv.Itoa(p.index) + ")"
}
