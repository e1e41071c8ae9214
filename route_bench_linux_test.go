package ifbind

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"testing"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeCounts are the table sizes of the route benchmarks.
var routeCounts = []int{100, 1000, 10000, 100000}

// A routeFixture is a namespace with an uplink, up0, a default route
// through it, and n more routes through it: IPv4 /28s and IPv6 /64s, half
// each.
type routeFixture struct {
	ns     *testnet.NS
	index  int
	dsts   []string // "addr:port" inside the routes, to dial or look up
	routes []netip.Prefix
}

var routeFixtures struct {
	sync.Mutex
	byN map[int]*routeFixture
}

func routeBenchFixture(b *testing.B, n int) *routeFixture {
	b.Helper()
	testnet.Require(b)
	routeFixtures.Lock()
	defer routeFixtures.Unlock()
	if f := routeFixtures.byN[n]; f != nil {
		return f
	}
	ns, err := testnet.NewProcessNS()
	if err != nil {
		b.Fatal(err)
	}
	f := &routeFixture{ns: ns}
	err = ns.Do(func() error {
		h, err := netlink.NewHandle()
		if err != nil {
			return err
		}
		defer h.Close()
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "up0p"}); err != nil {
			return err
		}
		for _, name := range []string{"up0p", "up0"} {
			l, err := h.LinkByName(name)
			if err != nil {
				return err
			}
			if err := h.LinkSetUp(l); err != nil {
				return err
			}
			f.index = l.Attrs().Index
		}
		up0, _ := h.LinkByIndex(f.index)
		addr, _ := netlink.ParseAddr("100.64.0.1/24")
		if err := h.AddrAdd(up0, addr); err != nil {
			return err
		}
		return h.RouteAdd(&netlink.Route{LinkIndex: f.index, Gw: net.IPv4(100, 64, 0, 2), Dst: zeroNet(false)})
	})
	if err != nil {
		b.Fatalf("failed to build the uplink: %v", err)
	}
	for i := range n {
		if i%2 == 0 {
			j := i / 2
			f.routes = append(f.routes, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(j >> 12), byte(j >> 4), byte(j&0xf) << 4}), 28))
		} else {
			j := i / 2
			f.routes = append(f.routes, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(j >> 16), byte(j >> 8), byte(j)}), 64))
		}
	}
	if err := ns.AddRoutes(f.index, f.routes); err != nil {
		b.Fatalf("failed to add %d routes: %v", n, err)
	}
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	for range 1024 {
		p := f.routes[rng.IntN(len(f.routes))]
		a := p.Addr().As16()
		if p.Addr().Is4() {
			a4 := p.Addr().As4()
			a4[3] |= byte(1 + rng.IntN(14))
			f.dsts = append(f.dsts, netip.AddrPortFrom(netip.AddrFrom4(a4), 443).String())
			continue
		}
		a[15] = byte(1 + rng.IntN(250))
		f.dsts = append(f.dsts, netip.AddrPortFrom(netip.AddrFrom16(a), 443).String())
	}
	if routeFixtures.byN == nil {
		routeFixtures.byN = map[int]*routeFixture{}
	}
	routeFixtures.byN[n] = f
	return f
}

// BenchmarkRouteLookup measures what it costs to learn the route of one
// destination among n routes: impl=mirror is what a RouteTo binding does
// per socket (parse the address Control receives, look it up in the
// monitor's mirror); impl=routeget asks the kernel (RTM_GETROUTE, `ip route
// get`) per socket; impl=dump lists every route, as peers do after each
// change. It also reports the mirror's heap at n routes.
func BenchmarkRouteLookup(b *testing.B) {
	for _, n := range routeCounts {
		f := routeBenchFixture(b, n)
		var m *Monitor
		var heap uint64
		inNS(b, f.ns, func() (err error) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			m, err = NewMonitor(context.Background())
			runtime.GC()
			runtime.ReadMemStats(&after)
			heap = after.HeapAlloc - before.HeapAlloc
			return err
		})
		bd := m.RouteTo(RouteFilter{ExcludeKinds: []string{"tun", "wireguard"}})
		b.Run(fmt.Sprintf("N=%d/impl=mirror", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				t, err := bd.target(sockInfo{network: "tcp", address: f.dsts[i%len(f.dsts)]})
				if err != nil || t.index != f.index {
					b.Fatalf("route to %s: got %v, %v, want index %d", f.dsts[i%len(f.dsts)], t, err, f.index)
				}
				i++
			}
			b.ReportMetric(float64(heap), "monitor-heap-B")
		})
		b.Run(fmt.Sprintf("N=%d/impl=routeget", n), func(b *testing.B) {
			b.ReportAllocs()
			inNS(b, f.ns, func() error {
				h, err := netlink.NewHandle()
				if err != nil {
					return err
				}
				defer h.Close()
				i := 0
				for b.Loop() {
					ap := netip.MustParseAddrPort(f.dsts[i%len(f.dsts)])
					rs, err := h.RouteGet(ap.Addr().AsSlice())
					if err != nil || len(rs) == 0 || rs[0].LinkIndex != f.index {
						return fmt.Errorf("route get %v: %v, %v", ap, rs, err)
					}
					i++
				}
				return nil
			})
		})
		b.Run(fmt.Sprintf("N=%d/impl=dump", n), func(b *testing.B) {
			b.ReportAllocs()
			inNS(b, f.ns, func() error {
				h, err := netlink.NewHandle()
				if err != nil {
					return err
				}
				defer h.Close()
				for b.Loop() {
					rs, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
					if err != nil || len(rs) < n {
						return fmt.Errorf("dump: %d routes, %v", len(rs), err)
					}
				}
				return nil
			})
		})
		m.Close()
	}
}

