package ifbind

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// A routed is a client namespace with two uplinks (testnet.NewRouted), the
// peers' servers, a capture on each peer's end, and a Monitor in the client.
type routed struct {
	tp   *testnet.Topo
	h    *netlink.Handle // in the client
	m    *Monitor
	caps map[string]*testnet.Capture // by side
}

func newRouted(t *testing.T) *routed {
	t.Helper()
	tp := testnet.NewRouted(t)
	tp.ServeNames(t)
	h, err := tp.Client.Handle()
	if err != nil {
		t.Fatalf("failed to open netlink in the client: %v", err)
	}
	t.Cleanup(h.Close)
	r := &routed{tp: tp, h: h, m: monitorIn(t, tp.Client, monitorConfig{}), caps: map[string]*testnet.Capture{}}
	for _, s := range tp.Sides() {
		r.caps[s.Name] = s.Capture(t)
	}
	tp.WaitReady(t)
	return r
}

// gateway returns the router of s in the family of v6.
func gateway(s *testnet.Side, v6 bool) net.IP {
	if v6 {
		return s.Gateway6.AsSlice()
	}
	return s.Gateway4.AsSlice()
}

func defaultVia(s *testnet.Side, v6 bool, metric, table int) *netlink.Route {
	r := &netlink.Route{LinkIndex: s.Index, Gw: gateway(s, v6), Priority: metric, Table: table, Family: unix.AF_INET}
	if v6 {
		r.Family = unix.AF_INET6
	}
	return r
}

// addDefaults adds a default route of both families through s.
func (r *routed) addDefaults(t *testing.T, s *testnet.Side, metric int) {
	t.Helper()
	for _, v6 := range []bool{false, true} {
		if err := r.h.RouteAdd(defaultVia(s, v6, metric, 0)); err != nil {
			t.Fatalf("failed to add a default route via %s, metric %d: %v", s.LinkName, metric, err)
		}
	}
}

func (r *routed) delDefaults(t *testing.T, s *testnet.Side, metric int) {
	t.Helper()
	for _, v6 := range []bool{false, true} {
		if err := r.h.RouteDel(defaultVia(s, v6, metric, 0)); err != nil {
			t.Fatalf("failed to delete the default route via %s, metric %d: %v", s.LinkName, metric, err)
		}
	}
}

// waitDefault waits until b, in m's table, binds sockets of both families
// to want (nil: to none), so that the next socket sees what the kernel did.
func (r *routed) waitDefault(t *testing.T, b Binding, want *testnet.Side) {
	t.Helper()
	settle(t, r.m, "the default route move to "+sideName(want), func(s *snapshot) bool {
		for _, network := range []string{"tcp4", "tcp6"} {
			tg, err := b.target(sockInfo{network: network})
			if want == nil {
				if !errors.Is(err, ErrNoRoute) {
					return false
				}
				continue
			}
			if err != nil || tg.index != want.Index {
				return false
			}
		}
		return true
	})
}

func sideName(s *testnet.Side) string {
	if s == nil {
		return "nowhere"
	}
	return s.LinkName
}

// ask dials the remote host over TCP in the client through b, asks who
// answers, and checks that the other uplink's peer saw no packet to the
// remote meanwhile. (The peers' UDP servers answer from their uplink
// address, not the remote's, so UDP is checked by binding alone.)
func (r *routed) ask(t *testing.T, b Binding, network string, want *testnet.Side) net.Conn {
	t.Helper()
	dst := testnet.RemoteV4
	if network == "tcp6" {
		dst = testnet.RemoteV6
	}
	other := r.tp.A
	if want == r.tp.A {
		other = r.tp.B
	}
	before := r.caps[other.Name].Count(testnet.SYNTo(dst))
	var c net.Conn
	err := r.tp.Client.Do(func() (err error) {
		d := &Dialer{Binding: b}
		d.Timeout = 5 * time.Second
		c, err = d.Dial(network, net.JoinHostPort(dst.String(), strconv.Itoa(testnet.Port)))
		return err
	})
	if err != nil {
		t.Fatalf("%s dial through %v: %v", network, b, err)
	}
	t.Cleanup(func() { c.Close() })
	if got := boundIndexOf(t, c.(syscall.Conn)); got != want.Index {
		t.Errorf("%s socket bound to index %d, want %d (%s)", network, got, want.Index, want.LinkName)
	}
	if name, err := testnet.Ask(c); err != nil || name != want.Name {
		t.Errorf("%s through %v: answered by %q (%v), want %q", network, b, name, err, want.Name)
	}
	if n := r.caps[other.Name].Count(testnet.SYNTo(dst)) - before; n != 0 {
		t.Errorf("%s through %v: %d connection attempts to %v crossed uplink %s, want 0", network, b, n, dst, other.LinkName)
	}
	return c
}

