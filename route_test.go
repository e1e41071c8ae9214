package ifbind

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
)

// routeSnap builds a snapshot with links and routes, without a kernel, for
// the rules of choice.
func routeSnap(t testing.TB, links []Link, kinds map[int]string, msgs ...routeMsg) *snapshot {
	t.Helper()
	lt := newLinkTable(len(links))
	for _, l := range links {
		lt.set(&linkEntry{link: l, id: linkIdentity{kind: kinds[l.Index]}})
	}
	var b routeBatch
	for _, m := range msgs {
		m.append = true
		if m.table == 0 {
			m.table = tableMain
		}
		b.apply(m)
	}
	return &snapshot{linkTable: lt, routes: b.view()}
}

const upRunning = net.FlagUp | net.FlagRunning

func via(index int32) []rtNexthop { return []rtNexthop{{index: index}} }

func TestRouteChoice(t *testing.T) {
	links := []Link{
		{Index: 1, Name: "lo", Flags: upRunning | net.FlagLoopback},
		{Index: 2, Name: "eth0", Flags: upRunning},
		{Index: 3, Name: "eth1", Flags: upRunning, Altnames: []string{"wan1"}},
		{Index: 4, Name: "tun0", Flags: upRunning},
		{Index: 5, Name: "eth2", Flags: net.FlagUp}, // no carrier
		{Index: 6, Name: "eth3"},                    // down
	}
	kinds := map[int]string{4: "tun"}
	d4 := func(metric uint32, typ uint8, nh ...rtNexthop) routeMsg {
		return routeMsg{pfx: defaultV4, entry: rtEntry{metric: metric, typ: typ, nh: nh}}
	}
	tests := []struct {
		name string
		msgs []routeMsg
		f    RouteFilter
		want int // 0: ErrNoRoute
	}{
		{"none", nil, RouteFilter{}, 0},
		{"lowest metric", []routeMsg{d4(200, rtnUnicast, via(2)...), d4(100, rtnUnicast, via(3)...)}, RouteFilter{}, 3},
		{"tun by kind", []routeMsg{d4(200, rtnUnicast, via(2)...), d4(10, rtnUnicast, via(4)...)}, RouteFilter{ExcludeKinds: []string{"tun"}}, 2},
		{"tun unfiltered", []routeMsg{d4(200, rtnUnicast, via(2)...), d4(10, rtnUnicast, via(4)...)}, RouteFilter{}, 4},
		{"by altname", []routeMsg{d4(200, rtnUnicast, via(2)...), d4(10, rtnUnicast, via(3)...)}, RouteFilter{Exclude: []string{"wan1"}}, 2},
		{"by index", []routeMsg{d4(200, rtnUnicast, via(2)...), d4(10, rtnUnicast, via(3)...)}, RouteFilter{Exclude: []string{"3"}}, 2},
		{"blackhole passed over", []routeMsg{d4(1, rtnBlackhole), d4(2, rtnUnreachable), d4(3, rtnProhibit), d4(100, rtnUnicast, via(2)...)}, RouteFilter{}, 2},
		{"only blackhole", []routeMsg{d4(1, rtnBlackhole)}, RouteFilter{}, 0},
		{"no carrier, down, loopback", []routeMsg{d4(1, rtnUnicast, via(5)...), d4(2, rtnUnicast, via(6)...), d4(3, rtnUnicast, via(1)...), d4(100, rtnUnicast, via(3)...)}, RouteFilter{}, 3},
		{"multipath: first next hop", []routeMsg{d4(100, rtnUnicast, rtNexthop{index: 3}, rtNexthop{index: 2})}, RouteFilter{}, 3},
		{"multipath: first usable", []routeMsg{d4(100, rtnUnicast, rtNexthop{index: 4}, rtNexthop{index: 5}, rtNexthop{index: 2})}, RouteFilter{ExcludeKinds: []string{"tun"}}, 2},
		{"equal metrics: first listed", []routeMsg{d4(100, rtnUnicast, via(3)...), d4(100, rtnUnicast, via(2)...)}, RouteFilter{}, 3},
		{"other table", []routeMsg{d4(100, rtnUnicast, via(3)...), {table: 2022, pfx: defaultV4, entry: rtEntry{metric: 1, typ: rtnUnicast, nh: via(4)}}}, RouteFilter{Table: 2022}, 4},
		{"table without routes", []routeMsg{d4(100, rtnUnicast, via(3)...)}, RouteFilter{Table: 7}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := routeSnap(t, links, kinds, tt.msgs...)
			e, err := s.defaultLink(newRouteSpec(tt.f), false)
			switch {
			case tt.want == 0 && !errors.Is(err, ErrNoRoute):
				t.Errorf("got %v, %v, want ErrNoRoute", e, err)
			case tt.want != 0 && (err != nil || e.link.Index != tt.want):
				t.Errorf("got %v, %v, want index %d", e, err, tt.want)
			}
		})
	}
}

