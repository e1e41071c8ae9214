package ifbind

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// readBound reads back, from the kernel, the index the socket behind c is
// bound to (0 for none).
func readBound(c syscall.RawConn) (int, error) {
	var index int
	var serr error
	if err := c.Control(func(fd uintptr) {
		index, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, os.NewSyscallError("getsockopt", serr)
	}
	return index, nil
}

// boundIndexOf reads back the index c's socket is bound to.
func boundIndexOf(t testing.TB, c syscall.Conn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatalf("failed to get the raw conn: %v", err)
	}
	index, err := readBound(rc)
	if err != nil {
		t.Fatalf("failed to read SO_BINDTOIFINDEX: %v", err)
	}
	return index
}

// dialMethods are every way a Dialer dials a stream or datagram conn.
var dialMethods = []struct {
	name string
	dial func(ctx context.Context, d *Dialer, network string, raddr netip.AddrPort) (net.Conn, error)
}{
	{"Dial", func(_ context.Context, d *Dialer, network string, raddr netip.AddrPort) (net.Conn, error) {
		return d.Dial(network, raddr.String())
	}},
	{"DialContext", func(ctx context.Context, d *Dialer, network string, raddr netip.AddrPort) (net.Conn, error) {
		return d.DialContext(ctx, network, raddr.String())
	}},
	{"DialTCP/DialUDP", func(ctx context.Context, d *Dialer, network string, raddr netip.AddrPort) (net.Conn, error) {
		if network[:3] == "tcp" {
			return d.DialTCP(ctx, network, netip.AddrPort{}, raddr)
		}
		return d.DialUDP(ctx, network, netip.AddrPort{}, raddr)
	}},
	{"NetDialer", func(ctx context.Context, d *Dialer, network string, raddr netip.AddrPort) (net.Conn, error) {
		return d.NetDialer().DialContext(ctx, network, raddr.String())
	}},
}

func TestDialerReachesItsOwnPeer(t *testing.T) {
	tp := testnet.New(t)
	tp.ServeNames(t)
	ctx := context.Background()
	want := int64(0)
	for _, m := range dialMethods {
		for _, ip := range []netip.Addr{testnet.PeerV4, testnet.PeerV6} {
			for _, network := range []string{"tcp", "udp"} {
				raddr := netip.AddrPortFrom(ip, testnet.Port)
				for _, s := range tp.Sides() {
					d := &Dialer{Index: s.Index}
					c, err := m.dial(ctx, d, network, raddr)
					if err != nil {
						t.Fatalf("%s: failed to dial %s %v on %s: %v", m.name, network, raddr, s.LinkName, err)
					}
					if got := boundIndexOf(t, c.(syscall.Conn)); got != s.Index {
						t.Errorf("%s: %s %v: bound to index %d, want %d", m.name, network, raddr, got, s.Index)
					}
					got, err := testnet.Ask(c)
					c.Close()
					if err != nil {
						t.Fatalf("%s: failed to ask %s %v on %s: %v", m.name, network, raddr, s.LinkName, err)
					}
					if got != s.Name {
						t.Errorf("%s: %s %v bound to %s: answered by %q, want %q", m.name, network, raddr, s.LinkName, got, s.Name)
					}
				}
				want++
			}
		}
	}
	if a, b := tp.A.Seen.Load(), tp.B.Seen.Load(); a != want || b != want {
		t.Errorf("peers saw a=%d b=%d, want %d each", a, b, want)
	}
}

