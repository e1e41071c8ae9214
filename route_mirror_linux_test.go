package ifbind

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeLines renders a route view as sorted lines, one per route (one per
// next hop of an IPv6 route, as the kernel keeps them), for comparison.
func routeLines(v routeView) []string {
	var lines []string
	for id, t := range v.tables {
		for pfx, entries := range t.All() {
			for _, r := range entries {
				var nh []string
				for _, h := range r.nh {
					nh = append(nh, fmt.Sprintf("%d/%v", h.index, h.gw))
				}
				lines = append(lines, fmt.Sprintf("table %d %v metric %d tos %d type %d nh %s", id, pfx, r.metric, r.tos, r.typ, strings.Join(nh, ",")))
			}
		}
	}
	slices.Sort(lines)
	return lines
}

// kernelRouteLines lists every table through h and renders it as
// routeLines does, from the netlink package's parsing of the dump.
func kernelRouteLines(t testing.TB, h *netlink.Handle) []string {
	t.Helper()
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatalf("failed to list routes: %v", err)
	}
	var lines []string
	for _, r := range routes {
		pfx := "0.0.0.0/0"
		if r.Family == unix.AF_INET6 {
			pfx = "::/0"
		}
		if r.Dst != nil {
			pfx = r.Dst.String()
		}
		type hop struct {
			index int
			gw    net.IP
		}
		hops := []hop{{r.LinkIndex, r.Gw}}
		if len(r.MultiPath) > 0 {
			hops = hops[:0]
			for _, m := range r.MultiPath {
				hops = append(hops, hop{m.LinkIndex, m.Gw})
			}
		}
		var all []string
		for _, h := range hops {
			gw := "invalid IP"
			if h.gw != nil {
				gw = h.gw.String()
			}
			all = append(all, fmt.Sprintf("%d/%s", h.index, gw))
		}
		if r.LinkIndex == 0 && len(r.MultiPath) == 0 {
			all = nil
		}
		line := func(nh []string) string {
			return fmt.Sprintf("table %d %s metric %d tos %d type %d nh %s", r.Table, pfx, r.Priority, r.Tos, r.Type, strings.Join(nh, ","))
		}
		if r.Family == unix.AF_INET6 && len(all) > 1 {
			for _, h := range all {
				lines = append(lines, line([]string{h}))
			}
			continue
		}
		lines = append(lines, line(all))
	}
	slices.Sort(lines)
	// `ip -6 route append` can make two identical routes; the mirror
	// keeps one, as it cannot tell a second from a replayed event.
	return slices.Compact(lines)
}

