//go:build linux

package testnet

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The addresses every peer of a routed Topo carries on its lo, beyond its
// uplink: the one remote host that both uplinks reach, as in a multi-WAN
// setup, so that only the client's routes or bindings decide which peer a
// packet reaches.
var (
	RemoteV4 = netip.MustParseAddr("203.0.113.1")
	RemoteV6 = netip.MustParseAddr("2001:db8:ff::1")
)

// NewRouted builds a Topo whose client is a namespace of its own (tp.Client)
// with two uplinks, A and B, each a veth to a peer namespace that acts as
// its router. Uplink A is on 198.18.1.0/24 and 2001:db8:1::/64, B on
// 198.18.2.0/24 and 2001:db8:2::/64; the client is .2 (::2) and the router
// .1 (::1), which Side.Gateway4 and Side.Gateway6 hold. Both routers carry
// RemoteV4 and RemoteV6. The client has no default route: tests add the ones
// they need (Side.Route). Everything is torn down when t ends.
//
// The servers of ServeNames answer on the remote addresses too. Make the
// client's sockets inside tp.Client (tp.Client.Do).
func NewRouted(t testing.TB) *Topo {
	t.Helper()
	Require(t)
	CheckLeaks(t)
	tp := &Topo{Client: NewNS(t)}
	h, err := tp.Client.Handle()
	if err != nil {
		t.Fatalf("failed to open netlink in the client: %v", err)
	}
	defer h.Close()
	for i, name := range []string{"a", "b"} {
		s, err := newRoutedSide(t, h, name, i+1)
		if err != nil {
			t.Fatalf("failed to build uplink %s: %v", name, err)
		}
		if name == "a" {
			tp.A = s
		} else {
			tp.B = s
		}
	}
	return tp
}

func newRoutedSide(t testing.TB, h *netlink.Handle, name string, n int) (*Side, error) {
	ns := NewNS(t)
	s := &Side{Name: name, LinkName: "ifb-" + name, Peer: ns}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: s.LinkName},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(ns.fd),
	}
	if err := h.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("failed to add veth %s: %v", s.LinkName, err)
	}
	l, err := h.LinkByName(s.LinkName)
	if err != nil {
		return nil, err
	}
	s.Index = l.Attrs().Index
	v4 := func(host byte) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(n), host}) }
	v6 := func(host byte) netip.Addr {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(n), 14: 0, 15: host})
	}
	s.Gateway4, s.Gateway6 = v4(1), v6(1)
	if err := configureOn(h, s.LinkName, netip.PrefixFrom(v4(2), BitsV4), netip.PrefixFrom(v6(2), BitsV6)); err != nil {
		return nil, fmt.Errorf("client side: %v", err)
	}
	ph, err := ns.Handle()
	if err != nil {
		return nil, err
	}
	defer ph.Close()
	if err := configureOn(ph, "eth0", netip.PrefixFrom(v4(1), BitsV4), netip.PrefixFrom(v6(1), BitsV6)); err != nil {
		return nil, fmt.Errorf("peer side: %v", err)
	}
	lo, err := ph.LinkByName("lo")
	if err != nil {
		return nil, err
	}
	for _, a := range []netip.Addr{RemoteV4, RemoteV6} {
		if err := ph.AddrAdd(lo, &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(a, a.BitLen())), Flags: unix.IFA_F_NODAD}); err != nil {
			return nil, fmt.Errorf("failed to add %v to the peer's lo: %v", a, err)
		}
	}
	pl, err := ph.LinkByName("eth0")
	if err != nil {
		return nil, err
	}
	s.PeerIndex = pl.Attrs().Index
	return s, nil
}

// configureOn gives the link the prefixes, without duplicate address
// detection, and brings it up.
func configureOn(h *netlink.Handle, link string, prefixes ...netip.Prefix) error {
	l, err := h.LinkByName(link)
	if err != nil {
		return err
	}
	for _, p := range prefixes {
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: prefixNet(p), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("failed to add %v to %s: %v", p, link, err)
		}
	}
	return h.LinkSetUp(l)
}

// Handle opens a netlink handle inside ns, or in the calling thread's
// namespace when ns is nil. Close it when done.
func (ns *NS) Handle() (*netlink.Handle, error) {
	if ns == nil {
		return netlink.NewHandle()
	}
	return netlink.NewHandleAt(netns.NsHandle(ns.fd))
}

// PeerPackets returns the packets the peer's end of s received and sent,
// as the kernel counts them: the proof that nothing went through s.
func (s *Side) PeerPackets(t testing.TB) (rx, tx uint64) {
	t.Helper()
	h, err := s.Peer.Handle()
	if err != nil {
		t.Fatalf("failed to open netlink in peer %s: %v", s.Name, err)
	}
	defer h.Close()
	l, err := h.LinkByIndex(s.PeerIndex)
	if err != nil {
		t.Fatalf("failed to read the counters of peer %s: %v", s.Name, err)
	}
	st := l.Attrs().Statistics
	return st.RxPackets, st.TxPackets
}