// BenchmarkRouteDialRatio interleaves UDP dials (socket, bind, connect,
// close) bound by Index, through DefaultRoute and through RouteTo, to an
// address the default route covers, in a namespace with 1,000 routes.
func BenchmarkRouteDialRatio(b *testing.B) {
	f := routeBenchFixture(b, 1000)
	inNS(b, f.ns, func() error {
		m, err := NewMonitor(context.Background())
		if err != nil {
			return err
		}
		defer m.Close()
		raddr := netip.MustParseAddrPort("203.0.113.1:9")
		flt := RouteFilter{ExcludeKinds: []string{"tun", "wireguard"}}
		index := &Dialer{Index: f.index}
		def := &Dialer{Binding: m.DefaultRoute(flt)}
		to := &Dialer{Binding: m.RouteTo(flt)}
		interleave(b, 32, "index", func() error { return dialOnce(index, raddr) },
			namedFunc{"default", func() error { return dialOnce(def, raddr) }},
			namedFunc{"routeto", func() error { return dialOnce(to, raddr) }})
		return nil
	})
}

// BenchmarkRouteLookupRatio interleaves a RouteTo binding's per-socket
// work (parse the address Control receives, find its route in the mirror)
// on mirrors of 100 and of 100,000 routes, built in memory by the monitor's
// own code, and reports the median ratio: whether the lookup stays flat as
// the table grows, on a machine whose load moves absolute times.
func BenchmarkRouteLookupRatio(b *testing.B) {
	build := func(n int) (*routeTo, []string) {
		routes := make([]routeMsg, 0, n+1)
		routes = append(routes, routeMsg{pfx: defaultV4, entry: rtEntry{typ: rtnUnicast, nh: via(2)}})
		var pfxs []netip.Prefix
		for i := range n {
			j := i / 2
			p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(j >> 16), byte(j >> 8), byte(j)}), 64)
			if i%2 == 0 {
				p = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(j >> 12), byte(j >> 4), byte(j&0xf) << 4}), 28)
			}
			pfxs = append(pfxs, p)
			routes = append(routes, routeMsg{pfx: p, entry: rtEntry{typ: rtnUnicast, nh: via(2)}})
		}
		s := routeSnap(b, []Link{{Index: 2, Name: "eth0", Flags: upRunning}}, map[int]string{2: "veth"}, routes...)
		m := new(Monitor)
		m.snap.Store(s)
		rng := rand.New(rand.NewPCG(uint64(n), 2))
		var dsts []string
		for range 1024 {
			p := pfxs[rng.IntN(len(pfxs))]
			dsts = append(dsts, netip.AddrPortFrom(p.Addr().Next(), 443).String())
		}
		return m.RouteTo(RouteFilter{ExcludeKinds: []string{"tun", "wireguard"}}).(*routeTo), dsts
	}
	look := func(rt *routeTo, dsts []string) func() error {
		i := 0
		return func() error {
			t, err := rt.target(sockInfo{network: "tcp", address: dsts[i&1023]})
			i++
			if err != nil || t.index != 2 {
				return fmt.Errorf("got %v, %v", t, err)
			}
			return nil
		}
	}
	small, sdsts := build(100)
	large, ldsts := build(100000)
	b.ReportAllocs()
	interleave(b, 32, "N=100", look(small, sdsts), namedFunc{"N=100000", look(large, ldsts)})
}