// TestRouteMirrorChurn makes 5,000 route changes of every kind the mirror
// follows by events alone (add, delete, IPv4 replace and change, append,
// multipath, IPv6 siblings, other tables, blackhole and unreachable routes;
// IPv6 routes with and without a gateway kept to metrics of their own),
// checks the monitor's mirror against a fresh dump of every table, and that
// it got there without listing anything again; then 1,000 more, with IPv6
// replaces, IPv6 routes of all kinds sharing metrics, and a link taken down
// and up now and then (which drops its IPv4 routes without a word), and a
// link deleted, after which the monitor lists the routes again, and checks
// again.
func TestRouteMirrorChurn(t *testing.T) {
	ns, h := linkNS(t)
	var links []netlink.Link
	for i := range 4 {
		l := addVeth(t, h, fmt.Sprintf("rd%d", i), fmt.Sprintf("rd%dp", i), 0)
		if err := h.LinkSetUp(mustLink(t, h, fmt.Sprintf("rd%dp", i))); err != nil {
			t.Fatal(err)
		}
		addr, _ := netlink.ParseAddr(fmt.Sprintf("100.64.%d.1/24", i))
		addr6, _ := netlink.ParseAddr(fmt.Sprintf("fd00:%d::1/64", i))
		addr6.Flags = unix.IFA_F_NODAD
		if err := h.AddrAdd(l, addr); err != nil {
			t.Fatal(err)
		}
		if err := h.AddrAdd(l, addr6); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		links = append(links, l)
	}
	m := monitorIn(t, ns, monitorConfig{})
	rng := rand.New(rand.NewPCG(1, 2))
	gw := func(link int, v6 bool) net.IP {
		if v6 {
			return net.ParseIP(fmt.Sprintf("fd00:%d::%x", link, 2+rng.IntN(200)))
		}
		return net.ParseIP(fmt.Sprintf("100.64.%d.%d", link, 2+rng.IntN(200)))
	}
	mixOK := false // until the first 5,000 events are checked
	randRoute := func() *netlink.Route {
		v6 := rng.IntN(2) == 0
		r := &netlink.Route{Priority: rng.IntN(4) * 10, Table: []int{0, 0, 0, 100, 2022}[rng.IntN(5)]}
		if v6 {
			r.Dst = &net.IPNet{IP: net.ParseIP(fmt.Sprintf("2001:db8:%x::", rng.IntN(64))), Mask: net.CIDRMask(48, 128)}
		} else {
			r.Dst = &net.IPNet{IP: net.IPv4(10, byte(rng.IntN(64)), 0, 0).To4(), Mask: net.CIDRMask(16, 32)}
		}
		if rng.IntN(20) == 0 {
			r.Dst = nil // a default route
			r.Family = unix.AF_INET
			if v6 {
				r.Family = unix.AF_INET6
			}
		}
		switch k := rng.IntN(10); {
		case k == 0:
			r.Type = unix.RTN_BLACKHOLE
		case k == 1:
			r.Type = unix.RTN_UNREACHABLE
		case k <= 3:
			a, b := rng.IntN(len(links)), rng.IntN(len(links))
			if a == b {
				b = (a + 1) % len(links)
			}
			r.MultiPath = []*netlink.NexthopInfo{
				{LinkIndex: links[a].Attrs().Index, Gw: gw(a, v6)},
				{LinkIndex: links[b].Attrs().Index, Gw: gw(b, v6)},
			}
		case k <= 6:
			i := rng.IntN(len(links))
			r.LinkIndex = links[i].Attrs().Index
			r.Gw = gw(i, v6)
		default:
			r.LinkIndex = links[rng.IntN(len(links))].Attrs().Index
		}
		if v6 && !mixOK {
			// IPv6 routes through a gateway and others never share a
			// metric: the monitor lists the routes again when they do.
			r.Priority = []int{0, 20}[rng.IntN(2)]
			if r.Gw != nil || r.MultiPath != nil {
				r.Priority = []int{10, 30}[rng.IntN(2)]
			}
		}
		return r
	}
	var live []*netlink.Route
	events := 0
	for events < 6000 {
		switch op := rng.IntN(12); {
		case op < 5 || len(live) == 0:
			r := randRoute()
			if err := h.RouteAdd(r); err == nil {
				live = append(live, r)
				events++
			}
		case op < 6:
			r := randRoute()
			if err := h.RouteAppend(r); err == nil {
				live = append(live, r)
				events++
			}
		case op < 7:
			r := randRoute()
			if events < 5000 && isV6(r) {
				continue // IPv6 replaces come after the first 5,000
			}
			if err := h.RouteReplace(r); err == nil {
				live = append(live, r)
				events++
			}
		case op < 8:
			r := randRoute()
			if events < 5000 && isV6(r) {
				continue // IPv6 replaces come after the first 5,000
			}
			if err := h.RouteChange(r); err == nil {
				events++
			}
		default:
			i := rng.IntN(len(live))
			if err := h.RouteDel(live[i]); err == nil {
				events++
			}
			live = slices.Delete(live, i, i+1)
		}
		if events == 5000 {
			// So far, events alone: the mirror must match with no
			// listing at all.
			if got, want := waitRoutes(t, m, h); !slices.Equal(got, want) {
				t.Fatalf("route mirror differs from the kernel's tables after %d route events (-want +got):\n%s", events, lineDiff(want, got))
			}
			if n, d := m.resyncs.Load(), m.routeDumps.Load(); n != 0 || d != 0 {
				t.Fatalf("the monitor listed everything again (%d resyncs, %d route dumps): the test proves nothing of its events", n, d)
			}
			mixOK = true
		}
		if events > 5000 && events%200 == 199 {
			// The kernel drops rd3's IPv4 routes on the way down and
			// announces none of it; its IPv6 routes go with events.
			l := links[3]
			if err := h.LinkSetDown(l); err != nil {
				t.Fatal(err)
			}
			if err := h.LinkSetUp(l); err != nil {
				t.Fatal(err)
			}
			addr6, _ := netlink.ParseAddr("fd00:3::1/64")
			addr6.Flags = unix.IFA_F_NODAD
			h.AddrReplace(l, addr6)
			events++
		}
	}
	// A deleted link takes all its routes along.
	if err := h.LinkDel(links[2]); err != nil {
		t.Fatal(err)
	}
	// Link-local addresses finish their duplicate address detection, and
	// add their routes, when they please: compare until both agree.
	if got, want := waitRoutes(t, m, h); !slices.Equal(got, want) {
		t.Fatalf("route mirror differs from the kernel's tables (-want +got):\n%s", lineDiff(want, got))
	}
	t.Logf("%d route events", events)
}

// waitRoutes waits, a few seconds at most, until m's mirror renders as the
// kernel's tables do, and returns both as it rendered them last.
func waitRoutes(t testing.TB, m *Monitor, h *netlink.Handle) (got, want []string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s := m.load()
		want = kernelRouteLines(t, h)
		got = routeLines(s.routes)
		if slices.Equal(got, want) || s.err != nil {
			return got, want
		}
		select {
		case <-s.changed:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			return got, want
		}
	}
}

