package ifbind

import (
	"context"
	"errors"
	"maps"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestResolverAsksItsOwnNIC(t *testing.T) {
	tp := testnet.New(t)
	dns := serveDNS(t, tp)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	servers := []struct {
		nameserver string
		from       netip.Addr // the client address the server sees
	}{
		{testnet.PeerV4.String(), testnet.ClientV4},
		{"[" + testnet.PeerV6.String() + "]:53", testnet.ClientV6},
	}
	const name = "who.ifbind.test"
	for _, s := range tp.Sides() {
		for _, srv := range servers {
			before := len(dns[s.Name].Queries(name))
			r, err := NewResolver(&Dialer{Index: s.Index}, srv.nameserver)
			if err != nil {
				t.Fatalf("failed to make a resolver on %s for %s: %v", s.LinkName, srv.nameserver, err)
			}
			got, err := r.LookupNetIP(ctx, "ip4", name)
			if err != nil {
				t.Fatalf("failed to look up %s on %s at %s: %v", name, s.LinkName, srv.nameserver, err)
			}
			if want := []netip.Addr{whoAddr(s.Name)}; !slices.Equal(got, want) {
				t.Errorf("%s on %s at %s: got %v, want %v (the answer of peer %s)", name, s.LinkName, srv.nameserver, got, want, s.Name)
			}
			qs := dns[s.Name].WaitQueries(name, before+1)[before:]
			if len(qs) != 1 || qs[0].Type != "A" || qs[0].From != srv.from.String() {
				t.Errorf("%s on %s at %s: DNS server of %s saw %+v, want one A query from %s", name, s.LinkName, srv.nameserver, s.Name, qs, srv.from)
			}
		}
	}
	// Each server saw the queries of its own side, and only those.
	for _, s := range tp.Sides() {
		if got := len(dns[s.Name].Queries(name)); got != len(servers) {
			t.Errorf("DNS server of %s saw %d queries for %s, want %d", s.Name, got, name, len(servers))
		}
	}
}

// TestResolverErrorNamesServer proves that a Dialer whose resolver NewResolver
// made names, in its DNS error, the nameserver it asked, where net.Resolver
// would name the one of /etc/resolv.conf.
func TestResolverErrorNamesServer(t *testing.T) {
	tp := testnet.New(t)
	dns := serveDNS(t, tp)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const name = "nosuch.ifbind.test" // the servers answer REFUSED
	for _, ns := range []string{testnet.PeerV4.String(), "[" + testnet.PeerV6.String() + "]:53"} {
		d := &Dialer{Index: tp.A.Index}
		r, err := NewResolver(d, ns)
		if err != nil {
			t.Fatalf("failed to make a resolver for %s: %v", ns, err)
		}
		d.Resolver = r
		c, err := d.DialContext(ctx, "tcp", name+":80")
		if err == nil {
			c.Close()
			t.Fatalf("dial %s: got a connection, want a DNS error", name)
		}
		want, _ := parseNameserver(ns, 0)
		var de *net.DNSError
		if !errors.As(err, &de) || de.Server != want.String() || de.Name != name {
			t.Errorf("dial %s with nameserver %s: got %v, want a *net.DNSError for %s on %s", name, ns, err, name, want)
		}
	}
	if qs := dns[tp.A.Name].Queries(name); len(qs) == 0 {
		t.Errorf("the DNS server of %s saw no query for %s", tp.A.Name, name)
	}
}

// TestResolverTCPFallback proves that the query a truncated UDP answer sends
// again over TCP leaves through the same NIC: the answer has 40 addresses,
// which only TCP carries (the servers cap UDP answers at 512 bytes).
func TestResolverTCPFallback(t *testing.T) {
	tp := testnet.New(t)
	dns := serveDNS(t, tp)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const name = "big.ifbind.test"
	for _, s := range tp.Sides() {
		// The Dialer's own hook runs on every query socket, after the
		// binding, which it reads back.
		var mu sync.Mutex
		bound := map[string]int{}
		d := &Dialer{Index: s.Index}
		d.Control = func(network, _ string, c syscall.RawConn) error {
			idx, err := readBound(c)
			mu.Lock()
			bound[network] = idx
			mu.Unlock()
			return err
		}
		r, err := NewResolver(d, testnet.PeerV4.String())
		if err != nil {
			t.Fatalf("failed to make a resolver on %s: %v", s.LinkName, err)
		}
		got, err := r.LookupNetIP(ctx, "ip4", name)
		if err != nil {
			t.Fatalf("failed to look up %s on %s: %v", name, s.LinkName, err)
		}
		slices.SortFunc(got, netip.Addr.Compare)
		var want []netip.Addr
		for i := 1; i <= 40; i++ {
			want = append(want, bigAddr(s.Name, i))
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s on %s: got %d addresses %v, want the 40 of peer %s", name, s.LinkName, len(got), got, s.Name)
		}
		mu.Lock()
		if want := map[string]int{"udp4": s.Index, "tcp4": s.Index}; !maps.Equal(bound, want) {
			t.Errorf("%s on %s: query sockets bound to %v, want %v", name, s.LinkName, bound, want)
		}
		mu.Unlock()
		if s == tp.A {
			if qs := dns[tp.B.Name].Queries(name); len(qs) != 0 {
				t.Errorf("%s on %s: DNS server of %s saw %+v, want none", name, s.LinkName, tp.B.Name, qs)
			}
		}
	}
	// Each server was asked twice, by its own side: over UDP, truncated,
	// then over TCP.
	for _, s := range tp.Sides() {
		if qs := dns[s.Name].WaitQueries(name, 2); len(qs) != 2 {
			t.Errorf("DNS server of %s saw %+v, want 2 queries (UDP, then TCP)", s.Name, qs)
		}
	}
}

// TestResolverUnboundDefault shows the documented default: a resolver that
// is not bound (as net.DefaultResolver is not) sends its queries by the
// route the routing table picks, whichever NIC the Dialer binds to, and gets
// the answer of that route's server.
func TestResolverUnboundDefault(t *testing.T) {
	tp := testnet.New(t)
	dns := serveDNS(t, tp)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	routes, err := netlink.RouteGet(testnet.PeerV4.AsSlice())
	if err != nil || len(routes) == 0 {
		t.Fatalf("failed to get the route to %v: %v", testnet.PeerV4, err)
	}
	var routed *testnet.Side
	for _, s := range tp.Sides() {
		if s.Index == routes[0].LinkIndex {
			routed = s
		}
	}
	if routed == nil {
		t.Fatalf("the route to %v leaves by link %d, not by a NIC of the topology", testnet.PeerV4, routes[0].LinkIndex)
	}
	bound := other(tp, routed) // the Dialer binds to the NIC the route does not take
	unbound := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer // what the default resolver does for nameserver 192.0.2.2
			return d.DialContext(ctx, network, net.JoinHostPort(testnet.PeerV4.String(), "53"))
		},
	}
	d := &Dialer{Index: bound.Index}
	d.Resolver = unbound
	const name = "who.ifbind.test"
	got, err := d.Resolver.LookupNetIP(ctx, "ip4", name)
	if err != nil {
		t.Fatalf("failed to look up %s: %v", name, err)
	}
	if want := []netip.Addr{whoAddr(routed.Name)}; !slices.Equal(got, want) {
		t.Errorf("unbound lookup of %s for a Dialer on %s: got %v, want %v, the answer of the routed peer %s", name, bound.LinkName, got, want, routed.Name)
	}
	if qs := dns[routed.Name].WaitQueries(name, 1); len(qs) != 1 {
		t.Errorf("DNS server of %s (the route's) saw %+v, want 1 query", routed.Name, qs)
	}
	if qs := dns[bound.Name].Queries(name); len(qs) != 0 {
		t.Errorf("DNS server of %s (the Dialer's) saw %+v, want none", bound.Name, qs)
	}
	// Bound, the same lookup asks the Dialer's own NIC.
	r, err := NewResolver(d, testnet.PeerV4.String())
	if err != nil {
		t.Fatalf("failed to make a resolver: %v", err)
	}
	got, err = r.LookupNetIP(ctx, "ip4", name)
	if want := []netip.Addr{whoAddr(bound.Name)}; err != nil || !slices.Equal(got, want) {
		t.Errorf("bound lookup of %s on %s: got %v, %v, want %v", name, bound.LinkName, got, err, want)
	}
}

