//go:build linux

package testnet

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/vishvananda/netlink"
)

// NewTenants builds a Topo whose client NICs are not in the test's
// namespace: each side has a namespace of its own (Side.Client) holding a
// NIC called eth0, wired by veth to the side's peer, which has an eth0 too.
// Both client NICs carry the client addresses and both peers the peer
// addresses, as in New; the two eth0 of the clients have different
// indexes (side b's namespace holds a veth pair made first, pad0 and
// pad1). It is what
// a test of sockets made in another namespace needs: two tenants, each
// with an eth0 and a peer behind it. It is torn down when t ends.
func NewTenants(t testing.TB) *Topo {
	t.Helper()
	Require(t)
	CheckLeaks(t)
	tp := &Topo{}
	tp.build(t, "tenant", func(name string, _ int) (*Side, error) {
		client := NewNS(t)
		s := &Side{Name: name, LinkName: "eth0", Client: client}
		h, err := client.Handle()
		if err != nil {
			return nil, err
		}
		defer h.Close()
		if name == "b" {
			pad := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "pad0"}, PeerName: "pad1"}
			if err := h.LinkAdd(pad); err != nil {
				return nil, fmt.Errorf("failed to add a padding link: %v", err)
			}
		}
		return s, s.wire(t, h, clientPrefixes, peerPrefixes)
	})
	return tp
}

// Path returns a path that names ns while it lives, /proc/self/fd/N, for
// APIs that take a namespace by path.
func (ns *NS) Path() string { return "/proc/self/fd/" + strconv.Itoa(ns.fd) }
