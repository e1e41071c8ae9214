//go:build linux

package testnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A Capture records every frame a link sends and receives, through an
// AF_PACKET socket in the link's namespace (CAP_NET_RAW there, which the
// sandbox's user namespace gives). It is the proof that something did or
// did not cross a link: count, with a predicate, on the side that must
// stay silent. It is safe for concurrent use.
//
// Every method first takes in what the kernel has queued for the capture,
// and the kernel queues a frame for it before any socket of the namespace
// sees it: a packet whose effect the caller saw is counted.
type Capture struct {
	f    *os.File
	rc   syscall.RawConn
	done chan struct{}

	mu      sync.Mutex
	buf     []byte
	packets []Packet
}

// A Packet is one frame a Capture saw.
type Packet struct {
	// Frame is the frame as the link carries it, link-layer header
	// included (an Ethernet header on a veth, none on a tun).
	Frame []byte
	// Outgoing is true for what the link's namespace sent, false for
	// what it received.
	Outgoing bool

	ip []byte // the IPv4 or IPv6 packet in Frame; nil for anything else
}

// StartCapture starts capturing on the link with the given index in ns. The
// capture ends when t does, or at Stop.
func StartCapture(t testing.TB, ns *NS, index int) *Capture {
	t.Helper()
	var fd int
	err := ns.Do(func() error {
		var err error
		// Non-blocking, so that the runtime polls it and Stop ends a Read.
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return os.NewSyscallError("socket", err)
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
	c := &Capture{f: os.NewFile(uintptr(fd), "capture"), done: make(chan struct{}), buf: make([]byte, 1<<16)}
	if c.rc, err = c.f.SyscallConn(); err != nil {
		c.f.Close()
		t.Fatalf("failed to capture on link %d: %v", index, err)
	}
	go c.run()
	t.Cleanup(c.Stop)
	return c
}

// Capture starts capturing on the peer NIC of s, until t ends.
func (s *Side) Capture(t testing.TB) *Capture {
	t.Helper()
	return StartCapture(t, s.Peer, s.PeerIndex)
}

func htons(v uint16) uint16 { return binary.BigEndian.Uint16(binary.NativeEndian.AppendUint16(nil, v)) }

// run takes in frames as they come, until Stop or an unexpected error.
func (c *Capture) run() {
	defer close(c.done)
	// Read returns once Stop closed the socket, or drain failed.
	c.rc.Read(func(fd uintptr) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.drain(int(fd)) != nil // else wait until it is readable again
	})
}

// drain takes in what the socket has queued, with c.mu held. It returns
// nil once the queue is empty.
func (c *Capture) drain(fd int) error {
	for {
		n, from, err := unix.Recvfrom(fd, c.buf, unix.MSG_DONTWAIT)
		switch {
		case err == unix.EAGAIN:
			return nil
		case err == unix.EINTR || err == unix.ENETDOWN:
			// ENETDOWN, once, when the link went down: the socket
			// hears again when it comes back up.
			continue
		case err != nil:
			return err
		}
		ll, _ := from.(*unix.SockaddrLinklayer)
		p := Packet{Frame: bytes.Clone(c.buf[:n]), Outgoing: ll != nil && ll.Pkttype == unix.PACKET_OUTGOING}
		p.ip = p.Frame
		if ll != nil && (ll.Hatype == unix.ARPHRD_ETHER || ll.Hatype == unix.ARPHRD_LOOPBACK) {
			if n < 14 {
				p.ip = nil
			} else if et := binary.BigEndian.Uint16(p.Frame[12:14]); et == unix.ETH_P_IP || et == unix.ETH_P_IPV6 {
				p.ip = p.Frame[14:]
			} else {
				p.ip = nil
			}
		}
		if len(p.ip) == 0 || (p.ip[0]>>4 != 4 && p.ip[0]>>4 != 6) {
			p.ip = nil
		}
		c.packets = append(c.packets, p)
	}
}

// Packets returns the packets captured so far, in the order the link
// carried them.
func (c *Capture) Packets() []Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rc.Control(func(fd uintptr) { c.drain(int(fd)) })
	return append([]Packet(nil), c.packets...)
}

// Count returns how many of the packets captured so far match accepts:
// match is a predicate such as To, SYNTo, or a test's own over Packet's
// methods.
func (c *Capture) Count(match func(Packet) bool) int {
	n := 0
	for _, p := range c.Packets() {
		if match(p) {
			n++
		}
	}
	return n
}

// WaitFor waits until a captured frame contains marker, sending it with
// send until then (a datagram may be lost while a link comes up), for up to
// five seconds. Frames that crossed the link before the marker are then in
// Packets: it is how a test knows that it has seen all there was to see.
func (c *Capture) WaitFor(marker []byte, send func() error) error {
	has := func(p Packet) bool { return bytes.Contains(p.Frame, marker) }
	for range 100 {
		if err := send(); err != nil {
			return err
		}
		for range 5 {
			if c.Count(has) > 0 {
				return nil
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return errors.New("the marker never crossed the link")
}

// Stop ends the capture. It may be called more than once.
func (c *Capture) Stop() {
	c.f.Close()
	<-c.done
}

// To matches the IP packets to dst.
func To(dst netip.Addr) func(Packet) bool {
	return func(p Packet) bool { return p.Dst() == dst }
}

// SYNTo matches the TCP connection attempts to dst: what a new socket
// sends first, apart from what older connections still exchange.
func SYNTo(dst netip.Addr) func(Packet) bool {
	return func(p Packet) bool { return p.SYN() && p.Dst() == dst }
}

// Dst returns the destination of an IP packet, the zero Addr for anything
// else.
func (p Packet) Dst() netip.Addr {
	switch {
	case len(p.ip) >= 20 && p.ip[0]>>4 == 4:
		return netip.AddrFrom4([4]byte(p.ip[16:20]))
	case len(p.ip) >= 40 && p.ip[0]>>4 == 6:
		return netip.AddrFrom16([16]byte(p.ip[24:40]))
	}
	return netip.Addr{}
}

// transport returns the transport protocol and header of an IPv4 or IPv6
// packet without extension headers (which the topologies do not make).
func (p Packet) transport() (proto byte, l4 []byte) {
	switch {
	case len(p.ip) >= 20 && p.ip[0]>>4 == 4:
		ihl := int(p.ip[0]&0x0f) * 4
		if ihl < 20 || ihl > len(p.ip) {
			return 0, nil
		}
		return p.ip[9], p.ip[ihl:]
	case len(p.ip) >= 40 && p.ip[0]>>4 == 6:
		return p.ip[6], p.ip[40:]
	}
	return 0, nil
}

// UDP reports whether p is a UDP datagram.
func (p Packet) UDP() bool {
	proto, l4 := p.transport()
	return proto == unix.IPPROTO_UDP && len(l4) >= 8
}

// SYN reports whether p is a TCP SYN without ACK, retransmissions included:
// a connection attempt.
func (p Packet) SYN() bool {
	proto, l4 := p.transport()
	const syn, ack = 0x02, 0x10
	return proto == unix.IPPROTO_TCP && len(l4) >= 14 && l4[13]&(syn|ack) == syn
}

// DstPort returns the destination port of a TCP segment or UDP datagram,
// 0 for anything else.
func (p Packet) DstPort() int {
	proto, l4 := p.transport()
	if (proto != unix.IPPROTO_TCP && proto != unix.IPPROTO_UDP) || len(l4) < 4 {
		return 0
	}
	return int(binary.BigEndian.Uint16(l4[2:4]))
}
