package ifbind

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestRouteMirrorMixed6 makes 300 random changes to IPv6 routes of two
// prefixes and, mostly, one metric (the others of a lower one), mixing routes through a gateway (which the
// kernel groups into a multipath route), routes without one, and
// blackhole and unreachable routes, by add, append, replace and delete.
// After each, the monitor's mirror must settle where the kernel's fib is,
// in the kernel's order, as /proc/net/ipv6_route shows it (the netlink dump
// leaves out some of these routes), and it must get there from the events
// alone.
func TestRouteMirrorMixed6(t *testing.T) {
	ns, h := linkNS(t)
	var links []netlink.Link
	for i := range 2 {
		l := addVeth(t, h, fmt.Sprintf("rm%d", i), fmt.Sprintf("rm%dp", i), 0)
		if err := h.LinkSetUp(mustLink(t, h, fmt.Sprintf("rm%dp", i))); err != nil {
			t.Fatal(err)
		}
		addr6, _ := netlink.ParseAddr(fmt.Sprintf("fd00:%d::1/64", i))
		addr6.Flags = unix.IFA_F_NODAD
		if err := h.AddrAdd(l, addr6); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		links = append(links, l)
	}
	m := monitorIn(t, ns, monitorConfig{})
	if got, want := waitRoutes(t, m, h); !slices.Equal(got, want) {
		t.Fatalf("route mirror differs from the kernel's tables at the start (-want +got):\n%s", lineDiff(want, got))
	}
	rng := rand.New(rand.NewPCG(6, 18))
	randRoute := func() *netlink.Route {
		r := &netlink.Route{
			Dst:      &net.IPNet{IP: net.ParseIP(fmt.Sprintf("2001:db8:%x::", rng.IntN(2))), Mask: net.CIDRMask(48, 128)},
			Priority: []int{1024, 1024, 1024, 512}[rng.IntN(4)],
		}
		i := rng.IntN(len(links))
		switch k := rng.IntN(8); {
		case k == 0:
			r.Type = unix.RTN_BLACKHOLE
		case k == 1:
			r.Type = unix.RTN_UNREACHABLE
		case k <= 4:
			r.LinkIndex = links[i].Attrs().Index
			r.Gw = net.ParseIP(fmt.Sprintf("fd00:%d::%x", i, 2+rng.IntN(3)))
		default:
			r.LinkIndex = links[i].Attrs().Index
		}
		return r
	}
	linkName := func(index int) string {
		for _, l := range links {
			if l.Attrs().Index == index {
				return l.Attrs().Name
			}
		}
		return fmt.Sprint(index)
	}
	show := func(r *netlink.Route) string {
		s := r.Dst.String()
		switch {
		case r.Type == unix.RTN_BLACKHOLE:
			return "blackhole " + s
		case r.Type == unix.RTN_UNREACHABLE:
			return "unreachable " + s
		case r.Gw != nil:
			s += " via " + r.Gw.String()
		}
		return s + " dev " + linkName(r.LinkIndex) + fmt.Sprintf(" metric %d", r.Priority)
	}
	procLine := func(r *netlink.Route) string {
		nh := "reject"
		if r.Type != unix.RTN_BLACKHOLE && r.Type != unix.RTN_UNREACHABLE {
			nh = "dev " + linkName(r.LinkIndex)
			if r.Gw != nil {
				nh += " via " + r.Gw.String()
			}
		}
		return fmt.Sprintf("%v metric %d %s", r.Dst, r.Priority, nh)
	}
	var done []string
	for range 300 {
		r := randRoute()
		var err error
		op := []string{"add", "append", "replace", "del"}[rng.IntN(4)]
		if (op == "add" || op == "append") && r.Gw == nil && slices.Contains(proc6Lines(t, ns), procLine(r)) {
			// The kernel keeps a second copy of such a route; the
			// mirror holds one (see the README).
			continue
		}
		switch op {
		case "add":
			err = h.RouteAdd(r)
		case "append":
			err = h.RouteAppend(r)
		case "replace":
			err = h.RouteReplace(r)
		default:
			err = h.RouteDel(r)
		}
		if err != nil {
			continue
		}
		done = append(done, "ip -6 route "+op+" "+show(r))
		if got, want := waitProc6(t, m, ns); !slices.Equal(got, want) {
			t.Fatalf("route mirror differs from the kernel's fib after:\n%s\nkernel:\n%s\nmirror:\n%s", strings.Join(done, "\n"), strings.Join(want, "\n"), strings.Join(got, "\n"))
		}
	}
	if n, d := m.resyncs.Load(), m.routeDumps.Load(); n != 0 || d != 0 {
		t.Fatalf("the monitor listed the routes again (%d resyncs, %d route dumps): the test proves nothing of its events", n, d)
	}
	t.Logf("%d changes", len(done))
}

