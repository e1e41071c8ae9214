package ifbind

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
)

// A Monitor keeps an up-to-date table of the network interfaces (links) of
// one network namespace, fed by one netlink subscription to link events,
// so that looking a link up by name or index makes no system call and takes
// the same few tens of nanoseconds whether there are ten links or ten
// thousand. It is what Follow and Pin bindings resolve through. The same
// subscription keeps the links' IPv4 and IPv6 addresses, from which Uplinks
// tells which uplinks are usable.
//
// Start one with NewMonitor; it runs until its context is done or Close is
// called, after which every lookup, wait and binding through it fails with
// an error for which errors.Is(err, net.ErrClosed) holds. The zero Monitor
// is closed. A Monitor is safe for concurrent use: lookups read an immutable
// table that the monitor swaps atomically after each batch of events, and
// never block.
//
// The table lags the kernel by the time the monitor takes to read an event,
// typically microseconds. When the kernel drops events because the monitor
// read too slowly (ENOBUFS on its socket), the monitor lists every link
// again and replaces its table.
//
// The same subscription follows the IPv4 and IPv6 routes of every routing
// table (and nexthop objects) into an in-memory mirror, which DefaultRoute,
// RouteTo and Route read; it takes about 120 bytes per route.
//
// Monitors exist on Linux only; elsewhere NewMonitor returns an error
// wrapping ErrUnsupported.
type Monitor struct {
	snap atomic.Pointer[snapshot]
	gen  atomic.Uint64 // the last generation handed to a link

	stopOnce sync.Once
	stopErr  error         // why the monitor stopped; set before stopped is closed
	stopped  chan struct{} // closed when the monitor is told to stop
	done     chan struct{} // closed when its goroutine has exited

	// The guards of PinClosing bindings that have open sockets; reap
	// closes them when their link goes. Lookups never touch them.
	guardMu sync.Mutex
	guards  map[*guard]struct{}

	// ns is the namespace watched when NewMonitorAt made the monitor, nil
	// for the caller's.
	ns *nsRef

	// Counters, for tests and diagnostics.
	events     atomic.Uint64 // link messages applied
	resyncs    atomic.Uint64 // dumps after the kernel dropped events
	routeDumps atomic.Uint64 // route listings after a change without route events
}

// NewMonitor subscribes to the link events of the calling thread's network
// namespace, lists the links once, and keeps its table current until ctx is
// done or Close is called. Cancelling ctx stops the monitor as Close does;
// ctx does not otherwise bound the call. It needs no privilege, and Linux
// 5.5 or newer for altnames.
//
// The monitor watches the namespace the calling thread is in when NewMonitor
// runs (to watch another, call it from a thread locked into that namespace),
// and its bindings are meant for sockets made in that same namespace.
//
// The kernel announces a change of altname or alias only for a link that is
// up: on a link that is down such a change reaches the table when the link
// next changes otherwise (comes up, is renamed).
func NewMonitor(ctx context.Context) (*Monitor, error) {
	return newMonitor(ctx, monitorConfig{})
}

// NewMonitorAt is NewMonitor for the network namespace netns, a name under
// /run/netns or a path such as /proc/PID/ns/net or /proc/self/fd/N ("" is
// NewMonitor). Its netlink sockets are opened in that namespace, from a
// thread of its own, so its table, lookups and waits are of that
// namespace's links; the calling thread does not move. Its Follow and Pin
// bindings carry the namespace: a Dialer or ListenConfig with such a
// Binding makes its sockets there, without setting Netns, and fails every
// socket when its Netns names another namespace (namespaces are compared by
// identity, so "blue" and "/run/netns/blue" are the same).
//
// The monitor holds the namespace alive until it is closed. Each socket made
// through its bindings opens netns again, so that once the name is deleted
// or names another namespace, such sockets fail with an error for which
// errors.Is(err, ErrNetnsGone) holds, while the monitor's table stays as it
// was.
//
// Entering a namespace needs CAP_SYS_ADMIN in the user namespace that owns
// it and in the caller's: root, or a process inside a user namespace that
// owns it (as unshare -Urn makes). Without it the error unwraps to
// syscall.EPERM and says so; a netns that names no namespace fails with
// ErrNetnsGone. Errors name netns. Linux only, as NewMonitor.
func NewMonitorAt(ctx context.Context, netns string) (*Monitor, error) {
	if netns == "" {
		return NewMonitor(ctx)
	}
	r, err := newNsRef(netns)
	if err != nil {
		return nil, err
	}
	return newMonitorAt(ctx, r)
}

// netns returns the namespace m watches, nil for the caller's.
func (m *Monitor) netns() *nsRef {
	if m == nil {
		return nil
	}
	return m.ns
}