// TestResolverFailover proves that a resolver moves on from a nameserver
// that fails, within the same lookup, to the next, and stays there for
// later lookups: one refuses the query (a dnsmasq that knows no name answers
// REFUSED), one does not listen (the port answers ICMP port unreachable).
func TestResolverFailover(t *testing.T) {
	tp := testnet.New(t)
	dns := serveDNS(t, tp)
	s := tp.B
	refusing := testnet.StartDNS(t, s.Peer, "", "--port=5354")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const name = "who.ifbind.test"
	peer := testnet.PeerV4.String()
	unreachs := icmpOutDestUnreachs(t, s.Peer)
	for _, c := range []struct {
		failing string
		saw     func() int // how often the failing server saw the query
	}{
		{net.JoinHostPort(peer, "5353"), func() int { return icmpOutDestUnreachs(t, s.Peer) - unreachs }},
		{net.JoinHostPort(peer, "5354"), func() int { return len(refusing.WaitQueries(name, 1)) }},
	} {
		before := len(dns[s.Name].Queries(name))
		r, err := NewResolver(&Dialer{Index: s.Index}, c.failing, peer)
		if err != nil {
			t.Fatalf("failed to make a resolver: %v", err)
		}
		for i := range 3 {
			got, err := r.LookupNetIP(ctx, "ip4", name)
			if want := []netip.Addr{whoAddr(s.Name)}; err != nil || !slices.Equal(got, want) {
				t.Fatalf("after %s, lookup %d: got %v, %v, want %v", c.failing, i, got, err, want)
			}
		}
		// The failing server was tried once: by the first lookup only.
		if got := c.saw(); got != 1 {
			t.Errorf("%s was asked %d times, want 1", c.failing, got)
		}
		if qs := dns[s.Name].WaitQueries(name, before+3); len(qs) != before+3 {
			t.Errorf("after %s: DNS server of %s saw %d queries, want 3", c.failing, s.Name, len(qs)-before)
		}
	}
	if qs := dns[other(tp, s).Name].Queries(name); len(qs) != 0 {
		t.Errorf("DNS server of %s saw %+v, want none", other(tp, s).Name, qs)
	}
}

