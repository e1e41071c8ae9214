//go:build linux

package testnet

import (
	"net/netip"
	"os"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// A Tally counts the IP packets that cross one link, in both directions,
// by destination address, as the kernel hands them to a packet socket
// (AF_PACKET): what crossed the link, whoever sent it. It is safe for
// concurrent use.
type Tally struct {
	mu  sync.Mutex
	dst map[netip.Addr]int
	syn map[netip.Addr]int
}

// Tally starts counting the packets that cross the link with index in ns
// (the calling thread's namespace when ns is nil), until t ends. It needs
// CAP_NET_RAW in the namespace's owner, which the sandbox gives.
func (ns *NS) Tally(t testing.TB, index int) *Tally {
	t.Helper()
	var fd int
	open := func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return os.NewSyscallError("socket", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: index}); err != nil {
			unix.Close(fd)
			return os.NewSyscallError("bind", err)
		}
		return nil
	}
	var err error
	if ns == nil {
		err = open()
	} else {
		err = ns.Do(open)
	}
	if err != nil {
		t.Fatalf("failed to capture on link %d: %v", index, err)
	}
	c := &Tally{dst: map[netip.Addr]int{}, syn: map[netip.Addr]int{}}
	// Non-blocking, so that the runtime polls it and Close ends a Read.
	f := os.NewFile(uintptr(fd), "capture")
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			if a, ok := ipDst(buf[:n]); ok {
				c.mu.Lock()
				c.dst[a]++
				if isSYNPacket(buf[:n]) {
					c.syn[a]++
				}
				c.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { f.Close(); <-done })
	return c
}

// To returns how many packets to dst the capture has seen so far.
func (c *Tally) To(dst netip.Addr) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dst[dst]
}

// SYNs returns how many TCP connection attempts (SYN without ACK) to dst
// the capture has seen so far: what a new socket sends first, apart from
// what older connections still exchange.
func (c *Tally) SYNs(dst netip.Addr) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.syn[dst]
}

// isSYN reports whether an IPv4 or IPv6 packet (without extension headers)
// is a TCP SYN without ACK.
func isSYNPacket(b []byte) bool {
	var tcp []byte
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0xf) * 4
		if len(b) < ihl+14 || b[9] != unix.IPPROTO_TCP {
			return false
		}
		tcp = b[ihl:]
	case 6:
		if len(b) < 40+14 || b[6] != unix.IPPROTO_TCP {
			return false
		}
		tcp = b[40:]
	default:
		return false
	}
	const syn, ack = 0x02, 0x10
	return tcp[13]&(syn|ack) == syn
}

// ipDst returns the destination of an IPv4 or IPv6 packet.
func ipDst(b []byte) (netip.Addr, bool) {
	if len(b) == 0 {
		return netip.Addr{}, false
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) >= 20 {
			return netip.AddrFrom4([4]byte(b[16:20])), true
		}
	case 6:
		if len(b) >= 40 {
			return netip.AddrFrom16([16]byte(b[24:40])), true
		}
	}
	return netip.Addr{}, false
}
