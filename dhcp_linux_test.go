package ifbind

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
)

// The DHCP messages of this test are built by hand from RFC 2131 and 2132:
// a DISCOVER is a fixed 240-byte header and three options, an OFFER is
// checked by five fields. A library (github.com/insomniacslk/dhcp) would
// bring a dozen modules into go.mod for what these forty lines do.

const (
	dhcpServerPort = 67
	dhcpClientPort = 68
	dhcpCookie     = 0x63825363
)

// dhcpDiscover returns a DHCPDISCOVER from mac with transaction id xid. Its
// broadcast flag asks the server to broadcast the OFFER, as a client
// without an address must; the server then needs no ARP entry for it.
func dhcpDiscover(mac net.HardwareAddr, xid uint32) []byte {
	b := make([]byte, 240, 256)
	b[0], b[1], b[2] = 1, 1, 6 // BOOTREQUEST, Ethernet, 6-byte address
	binary.BigEndian.PutUint32(b[4:], xid)
	binary.BigEndian.PutUint16(b[10:], 0x8000) // flags: broadcast
	copy(b[28:], mac)                          // chaddr
	binary.BigEndian.PutUint32(b[236:], dhcpCookie)
	b = append(b, 53, 1, 1)       // message type: DHCPDISCOVER
	b = append(b, 55, 2, 1, 3, 3) // parameters: subnet mask, router
	return append(b, 255)         // end
}

// dhcpOffer reports whether b is a DHCPOFFER for transaction xid and mac,
// and returns the address offered and the server's identifier.
func dhcpOffer(b []byte, xid uint32, mac net.HardwareAddr) (yiaddr, server netip.Addr, ok bool) {
	if len(b) < 240 || b[0] != 2 || binary.BigEndian.Uint32(b[4:]) != xid ||
		!bytes.Equal(b[28:28+len(mac)], mac) || binary.BigEndian.Uint32(b[236:]) != dhcpCookie {
		return yiaddr, server, false
	}
	yiaddr = netip.AddrFrom4([4]byte(b[16:20]))
	offer := false
	for opts := b[240:]; len(opts) > 0 && opts[0] != 255; {
		if opts[0] == 0 { // pad
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || len(opts) < 2+int(opts[1]) {
			return yiaddr, server, false
		}
		code, val := opts[0], opts[2:2+opts[1]]
		switch {
		case code == 53 && len(val) == 1:
			offer = val[0] == 2
		case code == 54 && len(val) == 4:
			server = netip.AddrFrom4([4]byte(val))
		}
		opts = opts[2+len(val):]
	}
	return yiaddr, server, offer
}

// dnsmasqPath finds dnsmasq, or skips t (fails it under CI) when it is
// not installed.
func dnsmasqPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("dnsmasq"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/dnsmasq", "/sbin/dnsmasq"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	msg := "needs dnsmasq to serve DHCP: apt-get install -y dnsmasq-base"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// syncBuffer is a bytes.Buffer that dnsmasq's output may be copied into
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startDnsmasq runs dnsmasq as a DHCP server, and nothing else, inside s's
// peer, until t ends. It is started from a thread inside the peer's network
// namespace, so that it lives there. It keeps its uid (root, or root of the
// tests' user namespace) and its files in a directory of t's.
func startDnsmasq(t *testing.T, s *testnet.Side) *syncBuffer {
	t.Helper()
	bin := dnsmasqPath(t)
	dir := t.TempDir()
	args := []string{
		"--keep-in-foreground", "--no-daemon", // stay a child, log to stderr
		"--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--port=0", // no DNS
		"--user=root", "--group=root",
		"--interface=eth0",
		"--dhcp-range=192.0.2.100,192.0.2.199,255.255.255.0,1h",
		"--dhcp-leasefile=" + filepath.Join(dir, "leases"),
		"--pid-file=" + filepath.Join(dir, "pid"),
		"--no-ping", // offer at once, without first pinging the address for 3s
		"--log-dhcp",
	}
	out := &syncBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.Peer.Do(cmd.Start); err != nil {
		t.Fatalf("failed to start dnsmasq in peer %s: %v", s.Name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("dnsmasq in peer %s said:\n%s", s.Name, out)
		}
	})
	select {
	case <-exited:
		t.Fatalf("dnsmasq in peer %s exited at once (%v):\n%s", s.Name, cmd.ProcessState, out)
	case <-time.After(100 * time.Millisecond):
	}
	return out
}

func TestDHCPOfferThroughBoundNIC(t *testing.T) {
	tp := testnet.New(t)
	tp.WaitReady(t)
	log := startDnsmasq(t, tp.A)

	// A DHCP client on each NIC, both on port 68.
	client := netip.AddrPortFrom(netip.IPv4Unspecified(), dhcpClientPort)
	server := netip.AddrPortFrom(netip.MustParseAddr("255.255.255.255"), dhcpServerPort)
	var conns []*net.UDPConn
	var macs []net.HardwareAddr
	for _, s := range tp.Sides() {
		conns = append(conns, listenUDP(t, s.Index, "udp4", client))
		l, err := LinkByIndex(s.Index)
		if err != nil {
			t.Fatal(err)
		}
		macs = append(macs, l.HardwareAddr)
	}

	// dnsmasq needs a moment to start: send DISCOVERs until the OFFER
	// comes, 40 rounds at most.
	const xidA, xidB = 0x1fb0000a, 0x1fb0000b
	buf := make([]byte, 1500)
	var yiaddr, id netip.Addr
	offered := false
	for round := 0; round < 40 && !offered; round++ {
		send(t, conns[1], string(dhcpDiscover(macs[1], xidB)), server)
		send(t, conns[0], string(dhcpDiscover(macs[0], xidA)), server)
		conns[0].SetReadDeadline(time.Now().Add(250 * time.Millisecond))
		for !offered {
			n, from, err := conns[0].ReadFromUDPAddrPort(buf)
			if err != nil {
				break
			}
			if yiaddr, id, offered = dhcpOffer(buf[:n], xidA, macs[0]); offered && from.Port() != dhcpServerPort {
				t.Errorf("OFFER came from port %d, want %d", from.Port(), dhcpServerPort)
			}
		}
	}
	if !offered {
		t.Fatalf("no DHCPOFFER through %s, bound to the NIC whose peer runs dnsmasq", tp.A.LinkName)
	}
	if lo, hi := netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("192.0.2.199"); yiaddr.Less(lo) || hi.Less(yiaddr) {
		t.Errorf("offered %v, want an address of the range %v-%v", yiaddr, lo, hi)
	}
	if id != testnet.PeerV4 {
		t.Errorf("offer from server %v, want %v", id, testnet.PeerV4)
	}
	if !testnet.Quiet(conns[1], quiet) {
		t.Errorf("the client bound to %s, whose peer has no DHCP server, received something", tp.B.LinkName)
	}
	if l := log.String(); !strings.Contains(l, "DHCPDISCOVER(eth0) "+macs[0].String()) || strings.Contains(l, macs[1].String()) {
		t.Errorf("dnsmasq did not see the DISCOVER of %s (%v) alone:\n%s", tp.A.LinkName, macs[0], l)
	}
}
