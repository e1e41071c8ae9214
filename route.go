package ifbind

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/gaissmai/bart"
)

// A RouteFilter says which routing table a route binding reads and which
// links it must never bind to. The zero RouteFilter reads the main table and
// excludes nothing. A RouteFilter is read when the binding is made; Skip is
// then called from whichever goroutine makes a socket, so it must be safe
// for concurrent use, fast, and must not call back into the Monitor.
type RouteFilter struct {
	// Table is the routing table to read: 0 for main (254), as `ip route`
	// reads; 2022 for the table a sing-box tun uses, say. Rules (`ip
	// rule`) are not followed: the binding reads this one table.
	Table int

	// Exclude names links never to bind to, in the forms LookupLink takes
	// (index, hardware address, name or altname). Each is matched against
	// the links as they are when a socket is made, so a tun created after
	// the binding is excluded by its name.
	Exclude []string

	// ExcludeKinds names kinds of links never to bind to, as the kernel
	// names them (IFLA_INFO_KIND, `ip -d link`): "tun" (which tap devices
	// are too), "wireguard", "veth", "vxlan"... A physical NIC has no kind.
	ExcludeKinds []string

	// Skip, when not nil, is called with every link a route would bind
	// to; when it returns true, the route is passed over as if excluded.
	Skip func(Link) bool
}

// ErrNoRoute is what errors.Is finds in the error of a socket that a route
// binding (DefaultRoute, RouteTo) could not bind because no usable route
// leads where it goes: no route at all, only routes through excluded links
// or links that are down, or a route that refuses (blackhole, unreachable,
// prohibit). No socket is made. Such errors also satisfy errors.Is(err,
// syscall.ENETUNREACH), as the kernel's own answer would.
var ErrNoRoute = errors.New("ifbind: no usable route")

// noRouteError is the cause of a route binding's failure: it says what was
// looked for, and is both ErrNoRoute and ENETUNREACH.
type noRouteError struct {
	what string // "IPv4 default route in table main"
}

func (e *noRouteError) Error() string {
	return "no usable " + e.what + " (" + syscall.ENETUNREACH.Error() + ")"
}

func (e *noRouteError) Is(target error) bool {
	return target == ErrNoRoute || target == syscall.ENETUNREACH
}

// errFamiliesDiffer is the cause of Link on a route binding whose IPv4 and
// IPv6 choices are different links.
var errFamiliesDiffer = errors.New("IPv4 and IPv6 routes lead through different links")

// Route types (RTN_*), as the kernel numbers them.
const (
	rtnUnicast     = 1
	rtnBlackhole   = 6
	rtnUnreachable = 7
	rtnProhibit    = 8
	rtnThrow       = 9
)

// scopeHost is RT_SCOPE_HOST, the scope of local routes.
const scopeHost = 254

// The kernel's main routing table.
const tableMain = 254

// An rtNexthop is one way out of a route: a link, and a gateway or none.
type rtNexthop struct {
	index int32
	gw    netip.Addr
}

// An rtEntry is one route of a table and prefix. An IPv4 route holds all its
// next hops (multipath); each next hop of an IPv6 route is an entry of its
// own, as the kernel keeps them.
type rtEntry struct {
	metric uint32
	tos    uint8
	typ    uint8
	scope  uint8       // RT_SCOPE_*: the kernel keeps host-scope IPv4 routes on link down
	nh     []rtNexthop // in the kernel's order; none for blackhole and the like
}

func (e rtEntry) equal(o rtEntry) bool {
	return e.metric == o.metric && e.tos == o.tos && e.typ == o.typ && e.scope == o.scope && slices.Equal(e.nh, o.nh)
}

// refuses reports whether the route is one the kernel answers with an error
// rather than a link.
func (e rtEntry) refuses() bool {
	switch e.typ {
	case rtnBlackhole, rtnUnreachable, rtnProhibit, rtnThrow:
		return true
	}
	return false
}

// A routeTable is one routing table, both families, in a longest-prefix
// match trie. Its values are sorted by metric, stable: among equal metrics,
// the kernel's order. A published routeTable is never modified; changes make
// a copy of the path they touch (bart's Persist methods).
type routeTable = bart.Table[[]rtEntry]