// Close stops the monitor and waits for its goroutine to exit. Afterwards
// every lookup, wait and binding through it fails with an error for which
// errors.Is(err, net.ErrClosed) holds. Close is idempotent and safe to call
// concurrently; it returns nil.
func (m *Monitor) Close() error {
	if m == nil || m.done == nil {
		return nil // the zero or nil Monitor never ran
	}
	m.stop(nil)
	<-m.done
	return nil
}

// stop tells the monitor's goroutine to exit, recording why: cause is nil
// for Close, and the context's cause when it was done.
func (m *Monitor) stop(cause error) {
	m.stopOnce.Do(func() {
		if cause == nil {
			m.stopErr = fmt.Errorf("link monitor closed: %w", net.ErrClosed)
		} else {
			m.stopErr = fmt.Errorf("link monitor stopped: %w: %w", net.ErrClosed, cause)
		}
		close(m.stopped)
	})
}

// A linkEntry is one link in a Monitor's table. Entries are never modified
// once published; a change to a link replaces its entry.
type linkEntry struct {
	link Link
	gen  uint64       // which incarnation of link.Index this is
	id   linkIdentity // what a dump must show to be the same incarnation
}

// A linkIdentity is what the monitor compares, after it has lost events, to
// tell whether the link with an index is the one it knew or another created
// under the same index meanwhile. The kernel offers no better identity.
type linkIdentity struct {
	kind   string // IFLA_INFO_KIND: "veth", "vlan", "" for a physical NIC...
	hw     string // hardware address
	parent int    // parent link index (of a VLAN, say)
}

// A linkTable maps indexes, names and altnames to entries.
type linkTable struct {
	byIndex map[int]*linkEntry
	byName  map[string]*linkEntry
}

func newLinkTable(n int) linkTable {
	return linkTable{byIndex: make(map[int]*linkEntry, n), byName: make(map[string]*linkEntry, n)}
}

func (t linkTable) clone() linkTable {
	return linkTable{byIndex: maps.Clone(t.byIndex), byName: maps.Clone(t.byName)}
}

// set puts e in the table in place of the entry with its index.
func (t linkTable) set(e *linkEntry) {
	if old := t.byIndex[e.link.Index]; old != nil {
		t.dropNames(old)
	}
	t.byIndex[e.link.Index] = e
	t.byName[e.link.Name] = e
	for _, n := range e.link.Altnames {
		t.byName[n] = e
	}
}

// del removes the link with index.
func (t linkTable) del(index int) {
	if old := t.byIndex[index]; old != nil {
		t.dropNames(old)
		delete(t.byIndex, index)
	}
}

// dropNames removes the names of e that still point to e's index: after
// lost events, a name may already belong to another link.
func (t linkTable) dropNames(e *linkEntry) {
	for _, n := range append([]string{e.link.Name}, e.link.Altnames...) {
		if cur := t.byName[n]; cur != nil && cur.link.Index == e.link.Index {
			delete(t.byName, n)
		}
	}
}

// A snapshot is a Monitor's table at one moment. It is immutable.
type snapshot struct {
	linkTable
	addrs   addrTable     // the links' addresses (addr.go)
	routes  routeView     // every routing table (route.go)
	err     error         // non-nil once the monitor has stopped
	changed chan struct{} // closed when a newer snapshot replaces this one
}

// closedSnapshot is what the zero Monitor has.
var closedSnapshot = &snapshot{err: fmt.Errorf("link monitor not started (use NewMonitor): %w", net.ErrClosed)}

// nilSnapshot is what a nil *Monitor has: a binding made from one (an
// ignored NewMonitor error) fails every socket instead of panicking inside a
// Control hook, where a Happy Eyeballs goroutine could not recover it.
var nilSnapshot = &snapshot{err: fmt.Errorf("nil *Monitor (was the error of NewMonitor ignored?): %w", net.ErrClosed)}

func (m *Monitor) load() *snapshot {
	if m == nil {
		return nilSnapshot
	}
	if s := m.snap.Load(); s != nil {
		return s
	}
	return closedSnapshot
}

// publish makes s the monitor's table, wakes whoever waits for a change,
// and closes the sockets of closing pins whose link is gone. Only the
// monitor's goroutine publishes.
func (m *Monitor) publish(s *snapshot) {
	if s.err == nil {
		s.changed = make(chan struct{})
	}
	if old := m.snap.Swap(s); old != nil && old.changed != nil {
		close(old.changed)
	}
	m.reap()
}

// entry makes the entry for l, of a new generation unless prev is the same
// incarnation of the link.
func (m *Monitor) entry(l Link, id linkIdentity, prev *linkEntry) *linkEntry {
	e := &linkEntry{link: l, id: id}
	if prev != nil && prev.id == id {
		e.gen = prev.gen
	} else {
		e.gen = m.gen.Add(1)
	}
	return e
}

