package ifbind

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestDeleteUnderLiveTraffic deletes a NIC under sockets bound to it. They
// get errors, or hear nothing, and never move to the other NIC, which
// carries the same addresses and routes.
func TestDeleteUnderLiveTraffic(t *testing.T) {
	tp := testnet.New(t)
	tp.ServeNames(t)
	ctx := context.Background()
	peer := netip.AddrPortFrom(testnet.PeerV4, testnet.Port)

	// A TCP connection bound to A, with a user timeout set by the
	// caller's own hook, so that TCP gives up soon once A is gone.
	d := &Dialer{Index: tp.A.Index}
	d.Control = func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 300)
		})
		return errors.Join(err, serr)
	}
	tcp, err := d.DialTCP(ctx, "tcp", netip.AddrPort{}, peer)
	if err != nil {
		t.Fatalf("failed to dial: %v", err)
	}
	defer tcp.Close()
	udp, err := (&Dialer{Index: tp.A.Index}).DialUDP(ctx, "udp", netip.AddrPort{}, peer)
	if err != nil {
		t.Fatalf("failed to dial: %v", err)
	}
	defer udp.Close()
	lc := &ListenConfig{Index: tp.A.Index}
	ln, err := lc.Listen(ctx, "tcp", ":7200")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	defer ln.Close()
	pc, err := lc.ListenPacket(ctx, "udp", ":7200")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	defer pc.Close()
	seenB := tp.B.Seen.Load()

	l, err := netlink.LinkByIndex(tp.A.Index)
	if err != nil {
		t.Fatalf("failed to look up %s: %v", tp.A.LinkName, err)
	}
	if err := netlink.LinkDel(l); err != nil {
		t.Fatalf("failed to delete %s: %v", tp.A.LinkName, err)
	}

	// UDP fails at once: the kernel routes nothing through a missing NIC.
	if _, err := udp.Write([]byte("who?")); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("UDP write after delete: got %v, want ENODEV", err)
	}
	to := net.UDPAddrFromAddrPort(peer)
	if _, err := pc.WriteTo([]byte("who?"), to); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("UDP WriteTo on a listener after delete: got %v, want ENODEV", err)
	}

	// TCP queues the write, cannot send it, and times out.
	tcp.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := tcp.Write([]byte("who?")); err != nil && !errors.Is(err, syscall.ETIMEDOUT) {
		t.Errorf("TCP write after delete: got %v, want success or ETIMEDOUT", err)
	}
	buf := make([]byte, 64)
	if _, err := tcp.Read(buf); !errors.Is(err, syscall.ETIMEDOUT) {
		t.Errorf("TCP read after delete: got %v, want ETIMEDOUT from TCP_USER_TIMEOUT", err)
	}

	// Listeners stay open and hear nothing, even when the other NIC's
	// peer sends to the same address and port.
	if err := tp.B.Peer.Do(func() error {
		if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(testnet.ClientV4, 7200).String(), time.Second); err == nil {
			c.Close()
			return errors.New("B's peer reached a listener: want refused")
		}
		c, err := net.Dial("udp", netip.AddrPortFrom(testnet.ClientV4, 7200).String())
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("b"))
		return err
	}); err != nil {
		t.Errorf("peer b: %v", err)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Errorf("a listener bound to a deleted NIC accepted a connection")
	}
	if !testnet.Quiet(pc, 100*time.Millisecond) {
		t.Errorf("a conn bound to a deleted NIC received a datagram")
	}
	if b := tp.B.Seen.Load() - seenB; b != 0 {
		t.Errorf("after deleting A, B's peer saw %d connections or datagrams, want none", b)
	}
}