// TestDefaultRouteFollows moves the default routes of both families between
// two uplinks in every way a network changes (a route deleted, a metric
// changed, a link taken down, a carrier lost) and checks that each new
// socket follows at once, while one made before stays bound where it was.
func TestDefaultRouteFollows(t *testing.T) {
	r := newRouted(t)
	a, b := r.tp.A, r.tp.B
	def := r.m.DefaultRoute(RouteFilter{})
	check := func(want *testnet.Side) {
		t.Helper()
		r.waitDefault(t, def, want)
		r.ask(t, def, "tcp4", want)
		r.ask(t, def, "tcp6", want)
	}
	r.addDefaults(t, a, 100)
	r.addDefaults(t, b, 200)
	check(a)
	old := r.ask(t, def, "tcp4", a) // stays on a whatever happens next

	t.Log("delete a's default")
	r.delDefaults(t, a, 100)
	check(b)

	t.Log("a comes back with a lower metric")
	r.addDefaults(t, a, 50)
	check(a)

	t.Log("b's metric drops below a's, then rises again")
	r.addDefaults(t, b, 10)
	r.delDefaults(t, b, 200)
	check(b)
	r.addDefaults(t, b, 200)
	r.delDefaults(t, b, 10)
	check(a)

	t.Log("a goes down, and the kernel drops its IPv4 routes without a word")
	la := mustLink(t, r.h, a.LinkName)
	if err := r.h.LinkSetDown(la); err != nil {
		t.Fatal(err)
	}
	check(b)
	if err := r.h.LinkSetUp(la); err != nil {
		t.Fatal(err)
	}
	settle(t, r.m, a.LinkName+" up", func(s *snapshot) bool { e := s.byIndex[a.Index]; return e != nil && e.link.Up() })
	// The kernel has no default route through a now: the mirror must
	// not bring the one it had back.
	check(b)
	// The IPv6 address went with the link; put it back, then the routes.
	addr6 := &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("2001:db8:1::2"), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
	if err := r.h.AddrReplace(la, addr6); err != nil {
		t.Fatal(err)
	}
	r.addDefaults(t, a, 50)
	check(a)

	t.Log("a's carrier is lost: its peer's end goes down")
	ph, err := a.Peer.Handle()
	if err != nil {
		t.Fatal(err)
	}
	defer ph.Close()
	peer := mustLink(t, ph, "eth0")
	if err := ph.LinkSetDown(peer); err != nil {
		t.Fatal(err)
	}
	check(b)
	if err := ph.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}
	peer6 := &netlink.Addr{IPNet: &net.IPNet{IP: a.Gateway6.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
	if err := ph.AddrReplace(peer, peer6); err != nil {
		t.Fatal(err)
	}
	r.tp.WaitReady(t)
	check(a)

	t.Log("b's defaults go: a alone is left, then nothing")
	r.delDefaults(t, b, 200)
	check(a)
	r.delDefaults(t, a, 50)
	r.waitDefault(t, def, nil)

	if got := boundIndexOf(t, old.(syscall.Conn)); got != a.Index {
		t.Errorf("the first socket is now bound to index %d, want %d: a binding must not move a socket", got, a.Index)
	}
}

// TestDefaultRoutePerFamily puts the IPv4 default on one uplink and the
// IPv6 default on the other: each socket follows its own family, a
// dual-stack listener the IPv6 default, and Link says they differ.
func TestDefaultRoutePerFamily(t *testing.T) {
	r := newRouted(t)
	a, b := r.tp.A, r.tp.B
	if err := r.h.RouteAdd(defaultVia(a, false, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if err := r.h.RouteAdd(defaultVia(b, true, 0, 0)); err != nil {
		t.Fatal(err)
	}
	def := r.m.DefaultRoute(RouteFilter{})
	settle(t, r.m, "both defaults", func(s *snapshot) bool {
		e4, err4 := s.defaultLink(def.(*defaultRoute).rs, false)
		e6, err6 := s.defaultLink(def.(*defaultRoute).rs, true)
		return err4 == nil && err6 == nil && e4.link.Index == a.Index && e6.link.Index == b.Index
	})
	r.ask(t, def, "tcp4", a)
	r.ask(t, def, "tcp6", b)
	// Uplinks judge a route binding by the dial's own family, not by
	// Link, which fails while the families differ.
	for _, tc := range []struct {
		network string
		dst     netip.Addr
		want    *testnet.Side
	}{{"tcp4", testnet.RemoteV4, a}, {"tcp6", testnet.RemoteV6, b}} {
		for _, bd := range []Binding{def, r.m.RouteTo(RouteFilter{})} {
			var c net.Conn
			err := r.tp.Client.Do(func() (err error) {
				u := &Uplinks{Bindings: []Binding{bd}}
				u.Timeout = 5 * time.Second
				c, err = u.Dial(tc.network, net.JoinHostPort(tc.dst.String(), strconv.Itoa(testnet.Port)))
				return err
			})
			if err != nil {
				t.Errorf("Uplinks of %v, %s: %v", bd, tc.network, err)
				continue
			}
			if got := boundIndexOf(t, c.(syscall.Conn)); got != tc.want.Index {
				t.Errorf("Uplinks of %v, %s: bound to %d, want %d", bd, tc.network, got, tc.want.Index)
			}
			c.Close()
		}
	}
	for _, bd := range []Binding{def, r.m.RouteTo(RouteFilter{})} {
		if _, err := bd.Link(); !errors.Is(err, errFamiliesDiffer) {
			t.Errorf("%v: Link: got %v, want the families to differ", bd, err)
		}
		// A dual-stack listener is an IPv6 socket; RouteTo has no
		// destination for it and binds as DefaultRoute does.
		var ln net.Listener
		err := r.tp.Client.Do(func() (err error) {
			ln, err = (&ListenConfig{Binding: bd}).Listen(context.Background(), "tcp", ":0")
			return err
		})
		if err != nil {
			t.Fatalf("%v: listen: %v", bd, err)
		}
		if got := boundIndexOf(t, ln.(syscall.Conn)); got != b.Index {
			t.Errorf("%v: dual-stack listener bound to %d, want %d (the IPv6 default's)", bd, got, b.Index)
		}
		ln.Close()
	}
	// With one family agreeing alone, Link reports it.
	if err := r.h.RouteDel(defaultVia(b, true, 0, 0)); err != nil {
		t.Fatal(err)
	}
	settle(t, r.m, "no IPv6 default", func(s *snapshot) bool {
		_, err := s.defaultLink(def.(*defaultRoute).rs, true)
		return err != nil
	})
	if l, err := def.Link(); err != nil || l.Index != a.Index {
		t.Errorf("Link with an IPv4 default alone: got %v, %v, want %s", l, err, a.LinkName)
	}
}

// TestNoRoute: with no usable default route (none, or only blackhole and
// unreachable ones), every socket fails with ErrNoRoute before sending, and
// no packet crosses either uplink.
func TestNoRoute(t *testing.T) {
	r := newRouted(t)
	for _, rt := range []*netlink.Route{
		{Type: unix.RTN_BLACKHOLE, Family: unix.AF_INET, Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}},
		{Type: unix.RTN_UNREACHABLE, Family: unix.AF_INET6, Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}},
	} {
		if err := r.h.RouteAdd(rt); err != nil {
			t.Fatalf("failed to add %v: %v", rt, err)
		}
	}
	settle(t, r.m, "the blackhole", func(s *snapshot) bool {
		v, _ := s.routes.tables[tableMain].Get(defaultV4)
		return len(v) > 0
	})
	for _, b := range []Binding{r.m.DefaultRoute(RouteFilter{}), r.m.RouteTo(RouteFilter{})} {
		for _, network := range []string{"tcp4", "tcp6", "udp4", "udp6"} {
			dst := testnet.RemoteV4
			if network[3] == '6' {
				dst = testnet.RemoteV6
			}
			err := r.tp.Client.Do(func() error {
				c, err := (&Dialer{Binding: b}).Dial(network, net.JoinHostPort(dst.String(), "7007"))
				if err == nil {
					c.Close()
				}
				return err
			})
			var be *BindError
			if !errors.Is(err, ErrNoRoute) || !errors.Is(err, syscall.ENETUNREACH) || !errors.As(err, &be) {
				t.Errorf("%v, %s: got %v, want ErrNoRoute (ENETUNREACH) in a *BindError", b, network, err)
			}
		}
	}
	if _, err := r.m.Route(testnet.RemoteV4, RouteFilter{}); !errors.Is(err, ErrNoRoute) {
		t.Errorf("Route to %v: got %v, want ErrNoRoute", testnet.RemoteV4, err)
	}
	for _, s := range r.tp.Sides() {
		for _, dst := range []netip.Addr{testnet.RemoteV4, testnet.RemoteV6} {
			if n := r.caps[s.Name].Count(testnet.To(dst)); n != 0 {
				t.Errorf("%d packets to %v crossed uplink %s, want 0", n, dst, s.LinkName)
			}
		}
	}
}

// addTunnel makes a VPN's device, tun0, in the client, up: a real tun (kind
// "tun") where /dev/net/tun opens, which needs root outside the sandbox's
// user namespace; otherwise an ifb device (kind "ifb"), which also takes
// routes and swallows what is sent through it. It returns its index and
// kind.
func addTunnel(t *testing.T, r *routed) (int, string) {
	t.Helper()
	kind := "tun"
	err := r.tp.Client.Do(func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq("tun0")
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return err
		}
		t.Cleanup(func() { unix.Close(fd) }) // the tun has carrier while open
		return nil
	})
	if err != nil {
		t.Logf("no tun device (%v): an ifb device stands in for it", err)
		kind = "ifb"
		if err := r.h.LinkAdd(&netlink.Ifb{LinkAttrs: netlink.LinkAttrs{Name: "tun0"}}); err != nil {
			t.Fatalf("failed to add an ifb device: %v", err)
		}
	}
	l := mustLink(t, r.h, "tun0")
	if err := r.h.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Index, kind
}

