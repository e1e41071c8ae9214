//go:build linux

package testnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Counters are a link's packet counters, as the kernel keeps them
// (/sys/class/net/LINK/statistics).
type Counters struct {
	RxPackets, TxPackets uint64
	RxBytes, TxBytes     uint64
}

// Counters returns the counters of the link with the given index in ns.
// They count everything, neighbour discovery and router solicitations
// included: to count only a test's own packets, use a Capture.
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

// A Capture holds every frame that a link of a namespace receives or
// sends (an AF_PACKET socket, as tcpdump uses) from when it was made, so
// that a test can count the packets of its own that crossed the link.
// It needs CAP_NET_RAW in the namespace's user namespace, which the
// sandbox has. Its methods are safe for concurrent use.
type Capture struct {
	mu     sync.Mutex
	fd     int
	frames [][]byte
}

// Capture starts capturing on the link with the given index in ns; it
// stops when t ends.
func (ns *NS) Capture(t testing.TB, index int) *Capture {
	t.Helper()
	var fd int
	err := ns.Do(func() error {
		var err error
		proto := int(htons(unix.ETH_P_ALL))
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
		if err != nil {
			return os.NewSyscallError("socket", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20); err != nil {
			unix.Close(fd)
			return os.NewSyscallError("setsockopt", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: index}); err != nil {
			unix.Close(fd)
			return os.NewSyscallError("bind", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("failed to capture on link %d: %v", index, err)
	}
	c := &Capture{fd: fd}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		unix.Close(c.fd)
		c.fd = -1
	})
	return c
}

// Count returns how many frames captured so far pred accepts. pred gets
// the frame from its Ethernet header on.
func (c *Capture) Count(pred func(frame []byte) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.drain()
	n := 0
	for _, f := range c.frames {
		if pred(f) {
			n++
		}
	}
	return n
}

// drain moves the frames the kernel queued into c.frames.
func (c *Capture) drain() {
	if c.fd < 0 {
		return
	}
	buf := make([]byte, 65536)
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		c.frames = append(c.frames, append([]byte(nil), buf[:n]...))
	}
}

// Contains returns a predicate for Count that accepts the frames holding
// marker anywhere: a test's payload, chosen unique.
func Contains(marker []byte) func([]byte) bool {
	return func(f []byte) bool { return bytes.Contains(f, marker) }
}

// TCPPort returns a predicate for Count that accepts IPv4 and IPv6 TCP
// segments to or from port (an IPv6 header without extension headers).
func TCPPort(port uint16) func([]byte) bool {
	return func(f []byte) bool {
		if len(f) < 14 {
			return false
		}
		var l4 []byte
		switch binary.BigEndian.Uint16(f[12:]) {
		case unix.ETH_P_IP:
			ip := f[14:]
			if len(ip) < 20 || ip[9] != unix.IPPROTO_TCP {
				return false
			}
			l4 = ip[int(ip[0]&0x0f)*4:]
		case unix.ETH_P_IPV6:
			ip := f[14:]
			if len(ip) < 40 || ip[6] != unix.IPPROTO_TCP {
				return false
			}
			l4 = ip[40:]
		default:
			return false
		}
		if len(l4) < 4 {
			return false
		}
		return binary.BigEndian.Uint16(l4) == port || binary.BigEndian.Uint16(l4[2:]) == port
	}
}

// htons puts v in network byte order, as AF_PACKET wants its protocol.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
