//go:build linux

package testnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The addresses of a Topo. Both client NICs carry the client addresses and
// both peers the peer addresses, so that only a socket's binding decides
// which peer a packet reaches.
var (
	ClientV4 = netip.MustParseAddr("192.0.2.1")
	PeerV4   = netip.MustParseAddr("192.0.2.2")
	ClientV6 = netip.MustParseAddr("2001:db8::1")
	PeerV6   = netip.MustParseAddr("2001:db8::2")
)

// Prefix lengths of the addresses above.
const (
	BitsV4 = 24
	BitsV6 = 64
)

// Port is where the servers of ServeNames listen.
const Port = 7007

// A Side is one NIC of the client (the test process's namespace) and the
// peer namespace wired to it by a veth pair.
type Side struct {
	Name      string // "a" or "b"; the servers of ServeNames answer with it
	Index     int    // the client NIC's index
	LinkName  string // the client NIC's name
	Client    *NS    // the client NIC's namespace; nil for the test's (New)
	Peer      *NS    // the peer's namespace
	PeerIndex int    // the peer NIC's index, inside Peer

	// Seen counts what the servers of ServeNames accepted or received.
	Seen atomic.Int64

	// Gateway4 and Gateway6 are the peer's addresses on the uplink of a
	// routed Topo (NewRouted), its routers; invalid otherwise.
	Gateway4, Gateway6 netip.Addr
}

// A Topo is a client with two NICs carrying the same addresses, each wired
// to a peer namespace of its own that carries the same peer addresses.
type Topo struct {
	A, B *Side

	// Client is the client's namespace, nil when it is the test
	// process's own (New).
	Client *NS
}

// Sides returns A and B.
func (tp *Topo) Sides() []*Side { return []*Side{tp.A, tp.B} }

// New builds a Topo that is torn down when t ends.
func New(t testing.TB) *Topo {
	t.Helper()
	Require(t)
	CheckLeaks(t)
	tp := &Topo{}
	for _, name := range []string{"a", "b"} {
		s, err := newSide(t, name)
		if err != nil {
			t.Fatalf("failed to build side %s: %v", name, err)
		}
		if name == "a" {
			tp.A = s
		} else {
			tp.B = s
		}
	}
	return tp
}

func newSide(t testing.TB, name string) (*Side, error) {
	ns := NewNS(t)
	s := &Side{Name: name, LinkName: "ifb-" + name, Peer: ns}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: s.LinkName},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(ns.fd),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("failed to add veth %s: %v", s.LinkName, err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(s.LinkName); err == nil {
			netlink.LinkDel(l)
		}
	})
	l, err := netlink.LinkByName(s.LinkName)
	if err != nil {
		return nil, err
	}
	s.Index = l.Attrs().Index
	if err := configure(netlink.NewHandle, s.LinkName, ClientV4, ClientV6); err != nil {
		return nil, fmt.Errorf("client side: %v", err)
	}
	peerHandle := func(...int) (*netlink.Handle, error) { return netlink.NewHandleAt(netns.NsHandle(ns.fd)) }
	if err := configure(peerHandle, "eth0", PeerV4, PeerV6); err != nil {
		return nil, fmt.Errorf("peer side: %v", err)
	}
	h, err := peerHandle()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	pl, err := h.LinkByName("eth0")
	if err != nil {
		return nil, err
	}
	s.PeerIndex = pl.Attrs().Index
	return s, nil
}

// configure gives the link its addresses, without duplicate address
// detection so that IPv6 works at once, and brings it up.
func configure(handle func(...int) (*netlink.Handle, error), link string, v4, v6 netip.Addr) error {
	h, err := handle()
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := h.LinkByName(link)
	if err != nil {
		return err
	}
	for _, p := range []netip.Prefix{netip.PrefixFrom(v4, BitsV4), netip.PrefixFrom(v6, BitsV6)} {
		addr := &netlink.Addr{IPNet: prefixNet(p), Flags: unix.IFA_F_NODAD}
		if err := h.AddrAdd(l, addr); err != nil {
			return fmt.Errorf("failed to add %v to %s: %v", p, link, err)
		}
	}
	return h.LinkSetUp(l)
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// ServeNames starts, in each peer, a TCP and a UDP server on Port, IPv4 and
// IPv6, that answer every connection and every datagram with the side's
// name and count it in Seen. They stop when t ends.
func (tp *Topo) ServeNames(t testing.TB) {
	t.Helper()
	for _, s := range tp.Sides() {
		var ln net.Listener
		var pc net.PacketConn
		err := s.Peer.Do(func() error {
			var err error
			addr := ":" + strconv.Itoa(Port)
			if ln, err = net.Listen("tcp", addr); err != nil {
				return err
			}
			pc, err = net.ListenPacket("udp", addr)
			return err
		})
		if err != nil {
			t.Fatalf("failed to start the servers of side %s: %v", s.Name, err)
		}
		var (
			mu    sync.Mutex
			conns = map[net.Conn]bool{}
			wg    sync.WaitGroup
		)
		t.Cleanup(func() {
			ln.Close()
			pc.Close()
			mu.Lock()
			for c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
		})
		wg.Add(2)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				s.Seen.Add(1)
				mu.Lock()
				conns[c] = true
				mu.Unlock()
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() {
						mu.Lock()
						delete(conns, c)
						mu.Unlock()
						c.Close()
					}()
					c.SetDeadline(time.Now().Add(5 * time.Second))
					buf := make([]byte, 64)
					c.Read(buf)
					c.Write([]byte(s.Name))
				}()
			}
		}()
		go func() {
			defer wg.Done()
			buf := make([]byte, 1500)
			for {
				_, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				s.Seen.Add(1)
				pc.WriteTo([]byte(s.Name), from)
			}
		}()
	}
}

// Ask sends a line over c, reads the answer of a ServeNames server, and
// returns it.
func Ask(c net.Conn) (string, error) {
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return "", err
	}
	if _, err := c.Write([]byte("who?\n")); err != nil {
		return "", err
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if n == 0 && err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// Quiet reports whether c reads nothing for d: the proof that traffic meant
// for another NIC did not arrive here.
func Quiet(c net.PacketConn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 1500)
	_, _, err := c.ReadFrom(buf)
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
