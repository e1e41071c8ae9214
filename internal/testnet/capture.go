//go:build linux

package testnet

import (
	"encoding/binary"
	"net/netip"
	"os"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// A Capture counts the IP packets that cross one link, in both directions,
// by destination address, as the kernel hands them to a packet socket
// (AF_PACKET): what crossed the link, whoever sent it. It is safe for
// concurrent use.
type Capture struct {
	mu  sync.Mutex
	dst map[netip.Addr]int
}

// Capture starts counting the packets that cross the link with index in ns
// (the calling thread's namespace when ns is nil), until t ends. It needs
// CAP_NET_RAW in the namespace's owner, which the sandbox gives.
func (ns *NS) Capture(t testing.TB, index int) *Capture {
	t.Helper()
	var fd int
	open := func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
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
	c := &Capture{dst: map[netip.Addr]int{}}
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
				c.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { f.Close(); <-done })
	return c
}

// To returns how many packets to dst the capture has seen so far.
func (c *Capture) To(dst netip.Addr) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dst[dst]
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

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