func TestRouteToChoice(t *testing.T) {
	links := []Link{
		{Index: 1, Name: "lo", Flags: upRunning | net.FlagLoopback},
		{Index: 2, Name: "eth0", Flags: upRunning},
		{Index: 3, Name: "eth1", Flags: net.FlagUp}, // no carrier: the kernel uses it
		{Index: 4, Name: "tun0", Flags: upRunning},
	}
	p := netip.MustParsePrefix
	r := func(pfx string, metric uint32, typ uint8, nh ...rtNexthop) routeMsg {
		return routeMsg{pfx: p(pfx), entry: rtEntry{metric: metric, typ: typ, nh: nh}}
	}
	s := routeSnap(t, links, map[int]string{4: "tun"},
		r("0.0.0.0/0", 100, rtnUnicast, via(2)...),
		r("10.0.0.0/8", 10, rtnUnicast, via(3)...),
		r("10.1.0.0/16", 10, rtnUnicast, via(4)...),
		r("10.1.2.0/24", 5, rtnBlackhole),
		r("10.1.2.0/24", 10, rtnUnicast, via(2)...),
		r("2001:db8::/32", 1024, rtnUnreachable, via(1)...),
		r("2001:db8:1::/48", 1024, rtnUnicast, via(4)...),
	)
	tun := RouteFilter{ExcludeKinds: []string{"tun"}}
	tests := []struct {
		dst  string
		f    RouteFilter
		want int
	}{
		{"192.0.2.1", RouteFilter{}, 2},
		{"10.9.9.9", RouteFilter{}, 3},
		{"10.1.9.9", RouteFilter{}, 4},
		{"10.1.9.9", tun, 3},           // the tun's /16 taken out: the /8
		{"10.1.2.3", RouteFilter{}, 0}, // the blackhole's metric wins
		{"::ffff:10.1.9.9", tun, 3},
		{"2001:db8:1::1", RouteFilter{}, 4},
		{"2001:db8:1::1", tun, 0}, // unreachable, by type, though its link is lo
		{"2001:db9::1", RouteFilter{}, 0},
	}
	for _, tt := range tests {
		rs := newRouteSpec(tt.f)
		e, err := s.routeLink(rs, netip.MustParseAddr(tt.dst))
		switch {
		case tt.want == 0 && !errors.Is(err, ErrNoRoute):
			t.Errorf("%s %v: got %v, %v, want ErrNoRoute", tt.dst, tt.f, e, err)
		case tt.want != 0 && (err != nil || e.link.Index != tt.want):
			t.Errorf("%s %v: got %v, %v, want index %d", tt.dst, tt.f, e, err, tt.want)
		}
	}
	// A listener has no destination: RouteTo binds it as DefaultRoute.
	rt := &routeTo{m: new(Monitor), rs: newRouteSpec(RouteFilter{})}
	if _, err := rt.target(sockInfo{network: "tcp6", listen: true}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("zero Monitor: got %v, want net.ErrClosed", err)
	}
}

func TestRouteErrors(t *testing.T) {
	var nilm *Monitor
	for _, b := range []Binding{nilm.DefaultRoute(RouteFilter{}), nilm.RouteTo(RouteFilter{}), new(Monitor).DefaultRoute(RouteFilter{})} {
		_, err := b.target(sockInfo{network: "tcp4", address: "192.0.2.1:80"})
		var be *BindError
		if !errors.Is(err, net.ErrClosed) || !errors.As(err, &be) {
			t.Errorf("%v of a nil or zero Monitor: got %v, want net.ErrClosed in a *BindError", b, err)
		}
	}
	s := routeSnap(t, []Link{{Index: 2, Name: "eth0", Flags: upRunning}}, nil,
		routeMsg{pfx: defaultV4, entry: rtEntry{typ: rtnUnicast, nh: via(2)}})
	for _, f := range []RouteFilter{{Exclude: []string{"a/b"}}, {Table: -1}} {
		_, err := s.defaultLink(newRouteSpec(f), false)
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%+v: got %v, want EINVAL", f, err)
		}
	}
	if !errors.Is(ErrNoRoute, ErrNoRoute) || !errors.Is(&noRouteError{}, syscall.ENETUNREACH) {
		t.Error("a no-route error is not ENETUNREACH")
	}
}