// A routeView is the monitor's mirror of every routing table. It is
// immutable once published.
type routeView struct {
	tables map[uint32]*routeTable
}

var (
	defaultV4 = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	defaultV6 = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
)

// routeSpec is a RouteFilter made ready for the per-socket path.
type routeSpec struct {
	table   uint32
	exclude []linkSpec
	kinds   []string
	skip    func(Link) bool
	err     error // a bad Exclude spec: every socket fails with it
}

// A linkSpec is one Exclude entry, parsed once.
type linkSpec struct {
	kind  specKind
	index int
	mac   string
	name  string
}

func newRouteSpec(f RouteFilter) *routeSpec {
	rs := &routeSpec{table: tableMain, kinds: slices.Clone(f.ExcludeKinds), skip: f.Skip}
	switch {
	case f.Table < 0 || int64(f.Table) > math.MaxUint32:
		rs.err = fmt.Errorf("routing table %d out of range (%w)", f.Table, syscall.EINVAL)
	case f.Table != 0:
		rs.table = uint32(f.Table)
	}
	for _, s := range f.Exclude {
		kind, index, mac, err := parseLinkSpec(s)
		if err != nil {
			rs.err = fmt.Errorf("excluding %s (%w)", strings.TrimPrefix(err.Error(), "ifbind: "), syscall.EINVAL)
			break
		}
		rs.exclude = append(rs.exclude, linkSpec{kind: kind, index: index, mac: string(mac), name: s})
	}
	return rs
}

// excluded reports whether the filter passes over the link e.
func (rs *routeSpec) excluded(e *linkEntry) bool {
	for i := range rs.exclude {
		x := &rs.exclude[i]
		switch x.kind {
		case specIndex:
			if e.link.Index == x.index {
				return true
			}
		case specHardwareAddr:
			if string(e.link.HardwareAddr) == x.mac {
				return true
			}
		default:
			if e.link.Name == x.name || slices.Contains(e.link.Altnames, x.name) {
				return true
			}
		}
	}
	if e.id.kind != "" && slices.Contains(rs.kinds, e.id.kind) {
		return true
	}
	return rs.skip != nil && rs.skip(e.link)
}

func (rs *routeSpec) tableName() string {
	switch rs.table {
	case tableMain:
		return "main"
	case 255:
		return "local"
	case 253:
		return "default"
	}
	return strconv.FormatUint(uint64(rs.table), 10)
}

func familyName(v6 bool) string {
	if v6 {
		return "IPv6"
	}
	return "IPv4"
}

// defaultLink returns the link of the best usable default route of one
// family: the lowest metric of unicast routes whose link is up with carrier,
// not loopback, and not excluded; among equal metrics, the first in the
// kernel's order, and of a multipath route, its first such next hop.
func (s *snapshot) defaultLink(rs *routeSpec, v6 bool) (*linkEntry, error) {
	if err := s.routeErr(rs); err != nil {
		return nil, err
	}
	pfx := defaultV4
	if v6 {
		pfx = defaultV6
	}
	if t := s.routes.tables[rs.table]; t != nil {
		entries, _ := t.Get(pfx)
		for i := range entries {
			r := &entries[i]
			if r.typ != rtnUnicast {
				continue
			}
			for _, nh := range r.nh {
				e := s.byIndex[int(nh.index)]
				if e == nil || !e.link.Up() || e.link.Flags&net.FlagLoopback != 0 || rs.excluded(e) {
					continue
				}
				return e, nil
			}
		}
	}
	return nil, &BindError{Err: &noRouteError{what: familyName(v6) + " default route in table " + rs.tableName()}}
}

