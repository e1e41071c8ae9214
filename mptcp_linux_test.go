package ifbind

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The Multipath TCP path manager's generic netlink interface
// (linux/mptcp_pm.h), which neither x/sys/unix nor vishvananda/netlink
// carries.
const (
	mptcpPMCmdAddAddr   = 1 // MPTCP_PM_CMD_ADD_ADDR
	mptcpPMCmdSetLimits = 5 // MPTCP_PM_CMD_SET_LIMITS

	mptcpPMAttrAddr        = 1 // MPTCP_PM_ATTR_ADDR, nested
	mptcpPMAttrRcvAddAddrs = 2 // MPTCP_PM_ATTR_RCV_ADD_ADDRS, u32
	mptcpPMAttrSubflows    = 3 // MPTCP_PM_ATTR_SUBFLOWS, u32

	mptcpPMAddrAttrFamily = 1 // MPTCP_PM_ADDR_ATTR_FAMILY, u16
	mptcpPMAddrAttrAddr4  = 3 // MPTCP_PM_ADDR_ATTR_ADDR4, struct in_addr
	mptcpPMAddrAttrFlags  = 6 // MPTCP_PM_ADDR_ATTR_FLAGS, u32
	mptcpPMAddrAttrIfIdx  = 7 // MPTCP_PM_ADDR_ATTR_IF_IDX, s32

	mptcpPMAddrFlagSignal  = 1 << 0
	mptcpPMAddrFlagSubflow = 1 << 1
)

// mptcpPM sends one command to the path manager of the calling thread's
// network namespace, as `ip mptcp` does.
func mptcpPM(cmd uint8, attrs ...*nl.RtAttr) error {
	fam, err := netlink.GenlFamilyGet("mptcp_pm")
	if err != nil {
		return fmt.Errorf("no mptcp_pm generic netlink family (a kernel without CONFIG_MPTCP?): %v", err)
	}
	req := nl.NewNetlinkRequest(int(fam.ID), unix.NLM_F_ACK)
	req.AddData(&nl.Genlmsg{Command: cmd, Version: 1})
	for _, a := range attrs {
		req.AddData(a)
	}
	_, err = req.Execute(unix.NETLINK_GENERIC, 0)
	return err
}

// mptcpEndpoint adds an endpoint on addr and the link index, with flags,
// as `ip mptcp endpoint add addr dev link signal subflow` does.
func mptcpEndpoint(addr netip.Addr, index int, flags uint32) error {
	a := nl.NewRtAttr(unix.NLA_F_NESTED|mptcpPMAttrAddr, nil)
	a.AddRtAttr(mptcpPMAddrAttrFamily, nl.Uint16Attr(unix.AF_INET))
	a.AddRtAttr(mptcpPMAddrAttrAddr4, addr.AsSlice())
	a.AddRtAttr(mptcpPMAddrAttrFlags, nl.Uint32Attr(flags))
	a.AddRtAttr(mptcpPMAddrAttrIfIdx, nl.Uint32Attr(uint32(index)))
	return mptcpPM(mptcpPMCmdAddAddr, a)
}

// An mptcpTopo is a client and a server namespace wired by two veth pairs,
// A and B, each side with an MPTCP endpoint on its B address that both
// opens subflows and is announced to the other side: if a connection made
// on A is Multipath TCP, the kernel adds subflows across B.
type mptcpTopo struct {
	client, server *testnet.NS
	// The indexes of the links, by namespace and pair.
	clientA, clientB, serverA, serverB int
}

// The addresses of an mptcpTopo: A carries 192.0.2.0/24, B 198.51.100.0/24.
var (
	mptcpClientA = netip.MustParseAddr("192.0.2.1")
	mptcpServerA = netip.MustParseAddr("192.0.2.2")
	mptcpClientB = netip.MustParseAddr("198.51.100.1")
	mptcpServerB = netip.MustParseAddr("198.51.100.2")
)

