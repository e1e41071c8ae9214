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
	tp.build(t, "uplink", func(name string, i int) (*Side, error) {
		return newRoutedSide(t, h, name, i+1)
	})
	return tp
}

func newRoutedSide(t testing.TB, h *netlink.Handle, name string, n int) (*Side, error) {
	s := &Side{Name: name, LinkName: "ifb-" + name}
	v4 := func(host byte) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(n), host}) }
	v6 := func(host byte) netip.Addr {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(n), 14: 0, 15: host})
	}
	s.Gateway4, s.Gateway6 = v4(1), v6(1)
	prefixes := func(host byte) []netip.Prefix {
		return []netip.Prefix{netip.PrefixFrom(v4(host), BitsV4), netip.PrefixFrom(v6(host), BitsV6)}
	}
	if err := s.wire(t, h, prefixes(2), prefixes(1)); err != nil {
		return nil, err
	}
	ph, err := s.Peer.Handle()
	if err != nil {
		return nil, err
	}
	defer ph.Close()
	lo, err := ph.LinkByName("lo")
	if err != nil {
		return nil, err
	}
	for _, a := range []netip.Addr{RemoteV4, RemoteV6} {
		if err := ph.AddrAdd(lo, &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(a, a.BitLen())), Flags: unix.IFA_F_NODAD}); err != nil {
			return nil, fmt.Errorf("failed to add %v to the peer's lo: %v", a, err)
		}
	}
	return s, nil
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