// routeLink returns the link the table sends dst through, with the excluded
// links' routes and those of links that are down taken out: the longest
// prefix with a usable route, the lowest metric there, and the first next
// hop of a multipath route. A route that refuses (blackhole, unreachable,
// prohibit, throw) is an answer: ErrNoRoute.
func (s *snapshot) routeLink(rs *routeSpec, dst netip.Addr) (*linkEntry, error) {
	if err := s.routeErr(rs); err != nil {
		return nil, err
	}
	dst = dst.Unmap().WithZone("")
	if t := s.routes.tables[rs.table]; t != nil && dst.IsValid() {
		// The common case first: the longest match has a usable route.
		entries, _ := t.Lookup(dst)
		if len(entries) > 0 && !entries[0].refuses() {
			for _, nh := range entries[0].nh {
				if e := s.byIndex[int(nh.index)]; e != nil && e.link.Flags&net.FlagUp != 0 && !rs.excluded(e) {
					return e, nil
				}
			}
		}
		pfx := netip.PrefixFrom(dst, dst.BitLen())
		for {
			lpm, entries, ok := t.LookupPrefixLPM(pfx)
			if !ok {
				break
			}
			for i := range entries {
				r := &entries[i]
				if r.refuses() {
					return nil, &BindError{Err: &noRouteError{what: "route to " + dst.String() + " in table " + rs.tableName() + " (" + lpm.String() + " is " + typeName(r.typ) + ")"}}
				}
				for _, nh := range r.nh {
					e := s.byIndex[int(nh.index)]
					if e == nil || e.link.Flags&net.FlagUp == 0 || rs.excluded(e) {
						continue
					}
					return e, nil
				}
			}
			if lpm.Bits() == 0 {
				break
			}
			pfx = netip.PrefixFrom(dst, lpm.Bits()-1)
		}
	}
	return nil, &BindError{Err: &noRouteError{what: "route to " + dst.String() + " in table " + rs.tableName()}}
}

func (s *snapshot) routeErr(rs *routeSpec) error {
	if s.err != nil {
		return &BindError{Err: s.err}
	}
	if rs.err != nil {
		return &BindError{Err: rs.err}
	}
	return nil
}

func typeName(t uint8) string {
	switch t {
	case rtnBlackhole:
		return "blackhole"
	case rtnUnreachable:
		return "unreachable"
	case rtnProhibit:
		return "prohibit"
	case rtnThrow:
		return "throw"
	}
	return "type " + strconv.Itoa(int(t))
}

// sockV6 tells the family of a socket from the network Control received
// ("tcp4", "udp6", "ip6:ipv6-icmp"), or, failing that, from its address.
func sockV6(si sockInfo) (v6, ok bool) {
	n := si.network
	if i := strings.IndexByte(n, ':'); i >= 0 {
		n = n[:i]
	}
	if n != "" {
		switch n[len(n)-1] {
		case '4':
			return false, true
		case '6':
			return true, true
		}
	}
	if a, ok := sockAddr(si.address); ok {
		return a.Is6() && !a.Is4In6(), true
	}
	return false, false
}

// sockAddr parses the address Control received, with or without a port.
func sockAddr(address string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(address); err == nil {
		return ap.Addr(), true
	}
	if a, err := netip.ParseAddr(address); err == nil {
		return a, true
	}
	return netip.Addr{}, false
}

// DefaultRoute returns a Binding that binds every socket to the link of the
// best usable default route of the socket's own family in m's table, as
// that table is when the socket is made: an IPv4 socket follows the IPv4
// default, an IPv6 one (a dual-stack listener too) the IPv6 default, and
// each attempt of a dual-stack dial its own family. The best route is the
// unicast default of lowest metric whose link is up with carrier, is not
// loopback, and is not excluded by f; among equal metrics (and among the
// next hops of a multipath route) the first the kernel lists. Blackhole,
// unreachable and prohibit defaults are passed over.
//
// With no usable default route, a socket fails with an error for which
// errors.Is(err, ErrNoRoute) holds; once m is closed, with one for which
// errors.Is(err, net.ErrClosed) holds. A socket stays bound to the link it
// was bound to when the route moves. Link reports the link both families
// would use (or the one family that has a usable default route), and an
// error for which errors.Is(err, ErrNoRoute) holds when neither has one;
// when they differ, it returns an error naming both. The Binding is safe
// for concurrent use.
func (m *Monitor) DefaultRoute(f RouteFilter) Binding {
	return &defaultRoute{m: m, rs: newRouteSpec(f)}
}

type defaultRoute struct {
	m  *Monitor
	rs *routeSpec
}