func newMPTCPTopo(t *testing.T) *mptcpTopo {
	t.Helper()
	tp := &mptcpTopo{client: testnet.NewNS(t), server: testnet.NewNS(t)}
	err := tp.client.Do(func() error {
		for _, p := range []string{"a", "b"} {
			veth := &netlink.Veth{
				LinkAttrs:     netlink.LinkAttrs{Name: "c" + p},
				PeerName:      "s" + p,
				PeerNamespace: netlink.NsFd(tp.server.FD()),
			}
			if err := netlink.LinkAdd(veth); err != nil {
				return fmt.Errorf("failed to add veth c%s: %v", p, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Each side: addresses, a route to the other side's A network through B
	// too (at a worse metric than A's own) so that a subflow endpoint on B
	// can reach the address the connection began with, Multipath TCP on,
	// limits that let subflows be added, and the B endpoint.
	sides := []struct {
		ns           *testnet.NS
		prefix       string
		a, b         netip.Addr
		index, bIdx  *int
		otherNetwork netip.Prefix
	}{
		{tp.client, "c", mptcpClientA, mptcpClientB, &tp.clientA, &tp.clientB, netip.MustParsePrefix("192.0.2.0/24")},
		{tp.server, "s", mptcpServerA, mptcpServerB, &tp.serverA, &tp.serverB, netip.MustParsePrefix("192.0.2.0/24")},
	}
	for _, s := range sides {
		err := s.ns.Do(func() error {
			for _, l := range []struct {
				name  string
				addr  netip.Addr
				index *int
			}{{s.prefix + "a", s.a, s.index}, {s.prefix + "b", s.b, s.bIdx}} {
				link, err := netlink.LinkByName(l.name)
				if err != nil {
					return err
				}
				*l.index = link.Attrs().Index
				ipnet := &net.IPNet{IP: l.addr.AsSlice(), Mask: net.CIDRMask(24, 32)}
				if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipnet}); err != nil {
					return fmt.Errorf("failed to add %v to %s: %v", l.addr, l.name, err)
				}
				if err := netlink.LinkSetUp(link); err != nil {
					return err
				}
			}
			dst := &net.IPNet{IP: s.otherNetwork.Addr().AsSlice(), Mask: net.CIDRMask(s.otherNetwork.Bits(), 32)}
			if err := netlink.RouteAdd(&netlink.Route{LinkIndex: *s.bIdx, Dst: dst, Priority: 100}); err != nil {
				return fmt.Errorf("failed to add a route through B: %v", err)
			}
			if err := os.WriteFile("/proc/sys/net/mptcp/enabled", []byte("1"), 0); err != nil {
				return err
			}
			err := mptcpPM(mptcpPMCmdSetLimits,
				nl.NewRtAttr(mptcpPMAttrRcvAddAddrs, nl.Uint32Attr(2)),
				nl.NewRtAttr(mptcpPMAttrSubflows, nl.Uint32Attr(2)))
			if err != nil {
				return fmt.Errorf("failed to set the MPTCP limits: %v", err)
			}
			if err := mptcpEndpoint(s.b, *s.bIdx, mptcpPMAddrFlagSignal|mptcpPMAddrFlagSubflow); err != nil {
				return fmt.Errorf("failed to add the MPTCP endpoint %v: %v", s.b, err)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("failed to set up the %s namespace: %v", map[string]string{"c": "client", "s": "server"}[s.prefix], err)
		}
	}
	return tp
}

// tcpCount is what a capture saw of TCP.
type tcpCount struct {
	segments int // TCP segments, either way
	joins    int // SYNs carrying MP_JOIN: an added subflow
	payload  int // bytes of data
}

func (c tcpCount) String() string {
	return fmt.Sprintf("%d TCP segments, %d MP_JOIN SYNs, %d bytes of data", c.segments, c.joins, c.payload)
}

// countTCP counts the TCP segments of packets captured on Ethernet links
// (IPv4 and IPv6 without extension headers, which this topology does not
// make).
func countTCP(packets []testnet.Packet) tcpCount {
	var c tcpCount
	for _, p := range packets {
		f := p.Frame
		if len(f) < 14 {
			continue
		}
		var seg []byte
		switch binary.BigEndian.Uint16(f[12:]) {
		case unix.ETH_P_IP:
			ip := f[14:]
			if len(ip) < 20 || ip[9] != unix.IPPROTO_TCP {
				continue
			}
			total := int(binary.BigEndian.Uint16(ip[2:]))
			ihl := int(ip[0]&0x0f) * 4
			if total > len(ip) || ihl > total {
				continue
			}
			seg = ip[ihl:total]
		case unix.ETH_P_IPV6:
			ip := f[14:]
			if len(ip) < 40 || ip[6] != unix.IPPROTO_TCP {
				continue
			}
			plen := int(binary.BigEndian.Uint16(ip[4:]))
			if 40+plen > len(ip) {
				continue
			}
			seg = ip[40 : 40+plen]
		default:
			continue
		}
		if len(seg) < 20 {
			continue
		}
		doff := int(seg[12]>>4) * 4
		if doff < 20 || doff > len(seg) {
			continue
		}
		c.segments++
		c.payload += len(seg) - doff
		if seg[13]&0x02 != 0 && hasMPJoin(seg[20:doff]) {
			c.joins++
		}
	}
	return c
}

// hasMPJoin reports whether TCP options carry MPTCP's MP_JOIN (kind 30,
// subtype 1).
func hasMPJoin(opts []byte) bool {
	for len(opts) > 0 {
		switch opts[0] {
		case 0: // end of options
			return false
		case 1: // no-operation
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || int(opts[1]) < 2 || int(opts[1]) > len(opts) {
			return false
		}
		if opts[0] == 30 && opts[1] >= 3 && opts[2]>>4 == 1 {
			return true
		}
		opts = opts[opts[1]:]
	}
	return false
}

// sockProtocol reads SO_PROTOCOL: IPPROTO_TCP or IPPROTO_MPTCP.
func sockProtocol(t *testing.T, c syscall.Conn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatalf("failed to get the raw conn: %v", err)
	}
	var proto int
	if cerr := rc.Control(func(fd uintptr) { proto, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL) }); cerr != nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("failed to read SO_PROTOCOL: %v", err)
	}
	return proto
}

// wantMPTCPRefused checks that err is the refusal of Multipath TCP by a
// binding to index.
func wantMPTCPRefused(t *testing.T, err error, index int) {
	t.Helper()
	var be *BindError
	switch {
	case !errors.As(err, &be):
		t.Errorf("got error %v, want a *BindError", err)
	case be.Index != index:
		t.Errorf("got a *BindError of index %d, want %d", be.Index, index)
	}
	if !errors.Is(err, ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("got error %v, want one for which errors.Is(err, ErrUnsupported) and errors.Is(err, errors.ErrUnsupported) hold", err)
	}
	if msg := fmt.Sprint(err); !strings.Contains(msg, "subflows through") || !strings.Contains(msg, "SetMultipathTCP(false)") {
		t.Errorf("got error %q, want one that says why (subflows through other interfaces) and how to fix it (SetMultipathTCP(false))", msg)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || (oe.Op != "dial" && oe.Op != "listen") {
		t.Errorf("got error %v, want a *net.OpError of a dial or a listen", err)
	}
}

// An mptcpOutcome is what a row of TestMultipathTCPStaysOnTheBinding
// expects of the bound side.
type mptcpOutcome int

const (
	// mptcpPlain: a plain TCP connection carries the data.
	mptcpPlain mptcpOutcome = iota
	// mptcpRefused: the dial fails with the Multipath TCP error, before
	// any socket exists.
	mptcpRefused
	// mptcpFallback: the hook refuses the Multipath TCP socket, and net
	// falls back to plain TCP, as it does on any error of Multipath TCP;
	// should it stop falling back, the refusal is the error.
	mptcpFallback
)

// TestMultipathTCPStaysOnTheBinding proves that no Multipath TCP subflow
// leaves or enters through another interface than the one bound: each side
// has an MPTCP endpoint on its other NIC (B), which the kernel uses to add
// subflows to every Multipath TCP connection, and a capture on B counts
// what crossed. A Dialer that asks for Multipath TCP, and the copies of
// NetDialer and NetListenConfig turned to it, fail; a listener is plain TCP
// whatever its config says, and a Multipath TCP client falls back to TCP.
func TestMultipathTCPStaysOnTheBinding(t *testing.T) {
	t.Parallel()
	tp := newMPTCPTopo(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The server of the dial rows: Go's default, a Multipath TCP listener,
	// not bound.
	goListen := func(ctx context.Context, addr string, _ ctlFunc) (net.Listener, error) {
		var lc net.ListenConfig
		return lc.Listen(ctx, "tcp", addr)
	}
	// The client of the listen rows: Multipath TCP, not bound.
	goMPTCPDial := func(ctx context.Context, addr string, _ ctlFunc) (net.Conn, error) {
		var d net.Dialer
		d.SetMultipathTCP(true)
		return d.DialContext(ctx, "tcp", addr)
	}
	rows := []struct {
		name string
		// bound tells which side binds to A, and which side's B the
		// capture is on: its peer's.
		bound string
		// The bound side's listen or dial runs hook as its Control.
		listen  func(ctx context.Context, addr string, hook ctlFunc) (net.Listener, error)
		dial    func(ctx context.Context, addr string, hook ctlFunc) (net.Conn, error)
		outcome mptcpOutcome
	}{
		{
			name:   "Dialer, default",
			bound:  "client",
			listen: goListen,
			dial: func(ctx context.Context, addr string, hook ctlFunc) (net.Conn, error) {
				d := &Dialer{Index: tp.clientA}
				d.Control = hook
				return d.DialContext(ctx, "tcp", addr)
			},
		},
		{
			name:   "Dialer, SetMultipathTCP(true)",
			bound:  "client",
			listen: goListen,
			dial: func(ctx context.Context, addr string, hook ctlFunc) (net.Conn, error) {
				d := &Dialer{Index: tp.clientA}
				d.Control = hook
				d.SetMultipathTCP(true)
				return d.DialContext(ctx, "tcp", addr)
			},
			outcome: mptcpRefused,
		},
		{
			name:   "NetDialer, then SetMultipathTCP(true)",
			bound:  "client",
			listen: goListen,
			dial: func(ctx context.Context, addr string, hook ctlFunc) (net.Conn, error) {
				d := &Dialer{Index: tp.clientA}
				d.Control = hook
				nd := d.NetDialer()
				nd.SetMultipathTCP(true)
				return nd.DialContext(ctx, "tcp", addr)
			},
			outcome: mptcpFallback,
		},
		{
			name:  "ListenConfig, Go's default",
			bound: "server",
			listen: func(ctx context.Context, addr string, hook ctlFunc) (net.Listener, error) {
				lc := &ListenConfig{Index: tp.serverA}
				lc.Control = hook
				return lc.Listen(ctx, "tcp", addr)
			},
			dial: goMPTCPDial,
		},
		{
			name:  "ListenConfig, SetMultipathTCP(true)",
			bound: "server",
			listen: func(ctx context.Context, addr string, hook ctlFunc) (net.Listener, error) {
				lc := &ListenConfig{Index: tp.serverA}
				lc.Control = hook
				lc.SetMultipathTCP(true)
				return lc.Listen(ctx, "tcp", addr)
			},
			dial: goMPTCPDial,
		},
		{
			name:  "NetListenConfig, then SetMultipathTCP(true)",
			bound: "server",
			listen: func(ctx context.Context, addr string, hook ctlFunc) (net.Listener, error) {
				lc := &ListenConfig{Index: tp.serverA}
				lc.Control = hook
				nlc := lc.NetListenConfig()
				nlc.SetMultipathTCP(true)
				return nlc.Listen(ctx, "tcp", addr)
			},
			dial:    goMPTCPDial,
			outcome: mptcpFallback,
		},
	}
	for i, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			port := strconv.Itoa(9000 + i)
			// The capture of each link is on the side across from the
			// bound one, where nothing may arrive through B.
			watch := tp.server
			watchA, watchB := tp.serverA, tp.serverB
			boundIndex := tp.clientA
			if row.bound == "server" {
				watch, watchA, watchB, boundIndex = tp.client, tp.clientA, tp.clientB, tp.serverA
			}
			capA := testnet.StartCapture(t, watch, watchA)
			capB := testnet.StartCapture(t, watch, watchB)

			refused := false      // no connection: the error said why
			seen := new(protoLog) // what the bound side's own hook saw
			var ln net.Listener
			err := tp.server.Do(func() error {
				var err error
				ln, err = row.listen(ctx, net.JoinHostPort("", port), seen.control)
				return err
			})
			switch {
			case err != nil && row.bound == "server" && row.outcome == mptcpFallback:
				wantMPTCPRefused(t, err, boundIndex)
				refused = true
			case err != nil:
				t.Fatalf("failed to listen: %v", err)
			default:
				defer ln.Close()
				if row.bound == "server" {
					if got := sockProtocol(t, ln.(*net.TCPListener)); got != unix.IPPROTO_TCP {
						t.Errorf("SO_PROTOCOL of the listener = %d, want IPPROTO_TCP (%d)", got, unix.IPPROTO_TCP)
					}
				}
			}
			if !refused {
				served := make(chan error, 1)
				go func() { served <- echoOnce(ln) }()
				var c net.Conn
				err := tp.client.Do(func() error {
					var err error
					c, err = row.dial(ctx, net.JoinHostPort(mptcpServerA.String(), port), seen.control)
					return err
				})
				switch {
				case err != nil && row.bound == "client" && row.outcome != mptcpPlain:
					wantMPTCPRefused(t, err, boundIndex)
					refused = true
					ln.Close()
					<-served
				case err != nil:
					t.Fatalf("failed to dial: %v", err)
				case row.outcome == mptcpRefused:
					c.Close()
					t.Fatalf("the dial succeeded, want it refused")
				default:
					if err := exchange(c.(*net.TCPConn)); err != nil {
						t.Errorf("failed to exchange data: %v", err)
					}
					if err := <-served; err != nil {
						t.Errorf("server: %v", err)
					}
				}
			}

			// Flush: a marker sent through each link after the
			// connection crosses the capture after all it sent.
			for _, m := range []struct {
				c     *testnet.Capture
				index int
				to    netip.Addr
			}{{capA, tp.clientA, mptcpServerA}, {capB, tp.clientB, mptcpServerB}} {
				marker := []byte("ifbind-marker-" + row.name)
				err := m.c.WaitFor(marker, func() error {
					return tp.client.Do(func() error {
						c, err := (&Dialer{Index: m.index}).DialUDP(ctx, "udp4", netip.AddrPort{}, netip.AddrPortFrom(m.to, 9))
						if err != nil {
							return err
						}
						defer c.Close()
						_, err = c.Write(marker)
						return err
					})
				})
				if err != nil {
					t.Fatalf("failed to flush the capture of link %d: %v", m.index, err)
				}
			}
			// The caller's hook runs after the binding: it sees every
			// socket bound, and none may be Multipath TCP.
			protos := seen.get()
			for _, p := range protos {
				if p != unix.IPPROTO_TCP {
					t.Errorf("the caller's hook saw a socket of protocol %d, want only IPPROTO_TCP (%d): %v", p, unix.IPPROTO_TCP, protos)
					break
				}
			}
			if refused == (len(protos) != 0) {
				t.Errorf("the caller's hook saw %d sockets; want none when refused, some when connected", len(protos))
			}
			onA, onB := countTCP(capA.Packets()), countTCP(capB.Packets())
			t.Logf("A: %v; B: %v", onA, onB)
			if onB != (tcpCount{}) {
				t.Errorf("B saw %v, want nothing", onB)
			}
			switch {
			case refused && onA.segments != 0:
				t.Errorf("A saw %v, want nothing: the socket is refused before any packet leaves", onA)
			case !refused && onA.payload < 2*exchangeBytes:
				t.Errorf("A saw %v, want at least %d bytes of data: the connection's", onA, 2*exchangeBytes)
			}
		})
	}
}

// A protoLog is a Control hook that records the SO_PROTOCOL of each socket
// it sees.
type protoLog struct {
	mu     sync.Mutex
	protos []int
}

func (l *protoLog) control(_, _ string, c syscall.RawConn) error {
	var proto int
	var err error
	if cerr := c.Control(func(fd uintptr) { proto, err = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL) }); cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.protos = append(l.protos, proto)
	l.mu.Unlock()
	return nil
}

func (l *protoLog) get() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.protos)
}