// LinkByName returns the link whose name or altname is name, from the
// monitor's table, without a system call. A miss is an error for which
// errors.Is(err, syscall.ENODEV) holds and whose text names the links whose
// names are close, as in "ifbind: no link named eth1; did you mean eth0 or
// ens1?", found when the text is first read: a miss costs what a hit does.
func (m *Monitor) LinkByName(name string) (Link, error) {
	s := m.load()
	if e := s.byName[name]; e != nil {
		return e.link, nil // a hit, as Follow makes it: one map read, one copy
	}
	return lookup(s, linkKey{kind: specName, name: name})
}

// LinkByIndex returns the link with index, from the monitor's table,
// without a system call. Its errors are those of the package's LinkByIndex.
func (m *Monitor) LinkByIndex(index int) (Link, error) {
	if err := invalidIndex(index); err != nil {
		return Link{}, err
	}
	return lookup(m.load(), linkKey{kind: specIndex, index: index})
}

// LinkByHardwareAddr returns the one link with the hardware address mac,
// from the monitor's table, without a system call; it looks at every link.
// Errors are those of the package's LinkByHardwareAddr.
func (m *Monitor) LinkByHardwareAddr(mac net.HardwareAddr) (Link, error) {
	return lookup(m.load(), linkKey{kind: specHardwareAddr, mac: mac})
}

// LinkByAlias returns the one link with the alias, from the monitor's
// table, without a system call; it looks at every link. Errors are those of
// the package's LinkByAlias.
func (m *Monitor) LinkByAlias(alias string) (Link, error) {
	return lookup(m.load(), linkKey{kind: specAlias, name: alias})
}

// LookupLink returns the link spec names, in the forms the package's
// LookupLink takes (an index, a hardware address, a name or altname), from
// the monitor's table, without a system call.
func (m *Monitor) LookupLink(spec string) (Link, error) {
	k, err := parseLinkKey(spec)
	if err != nil {
		return Link{}, err
	}
	return lookup(m.load(), k)
}

// Links returns every link in the monitor's table, ordered by index.
func (m *Monitor) Links() ([]Link, error) {
	links, err := m.load().links()
	if err != nil {
		return nil, fmt.Errorf("ifbind: listing links: %w", err)
	}
	return links, nil
}

// linkByName, linkByIndex, links and later make a snapshot the linkSource
// of a Monitor's lookups. A snapshot never changes: a not-found error lists
// close names from the very table the lookup missed in.
func (s *snapshot) linkByName(name string) (*Link, error) { return s.found(s.byName[name]) }

func (s *snapshot) linkByIndex(index int) (*Link, error) { return s.found(s.byIndex[index]) }

func (s *snapshot) found(e *linkEntry) (*Link, error) {
	switch {
	case s.err != nil:
		return nil, s.err
	case e == nil:
		return nil, nil
	}
	return &e.link, nil
}

func (s *snapshot) links() ([]Link, error) {
	if s.err != nil {
		return nil, s.err
	}
	links := make([]Link, 0, len(s.byIndex))
	for _, e := range s.byIndex {
		links = append(links, e.link)
	}
	slices.SortFunc(links, func(a, b Link) int { return a.Index - b.Index })
	return links, nil
}

func (s *snapshot) later() linkSource { return s }

// WaitLink returns the link named name (or with that altname) as soon as the
// monitor sees one, at once if it exists. ctx bounds the wait: when it is
// done first, the error wraps its cause (context.DeadlineExceeded, say).
func (m *Monitor) WaitLink(ctx context.Context, name string) (Link, error) {
	return m.wait(ctx, name, "to appear", func(Link) bool { return true })
}

// WaitUp returns the link named name (or with that altname) as soon as the
// monitor sees it up: administratively up with carrier, as Link.Up reports.
// ctx bounds the wait: when it is done first, the error wraps its cause.
func (m *Monitor) WaitUp(ctx context.Context, name string) (Link, error) {
	return m.wait(ctx, name, "to come up", Link.Up)
}

func (m *Monitor) wait(ctx context.Context, name, what string, ok func(Link) bool) (Link, error) {
	for {
		s := m.load()
		e := s.byName[name]
		if e != nil && ok(e.link) {
			return e.link, nil
		}
		if s.err != nil {
			return Link{}, fmt.Errorf("ifbind: waiting for link %s %s: %w", name, what, s.err)
		}
		select {
		case <-s.changed:
		case <-ctx.Done():
			state := "there is no such link"
			if e != nil {
				state = "it is " + e.link.String() + ", flags " + e.link.Flags.String()
			}
			return Link{}, fmt.Errorf("ifbind: waiting for link %s %s (%s): %w", name, what, state, context.Cause(ctx))
		}
	}
}