func (d *defaultRoute) netns() *nsRef { return d.m.netns() }

func (d *defaultRoute) target(si sockInfo) (target, error) {
	return defaultTarget(d.m.load(), d.rs, si)
}

func defaultTarget(s *snapshot, rs *routeSpec, si sockInfo) (target, error) {
	v6, ok := sockV6(si)
	if !ok {
		return target{}, &BindError{Err: fmt.Errorf("cannot tell the address family of a %s socket for %q (%w)", si.network, si.address, syscall.EAFNOSUPPORT)}
	}
	return entryTarget(s.defaultLink(rs, v6))
}

func (d *defaultRoute) Link() (Link, error) { return bothFamilies(d.m.load(), d.rs) }

// bothFamilies returns the link of the default routes of both families,
// or of the one family that has one.
func bothFamilies(s *snapshot, rs *routeSpec) (Link, error) {
	e4, err4 := s.defaultLink(rs, false)
	e6, err6 := s.defaultLink(rs, true)
	switch {
	case err4 != nil && err6 != nil:
		if errors.Is(err4, ErrNoRoute) && errors.Is(err6, ErrNoRoute) {
			return Link{}, &BindError{Err: &noRouteError{what: "default route in table " + rs.tableName()}}
		}
		return Link{}, err4
	case err4 != nil:
		return e6.link, nil
	case err6 != nil:
		return e4.link, nil
	case e4 != e6:
		return Link{}, &BindError{Err: fmt.Errorf("%w: %s for IPv4, %s for IPv6", errFamiliesDiffer, e4.link, e6.link)}
	}
	return e4.link, nil
}

func (d *defaultRoute) String() string { return "default route" + d.rs.describe() }

func (rs *routeSpec) describe() string {
	s := ""
	if rs.table != tableMain {
		s += " table " + rs.tableName()
	}
	var ex []string
	for _, x := range rs.exclude {
		ex = append(ex, x.name)
	}
	ex = append(ex, rs.kinds...)
	if rs.skip != nil {
		ex = append(ex, "func")
	}
	if len(ex) > 0 {
		s += " excluding " + strings.Join(ex, ", ")
	}
	return s
}

// RouteTo returns a Binding that binds every socket to the link m's table
// sends the socket's destination through, with the routes of the links f
// excludes taken out, as `ip route get` would answer if they were deleted:
// the longest prefix that has a usable route, the lowest metric there, and
// the first next hop of a multipath route. Routes through links that are
// administratively down are passed over; routes through links without
// carrier are not, as the kernel uses them. A blackhole, unreachable,
// prohibit or throw route chosen this way fails the socket. The destination
// is the address Control receives. A listening socket has none: it binds as
// DefaultRoute(f) would.
//
// The lookup reads m's mirror of the table, in memory, without a system
// call. Rules (`ip rule`), marks and source routing are not followed: only
// f.Table is read. With no usable route a socket fails with an error for
// which errors.Is(err, ErrNoRoute) holds; once m is closed, with one for
// which errors.Is(err, net.ErrClosed) holds. Link reports what
// DefaultRoute(f) would; use Route for one destination. The Binding is safe
// for concurrent use.
func (m *Monitor) RouteTo(f RouteFilter) Binding {
	return &routeTo{m: m, rs: newRouteSpec(f)}
}

type routeTo struct {
	m  *Monitor
	rs *routeSpec
}

func (r *routeTo) netns() *nsRef { return r.m.netns() }

func (r *routeTo) target(si sockInfo) (target, error) {
	s := r.m.load()
	if si.listen {
		return defaultTarget(s, r.rs, si)
	}
	dst, ok := sockAddr(si.address)
	if !ok {
		return target{}, &BindError{Err: fmt.Errorf("cannot route to %q (%w)", si.address, syscall.EINVAL)}
	}
	return entryTarget(s.routeLink(r.rs, dst))
}

func (r *routeTo) Link() (Link, error) { return bothFamilies(r.m.load(), r.rs) }

func (r *routeTo) String() string { return "route to destination" + r.rs.describe() }

