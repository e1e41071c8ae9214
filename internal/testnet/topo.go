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
	tp.build(t, "side", func(name string, _ int) (*Side, error) {
		s := &Side{Name: name, LinkName: "ifb-" + name}
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, err
		}
		defer h.Close()
		err = s.wire(t, h, clientPrefixes, peerPrefixes)
		// Before the peer's namespace goes: the link is in the test's.
		t.Cleanup(func() {
			if l, err := netlink.LinkByName(s.LinkName); err == nil {
				netlink.LinkDel(l)
			}
		})
		return s, err
	})
	return tp
}

// The prefixes of the NICs of New and NewTenants.
var (
	clientPrefixes = []netip.Prefix{netip.PrefixFrom(ClientV4, BitsV4), netip.PrefixFrom(ClientV6, BitsV6)}
	peerPrefixes   = []netip.Prefix{netip.PrefixFrom(PeerV4, BitsV4), netip.PrefixFrom(PeerV6, BitsV6)}
)

// build makes sides a and b, the i-th with side(name, i); what names
// them when one cannot be built.
func (tp *Topo) build(t testing.TB, what string, side func(name string, i int) (*Side, error)) {
	t.Helper()
	for i, name := range []string{"a", "b"} {
		s, err := side(name, i)
		if err != nil {
			t.Fatalf("failed to build %s %s: %v", what, name, err)
		}
		if name == "a" {
			tp.A = s
		} else {
			tp.B = s
		}
	}
}

// wire adds a veth pair: s.LinkName in the namespace of h, and eth0 in a
// new peer namespace, s.Peer. It gives each end its prefixes, without
// duplicate address detection so that IPv6 works at once, brings both up
// and sets s.Index and s.PeerIndex.
func (s *Side) wire(t testing.TB, h *netlink.Handle, client, peer []netip.Prefix) error {
	s.Peer = NewNS(t)
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: s.LinkName},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(s.Peer.fd),
	}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("failed to add veth %s: %v", s.LinkName, err)
	}
	var err error
	if s.Index, err = configure(h, s.LinkName, client...); err != nil {
		return fmt.Errorf("client side: %v", err)
	}
	ph, err := s.Peer.Handle()
	if err != nil {
		return err
	}
	defer ph.Close()
	if s.PeerIndex, err = configure(ph, "eth0", peer...); err != nil {
		return fmt.Errorf("peer side: %v", err)
	}
	return nil
}

// configure gives the link the prefixes, without duplicate address
// detection, brings it up and returns its index.
func configure(h *netlink.Handle, link string, prefixes ...netip.Prefix) (int, error) {
	l, err := h.LinkByName(link)
	if err != nil {
		return 0, err
	}
	for _, p := range prefixes {
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: prefixNet(p), Flags: unix.IFA_F_NODAD}); err != nil {
			return 0, fmt.Errorf("failed to add %v to %s: %v", p, link, err)
		}
	}
	return l.Attrs().Index, h.LinkSetUp(l)
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