// proc6Lines renders the IPv6 routes of 2001:db8::/47 as the kernel's fib
// holds them, by prefix and then in the kernel's order, from
// /proc/net/ipv6_route: the netlink dump skips the routes the kernel keeps
// between the first and the last route of a multipath route.
func proc6Lines(t testing.TB, ns *testnet.NS) []string {
	t.Helper()
	var data []byte
	if err := ns.Do(func() (err error) {
		data, err = os.ReadFile("/proc/thread-self/net/ipv6_route")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range strings.Lines(string(data)) {
		f := strings.Fields(l)
		if len(f) != 10 || !strings.HasPrefix(f[0], "20010db8000") {
			continue
		}
		dst, _ := hex.DecodeString(f[0])
		bits, _ := strconv.ParseUint(f[1], 16, 8)
		gwb, _ := hex.DecodeString(f[4])
		metric, _ := strconv.ParseUint(f[5], 16, 32)
		flags, _ := strconv.ParseUint(f[8], 16, 32)
		pfx := netip.PrefixFrom(netip.AddrFrom16([16]byte(dst)), int(bits))
		nh := "reject"
		if flags&unix.RTF_REJECT == 0 {
			nh = "dev " + f[9]
			if flags&unix.RTF_GATEWAY != 0 {
				nh += " via " + netip.AddrFrom16([16]byte(gwb)).String()
			}
		}
		lines = append(lines, fmt.Sprintf("%v metric %d %s", pfx, metric, nh))
	}
	slices.SortStableFunc(lines, func(a, b string) int { return strings.Compare(strings.Fields(a)[0], strings.Fields(b)[0]) })
	return lines
}

// mirror6Lines renders the routes of 2001:db8::/47 in s as proc6Lines does.
func mirror6Lines(s *snapshot) []string {
	var lines []string
	t := s.routes.tables[tableMain]
	if t == nil {
		return nil
	}
	for pfx, entries := range t.All() {
		if !netip.MustParsePrefix("2001:db8::/47").Overlaps(pfx) || pfx.Bits() < 47 {
			continue
		}
		for _, r := range entries {
			for _, one := range r.split() {
				nh := "reject"
				if !one.refuses() && len(one.nh) > 0 {
					nh = "dev " + s.byIndex[int(one.nh[0].index)].link.Name
					if one.nh[0].gw.IsValid() {
						nh += " via " + one.nh[0].gw.String()
					}
				}
				lines = append(lines, fmt.Sprintf("%v metric %d %s", pfx, r.metric, nh))
			}
		}
	}
	slices.SortStableFunc(lines, func(a, b string) int { return strings.Compare(strings.Fields(a)[0], strings.Fields(b)[0]) })
	return lines
}

// waitProc6 waits, a few seconds at most, until m's mirror of 2001:db8::/47
// is what the kernel holds, and returns both as they rendered last.
func waitProc6(t testing.TB, m *Monitor, ns *testnet.NS) (got, want []string) {
	t.Helper()
	deadline := time.After(3 * time.Second)
	for {
		s := m.load()
		want = proc6Lines(t, ns)
		got = mirror6Lines(s)
		if slices.Equal(got, want) || s.err != nil {
			return got, want
		}
		select {
		case <-s.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			return got, want
		}
	}
}