// Route returns the link RouteTo(f) would bind a socket to dst to, from m's
// table, without a system call. With no usable route it returns an error
// for which errors.Is(err, ErrNoRoute) holds.
func (m *Monitor) Route(dst netip.Addr, f RouteFilter) (Link, error) {
	e, err := m.load().routeLink(newRouteSpec(f), dst)
	if err != nil {
		return Link{}, err
	}
	return e.link, nil
}

// A routeBatch applies a batch of route changes to a routeView, copying
// only what it changes. Only the monitor's goroutine uses one.
type routeBatch struct {
	base   routeView
	tables map[uint32]*routeTable // nil until the first change
	owned  map[uint32]bool        // tables made by this batch: changed in place
	dump   bool                   // the mirror must be listed again
}

func (b *routeBatch) changed() bool { return b.tables != nil }

func (b *routeBatch) view() routeView {
	if b.tables == nil {
		return b.base
	}
	return routeView{tables: b.tables}
}

func (b *routeBatch) get(table uint32, pfx netip.Prefix) []rtEntry {
	tables := b.tables
	if tables == nil {
		tables = b.base.tables
	}
	if t := tables[table]; t != nil {
		v, _ := t.Get(pfx)
		return v
	}
	return nil
}

// set makes entries (sorted, never modified afterwards) the routes of pfx
// in table; none deletes them.
func (b *routeBatch) set(table uint32, pfx netip.Prefix, entries []rtEntry) {
	if b.tables == nil {
		b.tables = make(map[uint32]*routeTable, len(b.base.tables)+1)
		for id, t := range b.base.tables {
			b.tables[id] = t
		}
	}
	t := b.tables[table]
	switch {
	case len(entries) > 0 && t == nil:
		t = new(routeTable)
		t.Insert(pfx, entries)
		if b.owned == nil {
			b.owned = make(map[uint32]bool)
		}
		b.owned[table] = true
	case len(entries) > 0 && b.owned[table]:
		t.Insert(pfx, entries)
	case len(entries) > 0:
		t = t.InsertPersist(pfx, entries)
	case t == nil:
		return
	case b.owned[table]:
		t.Delete(pfx)
	default:
		t = t.DeletePersist(pfx)
	}
	if t.Size() == 0 {
		delete(b.tables, table)
		return
	}
	b.tables[table] = t
}

// A routeMsg is one RTM_NEWROUTE or RTM_DELROUTE, parsed.
type routeMsg struct {
	del     bool
	replace bool // NLM_F_REPLACE
	append  bool // NLM_F_APPEND
	table   uint32
	pfx     netip.Prefix
	entry   rtEntry
}

// add puts a new entry among others: after those of lower or equal metric
// (appended), or before those of equal metric (prepended).
func addEntry(entries []rtEntry, r rtEntry, appended bool) []rtEntry {
	i := 0
	for i < len(entries) && (entries[i].metric < r.metric || appended && entries[i].metric == r.metric) {
		i++
	}
	return slices.Insert(slices.Clip(entries), i, r)
}

// apply applies one route message as the kernel applied it. IPv4 keeps a
// route with all its next hops; IPv6 keeps each next hop as a route, and
// announces a multipath route with all its siblings at once.
//
// Adding a route the mirror holds already changes nothing: the monitor
// subscribes before it lists, so events it replays may be in the listing.
// The kernel refuses exact duplicates but for IPv6 routes appended without
// a gateway, which the mirror holds once.
func (b *routeBatch) apply(msg routeMsg) {
	old := b.get(msg.table, msg.pfx)
	var next []rtEntry
	r := msg.entry
	if msg.pfx.Addr().Is4() {
		switch {
		case msg.del:
			i := slices.IndexFunc(old, r.equal)
			if i < 0 {
				return
			}
			next = slices.Delete(slices.Clone(old), i, i+1)
		case msg.replace:
			i := slices.IndexFunc(old, func(o rtEntry) bool { return o.tos == r.tos && o.metric == r.metric })
			if i < 0 {
				next = addEntry(old, r, true)
			} else {
				next = slices.Clone(old)
				next[i] = r
			}
		case slices.ContainsFunc(old, r.equal):
			// The kernel refuses an exact duplicate: this is an event
			// the mirror already holds, replayed after a listing.
			return
		default:
			next = addEntry(old, r, msg.append)
		}
		b.set(msg.table, msg.pfx, next)
		return
	}
	next = slices.Clone(old)
	if msg.replace {
		// The kernel replaces the first route of r's metric that can
		// be grouped as r can (or, failing that, the first of its
		// metric), and its siblings, and puts r in its place.
		var at int
		next, at = replace6(next, r)
		if at >= 0 {
			next = slices.Insert(next, at, r.split()...)
			b.set(msg.table, msg.pfx, next)
			return
		}
	}
	for _, one := range r.split() {
		i := slices.IndexFunc(next, one.equal)
		switch {
		case msg.del && i >= 0:
			next = slices.Delete(next, i, i+1)
		case !msg.del && i < 0:
			next = addEntry(next, one, true)
		}
	}
	b.set(msg.table, msg.pfx, next)
}

