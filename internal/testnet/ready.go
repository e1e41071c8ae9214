//go:build linux

package testnet

import (
	"fmt"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// WaitReady waits until both ends of every veth of tp can carry packets:
// operationally up, and past the "noop" queueing discipline that a link has
// until the kernel's link watcher activates it, up to a second after it was
// brought up. Until then the kernel drops what is sent without a word,
// which a unicast exchange hides (ARP and neighbour discovery retry) but a
// single broadcast or multicast datagram does not.
func (tp *Topo) WaitReady(t testing.TB) {
	t.Helper()
	for _, s := range tp.Sides() {
		client := netlink.NewHandle
		switch {
		case s.Client != nil:
			client = func(...int) (*netlink.Handle, error) { return netlink.NewHandleAt(netns.NsHandle(s.Client.fd)) }
		case tp.Client != nil:
			client = func(...int) (*netlink.Handle, error) { return tp.Client.Handle() }
		}
		if err := waitReady(client, s.Index); err != nil {
			t.Fatalf("link %s never became ready: %v", s.LinkName, err)
		}
		peer := func(...int) (*netlink.Handle, error) { return netlink.NewHandleAt(netns.NsHandle(s.Peer.fd)) }
		if err := waitReady(peer, s.PeerIndex); err != nil {
			t.Fatalf("eth0 of peer %s never became ready: %v", s.Name, err)
		}
	}
}

func waitReady(handle func(...int) (*netlink.Handle, error), index int) error {
	h, err := handle()
	if err != nil {
		return err
	}
	defer h.Close()
	var state string
	for range 200 {
		l, err := h.LinkByIndex(index)
		if err != nil {
			return err
		}
		state = l.Attrs().OperState.String()
		if l.Attrs().OperState == netlink.OperUp {
			qs, err := h.QdiscList(l)
			if err != nil {
				return err
			}
			ready := len(qs) > 0
			for _, q := range qs {
				if q.Type() == "noop" {
					ready = false
				}
			}
			if ready {
				return nil
			}
			state += ", noop qdisc"
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("still %s after 5s", state)
}