// lineDiff lists the lines want has more of (-) and got has more of (+).
func lineDiff(want, got []string) string {
	n := map[string]int{}
	for _, l := range want {
		n[l]--
	}
	for _, l := range got {
		n[l]++
	}
	var lines []string
	for l, k := range n {
		for ; k < 0; k++ {
			lines = append(lines, "-"+l)
		}
		for ; k > 0; k-- {
			lines = append(lines, "+"+l)
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

func mustLink(t testing.TB, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("failed to look up %s: %v", name, err)
	}
	return l
}

func isV6(r *netlink.Route) bool {
	return r.Family == unix.AF_INET6 || r.Dst != nil && r.Dst.IP.To4() == nil
}

// TestRouteToAgreesWithKernel fills a table with a few hundred routes of
// both families (nested prefixes, several metrics, a link without carrier,
// blackhole and unreachable routes, routes through a link to exclude) and
// asks, for 400 destinations drawn over it, which link Route picks with
// that link excluded. Then it deletes the excluded link's routes from the
// kernel and asks the kernel (RTM_GETROUTE, `ip route get`): both must
// name the same link, or both fail.
func TestRouteToAgreesWithKernel(t *testing.T) {
	ns, h := linkNS(t)
	var links []netlink.Link
	for i, name := range []string{"rg0", "rg1", "rg2", "rgx"} {
		l := addVeth(t, h, name, name+"p", 0)
		if name != "rg2" { // rg2 stays without carrier: its peer is down
			if err := h.LinkSetUp(mustLink(t, h, name+"p")); err != nil {
				t.Fatal(err)
			}
		}
		for _, a := range []string{fmt.Sprintf("100.64.%d.1/24", i), fmt.Sprintf("fd00:%d::1/64", i)} {
			addr, _ := netlink.ParseAddr(a)
			addr.Flags = unix.IFA_F_NODAD
			if err := h.AddrAdd(l, addr); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		links = append(links, mustLink(t, h, name))
	}
	excluded := links[3].Attrs().Index
	m := monitorIn(t, ns, monitorConfig{})
	rng := rand.New(rand.NewPCG(7, 7))
	var prefixes []netip.Prefix
	for i := range 300 {
		v6 := i%2 == 1
		var pfx netip.Prefix
		if v6 {
			var b [16]byte
			b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
			for j := 4; j < 8; j++ {
				b[j] = byte(rng.IntN(4)) // few values: prefixes nest
			}
			pfx = netip.PrefixFrom(netip.AddrFrom16(b), 32+rng.IntN(33)).Masked()
		} else {
			pfx = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(4)), byte(rng.IntN(256))}), 8+rng.IntN(23)).Masked()
		}
		if i < 2 {
			pfx = netip.PrefixFrom(pfx.Addr(), 0).Masked() // the defaults
		}
		prefixes = append(prefixes, pfx)
		for k, metric := range []int{10 + rng.IntN(5), 20 + rng.IntN(5)}[:1+rng.IntN(2)] {
			r := &netlink.Route{Dst: prefixNet(pfx), Priority: metric}
			switch n := rng.IntN(20); {
			case n == 0 && k == 0:
				r.Type = unix.RTN_BLACKHOLE
			case n == 1 && k == 0:
				r.Type = unix.RTN_UNREACHABLE
			default:
				li := rng.IntN(len(links))
				if n < 8 {
					li = 3 // the excluded link, often
				}
				r.LinkIndex = links[li].Attrs().Index
				if !v6 && rng.IntN(2) == 0 {
					r.Gw = net.IPv4(100, 64, byte(li), 2)
				}
			}
			if err := h.RouteAdd(r); err != nil && !errors.Is(err, syscall.EEXIST) {
				t.Fatalf("failed to add %v: %v", r, err)
			}
		}
	}
	var dsts []netip.Addr
	for len(dsts) < 400 {
		pfx := prefixes[rng.IntN(len(prefixes))]
		b := pfx.Addr().AsSlice()
		for j := pfx.Bits() / 8; j < len(b); j++ {
			b[j] |= byte(rng.IntN(256)) & (0xff >> max(0, pfx.Bits()-8*j))
		}
		a, _ := netip.AddrFromSlice(b)
		if pfx.Bits() == 0 { // keep defaults' destinations away from the links' own subnets
			if a.Is4() {
				a = netip.AddrFrom4([4]byte{198, 51, 100, byte(rng.IntN(256))})
			} else {
				a = netip.MustParseAddr("2001:db8:ffff::1")
			}
		}
		dsts = append(dsts, a)
	}
	// Wait until the mirror holds what the kernel holds.
	if got, want := waitRoutes(t, m, h); !slices.Equal(got, want) {
		t.Fatalf("route mirror differs from the kernel's tables (-want +got):\n%s", lineDiff(want, got))
	}
	f := RouteFilter{Exclude: []string{"rgx"}}
	ours := make([]string, len(dsts))
	through := 0
	for i, dst := range dsts {
		ours[i] = pickName(m.Route(dst, f))
		if l, err := m.Route(dst, RouteFilter{}); err == nil && l.Index == excluded {
			through++
		}
	}
	// Without the exclusion, some destinations go through rgx: the
	// exclusion is what the kernel's answers below have to agree with.
	if through == 0 {
		t.Fatalf("no destination routes through rgx: the test proves nothing of exclusion")
	}

	// Take the excluded link's routes out of the kernel, and ask it.
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.LinkIndex == excluded && r.Protocol != unix.RTPROT_KERNEL {
			if err := h.RouteDel(&r); err != nil {
				t.Fatalf("failed to delete %v: %v", r, err)
			}
		}
	}
	disagree := 0
	for i, dst := range dsts {
		kernel := "error"
		rs, err := h.RouteGet(dst.AsSlice())
		if err == nil && len(rs) > 0 {
			kernel = links[0].Attrs().Name
			for _, l := range links {
				if l.Attrs().Index == rs[0].LinkIndex {
					kernel = l.Attrs().Name
				}
			}
			if rs[0].LinkIndex == 1 { // lo: an IPv6 blackhole or unreachable route
				kernel = "error"
			}
		}
		if ours[i] != kernel {
			disagree++
			t.Errorf("route to %v: Route says %s, the kernel %s (%v)", dst, ours[i], kernel, err)
		}
	}
	seen := map[string]int{}
	for _, o := range ours {
		seen[o]++
	}
	t.Logf("%d destinations, %d routes, %d disagreements; answers: %v", len(dsts), len(routes), disagree, seen)
	if seen["rgx"] != 0 || seen["rg2"] == 0 || seen["error"] == 0 {
		t.Errorf("answers %v: want none through rgx, some through rg2 (no carrier) and some errors", seen)
	}

}