// icmpOutDestUnreachs returns how many ICMP destination unreachables ns has
// sent.
func icmpOutDestUnreachs(t *testing.T, ns *testnet.NS) int {
	t.Helper()
	var b []byte
	if err := ns.Do(func() (err error) {
		b, err = os.ReadFile("/proc/thread-self/net/snmp")
		return err
	}); err != nil {
		t.Fatalf("failed to read the peer's ICMP counters: %v", err)
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Icmp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		if i := slices.Index(names, "OutDestUnreachs"); i > 0 && i < len(f) {
			n, err := strconv.Atoi(f[i])
			if err != nil {
				t.Fatalf("failed to parse the peer's ICMP counters: %v", err)
			}
			return n
		}
	}
	t.Fatalf("no Icmp OutDestUnreachs in the peer's /proc/net/snmp")
	return 0
}

// TestResolverLinkLocal proves that a link-local nameserver, given without a
// zone, is reached through the Dialer's interface: the peer's own fe80::
// address, which only that link carries.
func TestResolverLinkLocal(t *testing.T) {
	tp := testnet.New(t)
	dns := serveDNS(t, tp)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const name = "who.ifbind.test"
	for _, s := range tp.Sides() {
		ll := peerLinkLocal(t, s)
		r, err := NewResolver(&Dialer{Index: s.Index}, ll.String())
		if err != nil {
			t.Fatalf("failed to make a resolver for %v on %s: %v", ll, s.LinkName, err)
		}
		got, err := r.LookupNetIP(ctx, "ip4", name)
		if want := []netip.Addr{whoAddr(s.Name)}; err != nil || !slices.Equal(got, want) {
			t.Errorf("%s at %v on %s: got %v, %v, want %v", name, ll, s.LinkName, got, err, want)
		}
		// The source address is the kernel's choice: link-local, or
		// the global one while the client's is still tentative.
		if qs := dns[s.Name].WaitQueries(name, 1); len(qs) != 1 || !strings.Contains(qs[0].From, ":") {
			t.Errorf("DNS server of %s saw %+v, want one query over IPv6", s.Name, qs)
		}
	}
}

// peerLinkLocal returns the link-local address of the peer's eth0, once
// duplicate address detection is done with it.
func peerLinkLocal(t *testing.T, s *testnet.Side) netip.Addr {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var found netip.Addr
		err := s.Peer.Do(func() error {
			l, err := netlink.LinkByIndex(s.PeerIndex)
			if err != nil {
				return err
			}
			addrs, err := netlink.AddrList(l, netlink.FAMILY_V6)
			if err != nil {
				return err
			}
			for _, a := range addrs {
				ip, _ := netip.AddrFromSlice(a.IP)
				if ip.IsLinkLocalUnicast() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
					found = ip
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("failed to list the addresses of peer %s: %v", s.Name, err)
		}
		if found.IsValid() {
			return found
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("peer %s has no link-local address out of duplicate address detection", s.Name)
	return netip.Addr{}
}