// TestDialIP proves raw IP sockets bound: an ICMP echo request sent through
// DialIP reaches only the bound NIC's peer, which a raw socket there counts.
func TestDialIP(t *testing.T) {
	tp := testnet.New(t)
	for _, fam := range []struct {
		network string
		peer    netip.Addr
		echo    byte // ICMP echo request type
	}{
		{"ip4:icmp", testnet.PeerV4, 8},
		{"ip6:ipv6-icmp", testnet.PeerV6, 128},
	} {
		var seen [2]atomic.Int64
		for i, s := range tp.Sides() {
			var pc net.PacketConn
			if err := s.Peer.Do(func() (err error) {
				pc, err = net.ListenPacket(fam.network, "")
				return err
			}); err != nil {
				t.Fatalf("failed to listen for ICMP in peer %s: %v", s.Name, err)
			}
			t.Cleanup(func() { pc.Close() })
			go func() {
				buf := make([]byte, 1500)
				for {
					n, _, err := pc.ReadFrom(buf)
					if err != nil {
						return
					}
					if n > 0 && buf[0] == fam.echo {
						seen[i].Add(1)
					}
				}
			}()
		}
		for i, s := range tp.Sides() {
			d := &Dialer{Index: s.Index}
			c, err := d.DialIP(context.Background(), fam.network, netip.Addr{}, fam.peer)
			if err != nil {
				t.Fatalf("failed to DialIP %s %v on %s: %v", fam.network, fam.peer, s.LinkName, err)
			}
			if got := boundIndexOf(t, c); got != s.Index {
				t.Errorf("DialIP %s: bound to index %d, want %d", fam.network, got, s.Index)
			}
			msg := echoRequest(fam.echo, uint16(i+1))
			if _, err := c.Write(msg); err != nil {
				t.Fatalf("failed to send an echo request: %v", err)
			}
			// The reply comes from the bound NIC's peer, which the
			// raw socket there counted first.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 1500)
			if _, _, err := c.ReadFrom(buf); err != nil {
				t.Fatalf("no echo reply through %s: %v", s.LinkName, err)
			}
			c.Close()
		}
		// Each peer's raw socket got its request before the kernel
		// answered it; give its reader a moment to count it.
		for deadline := time.Now().Add(5 * time.Second); seen[0].Load()+seen[1].Load() < 2 && time.Now().Before(deadline); {
			time.Sleep(5 * time.Millisecond)
		}
		if a, b := seen[0].Load(), seen[1].Load(); a != 1 || b != 1 {
			t.Errorf("%s: peers saw a=%d b=%d echo requests, want 1 each", fam.network, a, b)
		}
	}
}

// echoRequest makes an ICMP or ICMPv6 echo request. The kernel fills in the
// ICMPv6 checksum; the ICMPv4 one is computed here.
func echoRequest(typ byte, seq uint16) []byte {
	b := []byte{typ, 0, 0, 0, 0x1f, 0xb1, byte(seq >> 8), byte(seq), 'i', 'f', 'b'}
	if typ == 8 {
		var sum uint32
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(b[2:], ^uint16(sum))
	}
	return b
}

// deadIndex returns an index that named an interface a moment ago and names
// none now.
func deadIndex(t *testing.T) int {
	t.Helper()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ifb-dead"}, PeerName: "ifb-dead-p"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("failed to add a veth: %v", err)
	}
	l, err := LinkByName("ifb-dead")
	if err != nil {
		t.Fatalf("failed to look up ifb-dead: %v", err)
	}
	if err := netlink.LinkDel(veth); err != nil {
		t.Fatalf("failed to delete ifb-dead: %v", err)
	}
	return l.Index
}

// badIndex is an index no socket may be bound to, and the errno its error
// unwraps to.
type badIndex struct {
	name  string
	index int
	want  error
}

// badIndexes returns the indexes every dial and listen must refuse, given
// one that named an interface a moment ago.
func badIndexes(missing int) []badIndex {
	bad := []badIndex{
		{"unset", 0, syscall.EINVAL},
		{"negative", -1, syscall.EINVAL},
		{"missing", missing, syscall.ENODEV},
	}
	if strconv.IntSize == 64 {
		wide := int64(1)<<32 + 1 // would be cut to 1, lo's index
		bad = append(bad, badIndex{"past 32 bits", int(wide), syscall.EINVAL})
	}
	return bad
}