// TestRouteExcludesTunnel plays a VPN client: its tun device installs a
// default route of lower metric than the uplink's, and a default route in
// table 2022 that an ip rule sends all traffic to, as sing-box does. Traffic
// left to the kernel goes into the tunnel; sockets bound through a route
// binding that excludes the tunnel (by kind, by name, by a function, made
// before the tunnel existed) go out the physical uplink, and the tunnel
// sees none of their packets.
func TestRouteExcludesTunnel(t *testing.T) {
	r := newRouted(t)
	a := r.tp.A
	r.addDefaults(t, a, 100)
	byName := r.m.DefaultRoute(RouteFilter{Exclude: []string{"tun0"}}) // before tun0 exists
	tunIndex, kind := addTunnel(t, r)
	tun := testnet.StartCapture(t, r.tp.Client, tunIndex)
	for _, v6 := range []bool{false, true} {
		family := unix.AF_INET
		if v6 {
			family = unix.AF_INET6
		}
		for _, rt := range []*netlink.Route{
			{LinkIndex: tunIndex, Priority: 10, Family: family, Dst: zeroNet(v6)},
			{LinkIndex: tunIndex, Table: 2022, Family: family, Dst: zeroNet(v6)},
		} {
			if err := r.h.RouteAdd(rt); err != nil {
				t.Fatalf("failed to add %v: %v", rt, err)
			}
		}
		rule := netlink.NewRule()
		rule.Family, rule.Table, rule.Priority = family, 2022, 100
		if err := r.h.RuleAdd(rule); err != nil {
			t.Fatalf("failed to add the rule to table 2022: %v", err)
		}
	}
	plain := r.m.DefaultRoute(RouteFilter{})
	settle(t, r.m, "the tunnel's default route", func(s *snapshot) bool {
		tg, err := plain.target(sockInfo{network: "tcp6"})
		return err == nil && tg.index == tunIndex
	})

	// Left to the kernel, and through a binding that excludes nothing,
	// connections go into the tunnel: the setup is what the test says.
	for _, network := range []string{"tcp4", "tcp6"} {
		dst := testnet.RemoteV4
		if network == "tcp6" {
			dst = testnet.RemoteV6
		}
		for _, d := range []*Dialer{{}, {Binding: plain}} {
			before := tun.Count(testnet.SYNTo(dst))
			r.tp.Client.Do(func() error {
				dd := d
				if dd.Binding == nil {
					// An unbound socket, as plain net would make.
					c, err := (&net.Dialer{Timeout: 200 * time.Millisecond}).Dial(network, net.JoinHostPort(dst.String(), "7007"))
					if err == nil {
						c.Close()
					}
					return nil
				}
				dd.Timeout = 200 * time.Millisecond
				c, err := dd.Dial(network, net.JoinHostPort(dst.String(), "7007"))
				if err == nil {
					c.Close()
				}
				return nil
			})
			waitSYN(t, tun, dst, before)
		}
	}

	filters := map[string]RouteFilter{
		"kind":  {ExcludeKinds: []string{kind}},
		"index": {Exclude: []string{strconv.Itoa(tunIndex)}},
		"skip":  {Skip: func(l Link) bool { return l.Name == "tun0" }},
	}
	bindings := map[string]Binding{"name (before it existed)": byName}
	for what, f := range filters {
		bindings[what] = r.m.DefaultRoute(f)
		bindings["route to, "+what] = r.m.RouteTo(f)
	}
	for what, b := range bindings {
		t.Run(what, func(t *testing.T) {
			for _, dst := range []netip.Addr{testnet.RemoteV4, testnet.RemoteV6} {
				before := tun.Count(testnet.To(dst))
				network := "tcp4"
				if dst.Is6() {
					network = "tcp6"
				}
				c := r.ask(t, b, network, a)
				c.Close()
				if n := tun.Count(testnet.To(dst)) - before; n != 0 {
					t.Errorf("%s through %v: %d packets to %v went into the tunnel, want 0", network, b, n, dst)
				}
			}
			if l, err := b.Link(); err != nil || l.Index != a.Index {
				t.Errorf("Link: got %v, %v, want %s", l, err, a.LinkName)
			}
		})
	}
	// The tunnel's own table, read as such, has nothing but the tunnel.
	if _, err := r.m.Route(testnet.RemoteV4, RouteFilter{Table: 2022, ExcludeKinds: []string{kind}}); !errors.Is(err, ErrNoRoute) {
		t.Errorf("Route in table 2022 without the tunnel: got %v, want ErrNoRoute", err)
	}
	if l, err := r.m.Route(testnet.RemoteV4, RouteFilter{Table: 2022}); err != nil || l.Index != tunIndex {
		t.Errorf("Route in table 2022: got %v, %v, want tun0", l, err)
	}
}

func zeroNet(v6 bool) *net.IPNet {
	if v6 {
		return &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	}
	return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
}

// waitSYN waits until c has seen a connection attempt to dst beyond before.
func waitSYN(t *testing.T, c *testnet.Capture, dst netip.Addr, before int) {
	t.Helper()
	for range 200 {
		if c.Count(testnet.SYNTo(dst)) > before {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no connection attempt to %v went into the tunnel: the setup does not divert traffic", dst)
}