// ecmp6 reports whether the kernel would group an IPv6 route with others of
// its metric into one multipath route: a route through a gateway.
func (r rtEntry) ecmp6() bool {
	return len(r.nh) > 0 && r.nh[0].gw.IsValid()
}

// replace6 removes from entries what an IPv6 replace by r replaces: the
// first route of r's metric that can be grouped as r can (or, failing that,
// the first of its metric) and, when it is grouped, its siblings. It
// returns where the kernel puts r, or -1 when r replaces nothing.
func replace6(entries []rtEntry, r rtEntry) ([]rtEntry, int) {
	i := slices.IndexFunc(entries, func(o rtEntry) bool { return o.metric == r.metric && o.ecmp6() == r.ecmp6() })
	if i < 0 {
		i = slices.IndexFunc(entries, func(o rtEntry) bool { return o.metric == r.metric })
	}
	if i < 0 {
		return entries, -1
	}
	if !entries[i].ecmp6() {
		return slices.Delete(entries, i, i+1), i
	}
	// No route of the metric comes before i that groups as entries[i]
	// does: its siblings all follow it.
	return slices.DeleteFunc(entries, func(o rtEntry) bool { return o.metric == r.metric && o.ecmp6() }), i
}

// split returns an IPv6 route as the kernel keeps it: one entry per next
// hop.
func (r rtEntry) split() []rtEntry {
	if len(r.nh) <= 1 {
		return []rtEntry{r}
	}
	out := make([]rtEntry, len(r.nh))
	for i := range r.nh {
		out[i] = r
		out[i].nh = r.nh[i : i+1 : i+1]
	}
	return out
}

// dropLink removes the routes the kernel removes without a word when a link
// goes down (gone false) or is deleted (gone true): the IPv4 routes whose
// every next hop is on a link that is down or gone, once down; every route
// with a next hop on the link, once it is gone. up tells whether a link is
// up as the new link table has it.
//
// The kernel's rules are more intricate than these (IPv6 multipath routes
// and their siblings, routes of other scopes): when any route went through
// the link, dropLink also asks for the routes to be listed again after the
// batch, so that the mirror ends up as the kernel has it.
func (b *routeBatch) dropLink(index int, gone bool, up func(int32) bool) {
	tables := b.tables
	if tables == nil {
		tables = b.base.tables
	}
	type change struct {
		table   uint32
		pfx     netip.Prefix
		entries []rtEntry
	}
	var changes []change
	for id, t := range tables {
		for pfx, entries := range t.All() {
			drop := func(r rtEntry) bool {
				on := slices.ContainsFunc(r.nh, func(nh rtNexthop) bool { return int(nh.index) == index })
				if !on {
					return false
				}
				b.dump = true
				if gone {
					return true
				}
				if !pfx.Addr().Is4() || r.scope == scopeHost {
					return false
				}
				return !slices.ContainsFunc(r.nh, func(nh rtNexthop) bool { return up(nh.index) })
			}
			if slices.ContainsFunc(entries, drop) {
				changes = append(changes, change{id, pfx, slices.DeleteFunc(slices.Clone(entries), drop)})
			}
		}
	}
	for _, c := range changes {
		b.set(c.table, c.pfx, c.entries)
	}
}
