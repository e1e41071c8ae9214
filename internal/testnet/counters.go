//go:build linux

package testnet

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Counters are a link's packet counters, as the kernel keeps them
// (/sys/class/net/LINK/statistics).
type Counters struct {
	RxPackets, TxPackets uint64
	RxBytes, TxBytes     uint64
}

// Counters returns the counters of the link with the given index in ns.
// They count everything, neighbour discovery and router solicitations
// included: to count only a test's own packets, capture them.
func (ns *NS) Counters(index int) (Counters, error) {
	h, err := netlink.NewHandleAt(netns.NsHandle(ns.fd))
	if err != nil {
		return Counters{}, err
	}
	defer h.Close()
	l, err := h.LinkByIndex(index)
	if err != nil {
		return Counters{}, err
	}
	s := l.Attrs().Statistics
	if s == nil {
		return Counters{}, fmt.Errorf("link %d has no statistics", index)
	}
	return Counters{RxPackets: s.RxPackets, TxPackets: s.TxPackets, RxBytes: s.RxBytes, TxBytes: s.TxBytes}, nil
}