func TestDialerFailsClosed(t *testing.T) {
	tp := testnet.New(t)
	tp.ServeNames(t)
	ctx := context.Background()
	missing := deadIndex(t)
	for _, tc := range badIndexes(missing) {
		for _, m := range dialMethods {
			for _, ip := range []netip.Addr{testnet.PeerV4, testnet.PeerV6} {
				for _, network := range []string{"tcp", "udp"} {
					raddr := netip.AddrPortFrom(ip, testnet.Port)
					d := &Dialer{Index: tc.index}
					c, err := m.dial(ctx, d, network, raddr)
					if err == nil {
						c.Close()
						t.Errorf("%s: %s: %s %v: dial succeeded, want an error", tc.name, m.name, network, raddr)
						continue
					}
					if m.name == "NetDialer" && tc.name == "missing" {
						// A plain *net.Dialer reports the kernel's
						// errno, which for IPv6 is ENETUNREACH.
						continue
					}
					checkBindError(t, err, tc.want, tc.index)
				}
			}
		}
	}
	if a, b := tp.A.Seen.Load(), tp.B.Seen.Load(); a != 0 || b != 0 {
		t.Errorf("peers saw a=%d b=%d, want nothing", a, b)
	}
}

// checkBindError asserts err is one *net.OpError around the error of a
// binding to index, unwrapping to want.
func checkBindError(t *testing.T, err, want error, index int) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("got %v, want an error for which errors.Is(err, %v)", err, want)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Errorf("got %T (%v), want a *net.OpError", err, err)
		return
	}
	var inner *net.OpError
	if errors.As(oe.Err, &inner) {
		t.Errorf("got %v: a *net.OpError inside a *net.OpError", err)
	}
	var be *BindError
	if !errors.As(err, &be) {
		t.Errorf("got %v, want a *BindError inside", err)
		return
	}
	if be.Index != index {
		t.Errorf("got index %d in %v, want %d", be.Index, err, index)
	}
}

func TestControlChaining(t *testing.T) {
	tp := testnet.New(t)
	tp.ServeNames(t)
	raddr := netip.AddrPortFrom(testnet.PeerV4, testnet.Port).String()
	errHook := errors.New("caller's hook says no")

	t.Run("ControlContext", func(t *testing.T) {
		var saw int
		d := &Dialer{Index: tp.B.Index}
		d.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
			saw = rawBoundIndex(t, c)
			return nil
		}
		d.Control = func(string, string, syscall.RawConn) error {
			t.Error("Control ran although ControlContext is set")
			return nil
		}
		askOK(t, d, raddr, "b")
		if saw != tp.B.Index {
			t.Errorf("ControlContext saw the socket bound to %d, want %d", saw, tp.B.Index)
		}
	})
	t.Run("Control", func(t *testing.T) {
		var saw int
		d := &Dialer{Index: tp.A.Index}
		d.Control = func(network, address string, c syscall.RawConn) error {
			saw = rawBoundIndex(t, c)
			return nil
		}
		askOK(t, d, raddr, "a")
		if saw != tp.A.Index {
			t.Errorf("Control saw the socket bound to %d, want %d", saw, tp.A.Index)
		}
	})
	before := tp.A.Seen.Load() + tp.B.Seen.Load()
	t.Run("ControlContextError", func(t *testing.T) {
		d := &Dialer{Index: tp.A.Index}
		d.ControlContext = func(context.Context, string, string, syscall.RawConn) error { return errHook }
		for _, network := range []string{"tcp", "udp"} {
			if c, err := d.Dial(network, raddr); !errors.Is(err, errHook) {
				if c != nil {
					c.Close()
				}
				t.Errorf("%s: got %v, want the hook's error", network, err)
			}
		}
	})
	t.Run("ControlError", func(t *testing.T) {
		d := &Dialer{Index: tp.A.Index}
		d.Control = func(string, string, syscall.RawConn) error { return errHook }
		if c, err := d.NetDialer().Dial("tcp", raddr); !errors.Is(err, errHook) {
			if c != nil {
				c.Close()
			}
			t.Errorf("got %v, want the hook's error", err)
		}
	})
	t.Run("ListenConfigControl", func(t *testing.T) {
		var saw int
		lc := &ListenConfig{Index: tp.A.Index}
		lc.Control = func(network, address string, c syscall.RawConn) error {
			saw = rawBoundIndex(t, c)
			return nil
		}
		ln, err := lc.Listen(context.Background(), "tcp", ":0")
		if err != nil {
			t.Fatalf("failed to listen: %v", err)
		}
		ln.Close()
		if saw != tp.A.Index {
			t.Errorf("Control saw the socket bound to %d, want %d", saw, tp.A.Index)
		}
		lc.Control = func(string, string, syscall.RawConn) error { return errHook }
		if _, err := lc.ListenPacket(context.Background(), "udp", ":0"); !errors.Is(err, errHook) {
			t.Errorf("got %v, want the hook's error", err)
		}
	})
	// One good dial to each peer after the aborted ones: each peer counts
	// it after anything an aborted dial could have sent before it.
	askOK(t, &Dialer{Index: tp.A.Index}, raddr, "a")
	askOK(t, &Dialer{Index: tp.B.Index}, raddr, "b")
	if after := tp.A.Seen.Load() + tp.B.Seen.Load(); after != before+2 {
		t.Errorf("peers saw %d more after aborted dials and 2 good ones, want 2", after-before)
	}
}