// exchangeBytes is how much data exchange sends each way: enough for the
// path manager to add subflows and for the scheduler to use them.
const exchangeBytes = 64 << 10

// exchange sends exchangeBytes over c in rounds, reads each round back from
// an echoOnce server, and checks that c ended up plain TCP.
func exchange(c *net.TCPConn) error {
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return err
	}
	chunk := bytes.Repeat([]byte("ifbind!\n"), 512)
	back := make([]byte, len(chunk))
	for sent := 0; sent < exchangeBytes; sent += len(chunk) {
		if _, err := c.Write(chunk); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, back); err != nil {
			return err
		}
		if !bytes.Equal(back, chunk) {
			return errors.New("the echo differs")
		}
	}
	if mp, err := c.MultipathTCP(); err != nil || mp {
		return fmt.Errorf("client conn: MultipathTCP() = %v, %v; want false: a plain TCP connection", mp, err)
	}
	return c.CloseWrite()
}

// echoOnce accepts one connection from ln, echoes it until EOF, and checks
// that it is plain TCP.
func echoOnce(ln net.Listener) error {
	c, err := ln.Accept()
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	// Not io.Copy, which would splice through a pipe that net keeps in a
	// pool, and the leak check would blame on the test.
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if mp, err := c.(*net.TCPConn).MultipathTCP(); err != nil || mp {
		return fmt.Errorf("accepted conn: MultipathTCP() = %v, %v; want false", mp, err)
	}
	return nil
}

