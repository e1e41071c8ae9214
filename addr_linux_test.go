package ifbind

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// hasAddr returns a condition that holds once the table has addr on index,
// or, with want false, once it does not.
func hasAddr(index int, addr string, want bool) func(*snapshot) bool {
	a := netip.MustParseAddr(addr)
	return func(s *snapshot) bool {
		return slices.ContainsFunc(s.addrs[index], func(x ifAddr) bool { return x.addr == a }) == want
	}
}

func addAddr(t *testing.T, h *netlink.Handle, l netlink.Link, cidr string) *netlink.Addr {
	t.Helper()
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	a.Flags = unix.IFA_F_NODAD
	if err := h.AddrAdd(l, a); err != nil {
		t.Fatalf("failed to add %s to %s: %v", cidr, l.Attrs().Name, err)
	}
	return a
}

// TestMonitorAddresses proves that the monitor's address table follows the
// kernel, and that usability reads it: an uplink is usable for a family only
// while its link has an address of that family it can send from (for IPv6,
// not link-local), and only while it is up with carrier.
func TestMonitorAddresses(t *testing.T) {
	ns, h := linkNS(t)
	l := addVeth(t, h, "up0", "up0p", 0)
	m := monitorIn(t, ns, monitorConfig{})
	idx := l.Attrs().Index
	b := m.Follow("up0")
	v4, v6 := need{v4: true}, need{v6: true}

	check := func(stage string, n need, want error) {
		t.Helper()
		_, err := usable(b, n)
		if !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("%s: usable(%+v) = %v, want %v", stage, n, err, want)
		}
	}
	check("down", v4, errLinkDown)
	if err := h.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	settle(t, m, "up0 up", func(s *snapshot) bool { return s.byIndex[idx].link.Flags&net.FlagUp != 0 })
	check("up, peer down", v4, errNoCarrier)
	p, err := h.LinkByName("up0p")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(p); err != nil {
		t.Fatal(err)
	}
	settle(t, m, "up0 running", func(s *snapshot) bool { return s.byIndex[idx].link.Up() })
	check("no address", v4, errNoIPv4)
	check("no address", v4, syscall.EADDRNOTAVAIL)
	check("no address", v6, errNoIPv6)
	check("no address", need{v4: true, v6: true}, errNoAddress)

	addAddr(t, h, l, "fe80::99/64")
	settle(t, m, "a link-local address", hasAddr(idx, "fe80::99", true))
	check("link-local only", v6, errNoIPv6)
	check("link-local only, to link-local", need{v6: true, linkLocal: true}, nil)

	a4 := addAddr(t, h, l, "198.51.100.1/24")
	addAddr(t, h, l, "2001:db8:5::1/64")
	settle(t, m, "both addresses", func(s *snapshot) bool {
		return hasAddr(idx, "198.51.100.1", true)(s) && hasAddr(idx, "2001:db8:5::1", true)(s)
	})
	check("addresses", v4, nil)
	check("addresses", v6, nil)

	if err := h.AddrDel(l, a4); err != nil {
		t.Fatal(err)
	}
	settle(t, m, "the IPv4 address gone", hasAddr(idx, "198.51.100.1", false))
	check("IPv4 address deleted", v4, errNoIPv4)
	check("IPv4 address deleted", need{v4: true, v6: true}, nil)

	delLink(t, h, "up0")
	settle(t, m, "up0 gone", lacksName("up0"))
	if got := m.load().addrs[idx]; got != nil {
		t.Errorf("addresses of the deleted link still in the table: %v", got)
	}
	check("deleted", v4, syscall.ENODEV)
}

// TestMonitorResyncsAddresses makes the kernel drop address events: the
// monitor must list the addresses again, and agree with a dump.
func TestMonitorResyncsAddresses(t *testing.T) {
	ns, h := linkNS(t)
	l := addVeth(t, h, "many0", "many0p", 0)
	pause := make(chan struct{})
	m := monitorIn(t, ns, monitorConfig{rcvbuf: 1, pause: pause})
	var gone []*netlink.Addr
	for i := range 200 {
		a := addAddr(t, h, l, fmt.Sprintf("10.9.%d.%d/32", i/200, i%200+1))
		if i%3 == 0 {
			gone = append(gone, a)
		}
	}
	for _, a := range gone {
		if err := h.AddrDel(l, a); err != nil {
			t.Fatal(err)
		}
	}
	close(pause)
	addAddr(t, h, l, "10.8.0.1/32")
	settle(t, m, "the marker address", hasAddr(l.Attrs().Index, "10.8.0.1", true))
	if m.resyncs.Load() == 0 {
		t.Fatalf("monitor never saw ENOBUFS")
	}
	list, err := h.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int][]string{}
	for _, a := range list {
		want[a.LinkIndex] = append(want[a.LinkIndex], a.IPNet.String())
	}
	got := map[int][]string{}
	for index, addrs := range m.load().addrs {
		for _, a := range addrs {
			got[index] = append(got[index], netip.PrefixFrom(a.addr, a.bits).String())
		}
	}
	for index := range want {
		slices.Sort(want[index])
		slices.Sort(got[index])
		if !slices.Equal(want[index], got[index]) {
			t.Errorf("link %d: table has %d addresses, dump %d (-want +got):\n%v\n%v", index, len(got[index]), len(want[index]), want[index], got[index])
		}
	}
	if len(got) != len(want) {
		t.Errorf("table has addresses of %d links, dump of %d", len(got), len(want))
	}
}
