//go:build linux

package testnet

import (
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// CountSYNs counts, until t ends, the TCP connection attempts (SYNs without
// ACK, retransmissions included) that arrive at the peer NIC of s for port,
// IPv4 and IPv6: what the kernel received, whether or not a listener ever
// accepted them. It is the proof that a dial did or did not cross s, even
// when the peer drops its answers.
func (s *Side) CountSYNs(t testing.TB, port int) *atomic.Int64 {
	t.Helper()
	var f *os.File
	err := s.Peer.Do(func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return os.NewSyscallError("socket", err)
		}
		// Only what arrives: the peer's own answers are not attempts.
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			unix.Close(fd)
			return os.NewSyscallError("setsockopt", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: s.PeerIndex}); err != nil {
			unix.Close(fd)
			return os.NewSyscallError("bind", err)
		}
		f = os.NewFile(uintptr(fd), "packet-"+s.Name)
		return nil
	})
	if err != nil {
		t.Fatalf("failed to capture on peer %s: %v", s.Name, err)
	}
	n := new(atomic.Int64)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			nr, err := f.Read(buf)
			if errors.Is(err, os.ErrClosed) {
				return
			}
			if err != nil {
				// ENETDOWN, once, when the peer NIC went down: the
				// socket hears again when it comes back up.
				continue
			}
			if isSYN(buf[:nr], port) {
				n.Add(1)
			}
		}
	}()
	t.Cleanup(func() { f.Close(); wg.Wait() })
	return n
}

// isSYN reports whether the Ethernet frame b carries a TCP SYN without ACK
// to port.
func isSYN(b []byte, port int) bool {
	if len(b) < 14 {
		return false
	}
	var tcp []byte
	switch binary.BigEndian.Uint16(b[12:14]) {
	case unix.ETH_P_IP:
		ip := b[14:]
		if len(ip) < 20 || ip[9] != unix.IPPROTO_TCP {
			return false
		}
		tcp = ip[int(ip[0]&0x0f)*4:]
	case unix.ETH_P_IPV6:
		ip := b[14:]
		if len(ip) < 40 || ip[6] != unix.IPPROTO_TCP {
			return false
		}
		tcp = ip[40:]
	default:
		return false
	}
	if len(tcp) < 14 {
		return false
	}
	const syn, ack = 0x02, 0x10
	return int(binary.BigEndian.Uint16(tcp[2:4])) == port && tcp[13]&(syn|ack) == syn
}