// TestMultipathTCPGodebug proves that GODEBUG=multipathtcp=1, which makes
// every net.Dialer and net.ListenConfig Multipath TCP by default, fails a
// Dialer's TCP dials before any socket exists and leaves its UDP dials and
// a ListenConfig's listeners alone (plain TCP), and that SetMultipathTCP(false)
// is the fix the error names. Not parallel: it sets the environment.
func TestMultipathTCPGodebug(t *testing.T) {
	testnet.Require(t)
	t.Setenv("GODEBUG", "multipathtcp=1")
	ctx := context.Background()
	const lo = 1
	ln, err := (&ListenConfig{Index: lo}).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	defer ln.Close()
	if got := sockProtocol(t, ln.(*net.TCPListener)); got != unix.IPPROTO_TCP {
		t.Errorf("SO_PROTOCOL of the listener = %d, want IPPROTO_TCP (%d)", got, unix.IPPROTO_TCP)
	}
	d := &Dialer{Index: lo}
	if !d.MultipathTCP() {
		t.Fatal("GODEBUG=multipathtcp=1 did not turn Multipath TCP on in the Dialer")
	}
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if c != nil {
		c.Close()
	}
	wantMPTCPRefused(t, err, lo)
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Source != nil {
		t.Errorf("the refused dial has a source address %v: a socket was made", oe.Source)
	}
	uc, err := d.DialContext(ctx, "udp", ln.Addr().String())
	if err != nil {
		t.Errorf("failed to dial UDP, which Multipath TCP does not concern: %v", err)
	} else {
		uc.Close()
	}
	d.SetMultipathTCP(false)
	c, err = d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("failed to dial with SetMultipathTCP(false): %v", err)
	}
	defer c.Close()
	if got := sockProtocol(t, c.(*net.TCPConn)); got != unix.IPPROTO_TCP {
		t.Errorf("SO_PROTOCOL of the conn = %d, want IPPROTO_TCP (%d)", got, unix.IPPROTO_TCP)
	}
}