// pickName names what Route returned: a link's name, or "error" for
// ErrNoRoute.
func pickName(l Link, err error) string {
	if errors.Is(err, ErrNoRoute) {
		return "error"
	}
	if err != nil {
		return err.Error()
	}
	return l.Name
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// TestRouteNexthopObjects routes through nexthop objects (`ip nexthop`,
// Linux 5.3), whose changes move routes without route events of their own:
// the monitor lists the routes again on a nexthop event, and a group takes
// its first member.
func TestRouteNexthopObjects(t *testing.T) {
	ns, h := linkNS(t)
	var idx []int
	for i, name := range []string{"nh0", "nh1"} {
		l := addVeth(t, h, name, name+"p", 0)
		if err := h.LinkSetUp(mustLink(t, h, name+"p")); err != nil {
			t.Fatal(err)
		}
		addr, _ := netlink.ParseAddr(fmt.Sprintf("100.64.%d.1/24", i))
		if err := h.AddrAdd(l, addr); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		idx = append(idx, l.Attrs().Index)
	}
	m := monitorIn(t, ns, monitorConfig{})
	ip := func(args ...string) {
		t.Helper()
		err := ns.Do(func() error {
			out, err := exec.Command("ip", args...).CombinedOutput()
			if err != nil {
				return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	def := m.DefaultRoute(RouteFilter{})
	want := func(index int) {
		t.Helper()
		settle(t, m, fmt.Sprintf("the default route through index %d", index), func(s *snapshot) bool {
			e, err := s.defaultLink(def.(*defaultRoute).rs, false)
			if index == 0 {
				return errors.Is(err, ErrNoRoute)
			}
			return err == nil && e.link.Index == index
		})
	}
	ip("nexthop", "add", "id", "1", "via", "100.64.0.2", "dev", "nh0")
	ip("route", "add", "default", "nhid", "1")
	want(idx[0])
	ip("nexthop", "replace", "id", "1", "via", "100.64.1.2", "dev", "nh1")
	want(idx[1])
	ip("nexthop", "del", "id", "1")
	want(0)
	ip("nexthop", "add", "id", "2", "via", "100.64.1.2", "dev", "nh1")
	ip("nexthop", "add", "id", "3", "via", "100.64.0.2", "dev", "nh0")
	ip("nexthop", "add", "id", "4", "group", "2/3")
	ip("route", "add", "default", "nhid", "4")
	want(idx[1])
	ip("link", "set", "nh1", "down")
	want(idx[0])
	if got, want := waitRoutes(t, m, h); !slices.Equal(got, want) {
		t.Fatalf("route mirror differs from the kernel's tables (-want +got):\n%s", lineDiff(want, got))
	}
}