func TestSockFamily(t *testing.T) {
	for _, tt := range []struct {
		si     sockInfo
		v6, ok bool
	}{
		{sockInfo{network: "tcp4"}, false, true},
		{sockInfo{network: "udp6"}, true, true},
		{sockInfo{network: "ip4:icmp"}, false, true},
		{sockInfo{network: "ip6:ipv6-icmp"}, true, true},
		{sockInfo{network: "tcp", address: "[2001:db8::1]:80"}, true, true},
		{sockInfo{network: "tcp", address: "192.0.2.1:80"}, false, true},
		{sockInfo{network: "tcp", address: "[::ffff:192.0.2.1]:80"}, false, true},
		{sockInfo{network: "tcp", address: "nonsense"}, false, false},
	} {
		v6, ok := sockV6(tt.si)
		if v6 != tt.v6 || ok != tt.ok {
			t.Errorf("%+v: got %v, %v, want %v, %v", tt.si, v6, ok, tt.v6, tt.ok)
		}
	}
}

// A socket's route costs no allocation, hit or (for DefaultRoute) miss of
// an excluded link.
func TestRouteAllocs(t *testing.T) {
	links := []Link{{Index: 2, Name: "eth0", Flags: upRunning}, {Index: 4, Name: "tun0", Flags: upRunning}}
	s := routeSnap(t, links, map[int]string{4: "tun"},
		routeMsg{pfx: defaultV4, entry: rtEntry{metric: 1, typ: rtnUnicast, nh: via(4)}},
		routeMsg{pfx: defaultV4, entry: rtEntry{metric: 100, typ: rtnUnicast, nh: via(2)}},
		routeMsg{pfx: netip.MustParsePrefix("10.0.0.0/8"), entry: rtEntry{metric: 1, typ: rtnUnicast, nh: via(2)}},
		routeMsg{pfx: defaultV6, entry: rtEntry{metric: 1, typ: rtnUnicast, nh: via(2)}},
	)
	m := new(Monitor)
	m.snap.Store(s)
	f := RouteFilter{Exclude: []string{"tun0"}, ExcludeKinds: []string{"wireguard"}}
	for _, b := range []Binding{m.DefaultRoute(f), m.RouteTo(f)} {
		for _, si := range []sockInfo{
			{network: "tcp4", address: "10.1.2.3:443"},
			{network: "udp6", address: "[2001:db8::1]:443"},
		} {
			n := testing.AllocsPerRun(100, func() {
				if tg, err := b.target(si); err != nil || tg.index != 2 {
					t.Fatalf("%v %v: got %v, %v", b, si, tg, err)
				}
			})
			if n != 0 {
				t.Errorf("%v %v: %v allocations per socket, want 0", b, si, n)
			}
		}
	}
}

// Events replayed on top of a listing that already shows them (the monitor
// subscribes first and lists second) change nothing.
func TestRouteReplay(t *testing.T) {
	p := netip.MustParsePrefix("10.0.0.0/8")
	add4 := routeMsg{table: tableMain, pfx: p, entry: rtEntry{metric: 5, typ: rtnUnicast, nh: via(2)}}
	add6 := routeMsg{table: tableMain, pfx: netip.MustParsePrefix("2001:db8::/32"), entry: rtEntry{metric: 5, typ: rtnUnicast,
		nh: []rtNexthop{{index: 2, gw: netip.MustParseAddr("fe80::1")}, {index: 3, gw: netip.MustParseAddr("fe80::2")}}}}
	var b routeBatch
	for range 2 {
		b.apply(add4)
		b.apply(add6)
	}
	n := 0
	for _, tb := range b.view().tables {
		for _, entries := range tb.All() {
			n += len(entries)
		}
	}
	if n != 3 {
		t.Errorf("after replays: got %d routes, want 3", n)
	}
}
