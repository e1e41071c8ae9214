package ifbind

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

const pingGroupRange = "/proc/sys/net/ipv4/ping_group_range"

// allowPing lets group 0, ours in the sandbox, open unprivileged
// ICMP sockets, after checking that ListenICMP says why it cannot while
// they are not allowed, and restores the sysctl when t ends.
func allowPing(t *testing.T, index int) {
	t.Helper()
	old, err := os.ReadFile(pingGroupRange)
	if err != nil {
		t.Fatalf("failed to read %s: %v", pingGroupRange, err)
	}
	if strings.Fields(string(old))[0] == "1" && strings.Fields(string(old))[1] == "0" {
		_, err := (&ListenConfig{Index: index}).ListenICMP(context.Background(), "udp4", netip.Addr{})
		if !errors.Is(err, syscall.EACCES) || !strings.Contains(err.Error(), "ping_group_range") {
			t.Errorf("ping socket with ping_group_range %q: got %v, want EACCES naming the sysctl", old, err)
		}
	}
	if err := os.WriteFile(pingGroupRange, []byte("0 0"), 0); err != nil {
		t.Fatalf("failed to allow unprivileged ICMP sockets: %v", err)
	}
	t.Cleanup(func() { os.WriteFile(pingGroupRange, old, 0) })
}

// echoWatcher is a raw ICMP socket in a peer that sees every echo request
// reaching it.
func echoWatcher(t *testing.T, s *testnet.Side, v6 bool) net.PacketConn {
	t.Helper()
	network := "ip4:icmp"
	if v6 {
		network = "ip6:ipv6-icmp"
	}
	var pc net.PacketConn
	err := s.Peer.Do(func() error {
		var err error
		pc, err = net.ListenPacket(network, "")
		return err
	})
	if err != nil {
		t.Fatalf("failed to watch ICMP in peer %s: %v", s.Name, err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// readEcho reads from pc until an echo message of the given type carrying
// data comes, or d passes.
func readEcho(pc net.PacketConn, v6 bool, typ icmp.Type, data []byte, d time.Duration) bool {
	proto := 1
	if v6 {
		proto = 58
	}
	pc.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 1500)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return false
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != typ {
			continue
		}
		if e, ok := m.Body.(*icmp.Echo); ok && bytes.Equal(e.Data, data) {
			return true
		}
	}
}

func TestListenICMP(t *testing.T) {
	tp := testnet.New(t)
	tp.WaitReady(t)
	allowPing(t, tp.A.Index)
	ctx := context.Background()
	for _, network := range []string{"ip4:icmp", "ip6:ipv6-icmp", "udp4", "udp6"} {
		v6 := strings.HasSuffix(network, "6") || strings.HasPrefix(network, "ip6")
		peer, request, reply := testnet.PeerV4, icmp.Type(ipv4.ICMPTypeEcho), icmp.Type(ipv4.ICMPTypeEchoReply)
		if v6 {
			peer, request, reply = testnet.PeerV6, ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply
		}
		var dst net.Addr = &net.IPAddr{IP: peer.AsSlice()}
		if strings.HasPrefix(network, "udp") {
			dst = &net.UDPAddr{IP: peer.AsSlice()}
		}
		for i, s := range tp.Sides() {
			other := tp.Sides()[1-i]
			t.Run(network+"/"+s.LinkName, func(t *testing.T) {
				here, there := echoWatcher(t, s, v6), echoWatcher(t, other, v6)
				lc := &ListenConfig{Index: s.Index}
				c, err := lc.ListenICMP(ctx, network, netip.Addr{})
				if err != nil {
					t.Fatalf("failed to listen for ICMP on %s: %v", network, err)
				}
				defer c.Close()
				data := []byte("ifbind " + network + " via " + s.LinkName)
				m := icmp.Message{Type: request, Body: &icmp.Echo{ID: 0x1fb, Seq: i + 1, Data: data}}
				b, err := m.Marshal(nil) // the kernel sums ICMPv6
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.WriteTo(b, dst); err != nil {
					t.Fatalf("failed to send an echo request to %v: %v", dst, err)
				}
				if !readEcho(c, v6, reply, data, 5*time.Second) {
					t.Errorf("no echo reply from %v through %s", peer, s.LinkName)
				}
				if !readEcho(here, v6, request, data, 5*time.Second) {
					t.Errorf("peer %s saw no echo request", s.Name)
				}
				if readEcho(there, v6, request, data, quiet) {
					t.Errorf("peer %s saw the echo request sent bound to %s", other.Name, s.LinkName)
				}
			})
		}
	}
}

// TestListenICMPZone proves that the zone of a link-local laddr may name
// the bound interface by index, as net reads zones, or by name, and that a
// zone naming another interface is refused (EINVAL) before the socket binds
// to its address: the kernel would let a raw socket's zone override the
// binding.
func TestListenICMPZone(t *testing.T) {
	tp := testnet.New(t)
	allowPing(t, tp.A.Index)
	linkLocal := netip.MustParseAddr("fe80::1")
	for _, s := range tp.Sides() {
		l, err := netlink.LinkByIndex(s.Index)
		if err != nil {
			t.Fatal(err)
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: linkLocal.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrAdd(l, addr); err != nil {
			t.Fatalf("failed to add %v to %s: %v", linkLocal, s.LinkName, err)
		}
	}
	ctx := context.Background()
	for _, network := range []string{"udp6", "ip6:ipv6-icmp"} {
		for _, c := range []struct {
			zone string
			want error // nil: bound to A
		}{
			{strconv.Itoa(tp.A.Index), nil},
			{tp.A.LinkName, nil},
			{strconv.Itoa(tp.B.Index), syscall.EINVAL},
			{tp.B.LinkName, syscall.EINVAL},
		} {
			laddr := linkLocal.WithZone(c.zone)
			pc, err := (&ListenConfig{Index: tp.A.Index}).ListenICMP(ctx, network, laddr)
			if c.want != nil {
				var be *BindError
				if !errors.Is(err, c.want) || !errors.As(err, &be) || be.Index != tp.A.Index {
					t.Errorf("ListenICMP(%s, %v) bound to %s: got %v, want a *BindError of index %d that is %v", network, laddr, tp.A.LinkName, err, tp.A.Index, c.want)
				}
				if pc != nil {
					pc.Close()
				}
				continue
			}
			if err != nil {
				t.Errorf("ListenICMP(%s, %v) bound to %s: %v", network, laddr, tp.A.LinkName, err)
				continue
			}
			rc, err := pc.(syscall.Conn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			if got, err := readBound(rc); err != nil || got != tp.A.Index {
				t.Errorf("ListenICMP(%s, %v): bound to %d, %v; want %d", network, laddr, got, err, tp.A.Index)
			}
			pc.Close()
		}
		// A zone that names nothing is an address error.
		pc, err := (&ListenConfig{Index: tp.A.Index}).ListenICMP(ctx, network, linkLocal.WithZone("nosuch0"))
		if pc != nil {
			pc.Close()
		}
		var ae *net.AddrError
		if !errors.As(err, &ae) {
			t.Errorf("ListenICMP(%s) with zone nosuch0: got %v, want a *net.AddrError", network, err)
		}
	}
}