func rawBoundIndex(t *testing.T, c syscall.RawConn) int {
	index, err := readBound(c)
	if err != nil {
		t.Errorf("failed to read the binding back: %v", err)
	}
	return index
}

func askOK(t *testing.T, d *Dialer, raddr, want string) {
	t.Helper()
	c, err := d.Dial("tcp", raddr)
	if err != nil {
		t.Fatalf("failed to dial %s: %v", raddr, err)
	}
	defer c.Close()
	got, err := testnet.Ask(c)
	if err != nil {
		t.Fatalf("failed to ask %s: %v", raddr, err)
	}
	if got != want {
		t.Errorf("answered by %q, want %q", got, want)
	}
}

// TestDialUnix shows that Unix domain sockets pass through unbound: they
// reach no NIC, and Index is not consulted.
func TestDialUnix(t *testing.T) {
	path := t.TempDir() + "/s"
	ln, err := (&ListenConfig{}).Listen(context.Background(), "unix", path)
	if err != nil {
		t.Fatalf("failed to listen on %s: %v", path, err)
	}
	defer ln.Close()
	d := &Dialer{}
	c, err := d.Dial("unix", path)
	if err != nil {
		t.Fatalf("failed to dial %s: %v", path, err)
	}
	c.Close()
	uc, err := d.DialUnix(context.Background(), "unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatalf("failed to DialUnix %s: %v", path, err)
	}
	uc.Close()
}

// TestNetDialerKeepsItsBinding changes the Dialer after taking NetDialer and
// NetListenConfig copies: the copies keep binding where they were made to.
func TestNetDialerKeepsItsBinding(t *testing.T) {
	tp := testnet.New(t)
	tp.ServeNames(t)
	d := &Dialer{Index: tp.A.Index}
	nd := d.NetDialer()
	d.Index = tp.B.Index
	raddr := netip.AddrPortFrom(testnet.PeerV4, testnet.Port).String()
	c, err := nd.Dial("tcp", raddr)
	if err != nil {
		t.Fatalf("failed to dial through the copy: %v", err)
	}
	defer c.Close()
	if got := boundIndexOf(t, c.(syscall.Conn)); got != tp.A.Index {
		t.Errorf("the copy bound to %d, want %d as when it was made", got, tp.A.Index)
	}
	if got, err := testnet.Ask(c); err != nil || got != "a" {
		t.Errorf("the copy was answered by %q (%v), want \"a\"", got, err)
	}
	lc := &ListenConfig{Index: tp.B.Index}
	nlc := lc.NetListenConfig()
	lc.Index = tp.A.Index
	pc, err := nlc.ListenPacket(context.Background(), "udp", ":0")
	if err != nil {
		t.Fatalf("failed to listen through the copy: %v", err)
	}
	defer pc.Close()
	if got := boundIndexOf(t, pc.(syscall.Conn)); got != tp.B.Index {
		t.Errorf("the listen copy bound to %d, want %d", got, tp.B.Index)
	}
}
