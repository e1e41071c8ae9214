//go:build linux

package testnet

import (
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
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
	for _, name := range []string{"a", "b"} {
		s, err := newTenant(t, name)
		if err != nil {
			t.Fatalf("failed to build tenant %s: %v", name, err)
		}
		if name == "a" {
			tp.A = s
		} else {
			tp.B = s
		}
	}
	return tp
}

func newTenant(t testing.TB, name string) (*Side, error) {
	client, peer := NewNS(t), NewNS(t)
	s := &Side{Name: name, LinkName: "eth0", Client: client, Peer: peer}
	clientHandle := func(...int) (*netlink.Handle, error) { return netlink.NewHandleAt(netns.NsHandle(client.fd)) }
	h, err := clientHandle()
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
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: "eth0"},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(peer.fd),
	}
	if err := h.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("failed to add veth eth0: %v", err)
	}
	l, err := h.LinkByName("eth0")
	if err != nil {
		return nil, err
	}
	s.Index = l.Attrs().Index
	if err := configure(clientHandle, "eth0", ClientV4, ClientV6); err != nil {
		return nil, fmt.Errorf("client side: %v", err)
	}
	peerHandle := func(...int) (*netlink.Handle, error) { return netlink.NewHandleAt(netns.NsHandle(peer.fd)) }
	if err := configure(peerHandle, "eth0", PeerV4, PeerV6); err != nil {
		return nil, fmt.Errorf("peer side: %v", err)
	}
	ph, err := peerHandle()
	if err != nil {
		return nil, err
	}
	defer ph.Close()
	pl, err := ph.LinkByName("eth0")
	if err != nil {
		return nil, err
	}
	s.PeerIndex = pl.Attrs().Index
	return s, nil
}

// Path returns a path that names ns while it lives, /proc/self/fd/N, for
// APIs that take a namespace by path.
func (ns *NS) Path() string { return "/proc/self/fd/" + strconv.Itoa(ns.fd) }

// A Counter counts the UDP datagrams and TCP SYNs a peer's eth0 receives,
// through an AF_PACKET socket in the peer: the proof that nothing meant for
// another side arrived, which spontaneous traffic (neighbour discovery,
// router solicitations, multicast listener reports) does not blur.
type Counter struct {
	mu sync.Mutex
	fd int
	n  int64
}

// Counter starts counting what the peer of s receives; it stops when t
// ends.
func (s *Side) Counter(t testing.TB) *Counter {
	t.Helper()
	c := &Counter{fd: -1}
	err := s.Peer.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: s.PeerIndex}); err != nil {
			unix.Close(fd)
			return err
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		t.Fatalf("failed to capture on eth0 of peer %s: %v", s.Name, err)
	}
	t.Cleanup(func() { unix.Close(c.fd) })
	return c
}

// Count returns how many UDP datagrams and TCP SYNs the peer has received. The
// kernel queues a frame for the capture before any socket of the peer sees
// it, so a packet whose effect the caller saw is counted.
func (c *Counter) Count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := make([]byte, 2048)
	for {
		n, from, err := unix.Recvfrom(c.fd, buf, unix.MSG_DONTWAIT)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return c.n
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype != unix.PACKET_OUTGOING && transport(buf[:n]) {
			c.n++
		}
	}
}

// transport reports whether an Ethernet frame carries a UDP datagram or a
// TCP SYN: what any connection or exchange starts with. The other segments
// of a connection (a late ACK of one that closed a moment ago) are not
// counted, so that they cannot be blamed on later work.
func transport(b []byte) bool {
	var proto byte
	var l4 []byte
	switch {
	case len(b) < 14:
		return false
	case uint16(b[12])<<8|uint16(b[13]) == unix.ETH_P_IP && len(b) >= 14+20:
		proto, l4 = b[14+9], b[14+int(b[14]&0x0f)*4:]
	case uint16(b[12])<<8|uint16(b[13]) == unix.ETH_P_IPV6 && len(b) >= 14+40:
		proto, l4 = b[14+6], b[14+40:]
	default:
		return false
	}
	switch proto {
	case unix.IPPROTO_UDP:
		return true
	case unix.IPPROTO_TCP:
		const syn, ack = 0x02, 0x10
		return len(l4) >= 14 && l4[13]&syn != 0 && l4[13]&ack == 0
	}
	return false
}
