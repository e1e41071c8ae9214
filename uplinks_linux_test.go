package ifbind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// An upFix is a topology whose two client NICs are the uplinks, a
// monitor of them, and the SYNs each peer received.
type upFix struct {
	tp   *testnet.Topo
	m    *Monitor
	syns map[*testnet.Side]*testnet.Capture
	port int // where the SYNs counted go
}

func newUpFix(t *testing.T, port int) *upFix {
	t.Helper()
	tp := testnet.New(t)
	m, err := NewMonitor(context.Background())
	if err != nil {
		t.Fatalf("failed to start the monitor: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	f := &upFix{tp: tp, m: m, syns: map[*testnet.Side]*testnet.Capture{}, port: port}
	for _, s := range tp.Sides() {
		f.syns[s] = s.Capture(t)
	}
	tp.WaitReady(t)
	for _, s := range tp.Sides() {
		f.waitUsable(t, s, true)
	}
	return f
}

// waitUsable waits until the monitor has s usable for IPv4, or not. Once
// usable again, it also waits until s carries packets both ways: the first
// exchange after a link comes back loses its first packet here (a dial
// takes one second, a SYN retransmission), and Race would rightly pick
// the other uplink.
func (f *upFix) waitUsable(t *testing.T, s *testnet.Side, want bool) {
	t.Helper()
	settle(t, f.m, fmt.Sprintf("%s usable: %v", s.LinkName, want), func(*snapshot) bool {
		_, err := usable(f.m.Follow(s.LinkName), need{v4: true})
		return (err == nil) == want
	})
	if !want {
		return
	}
	f.tp.WaitReady(t)
	// A port nobody listens on: refused, and not counted as an attempt.
	d := &Dialer{Index: s.Index}
	d.Timeout = 10 * time.Second
	c, err := d.Dial("tcp4", netip.AddrPortFrom(testnet.PeerV4, 9).String())
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("%s does not carry packets: got %v, want connection refused", s.LinkName, err)
	}
}

// attempt matches the TCP connection attempts (SYNs without ACK,
// retransmissions included) a peer received for f.port, IPv4 and IPv6:
// what the kernel received, whether or not a listener ever accepted them.
func (f *upFix) attempt(p testnet.Packet) bool {
	return !p.Outgoing && p.SYN() && p.DstPort() == f.port
}

// counts returns the SYNs each peer has received.
func (f *upFix) counts() [2]int64 {
	return [2]int64{int64(f.syns[f.tp.A].Count(f.attempt)), int64(f.syns[f.tp.B].Count(f.attempt))}
}

// setPeer sets the peer end of s down or up: the client NIC loses or gets
// back its carrier.
func setPeer(t *testing.T, s *testnet.Side, up bool) {
	t.Helper()
	h, err := netlink.NewHandleAt(netns.NsHandle(s.Peer.FD()))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	l, err := h.LinkByIndex(s.PeerIndex)
	if err != nil {
		t.Fatal(err)
	}
	set := h.LinkSetDown
	if up {
		set = h.LinkSetUp
	}
	if err := set(l); err != nil {
		t.Fatalf("failed to set eth0 of peer %s up=%v: %v", s.Name, up, err)
	}
}

// setClient sets the client NIC of s down or up.
func setClient(t *testing.T, s *testnet.Side, up bool) {
	t.Helper()
	l, err := netlink.LinkByIndex(s.Index)
	if err != nil {
		t.Fatal(err)
	}
	set := netlink.LinkSetDown
	if up {
		set = netlink.LinkSetUp
	}
	if err := set(l); err != nil {
		t.Fatalf("failed to set %s up=%v: %v", s.LinkName, up, err)
	}
}

// unblackhole undoes blackhole.
func unblackhole(t *testing.T, ns *testnet.NS, addr netip.Addr) {
	t.Helper()
	route := &netlink.Route{
		Dst:  &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(addr.BitLen(), addr.BitLen())},
		Type: unix.RTN_BLACKHOLE,
	}
	if err := ns.Do(func() error { return netlink.RouteDel(route) }); err != nil {
		t.Fatalf("failed to remove the blackhole of %v: %v", addr, err)
	}
}

// connecting lists the indexes of the TCP sockets still connecting
// (SYN_SENT) to the peers' IPv4 address and port.
func connecting(t *testing.T, port int) []int {
	t.Helper()
	socks, err := netlink.SocketDiagTCP(unix.AF_INET)
	if err != nil {
		t.Fatalf("failed to list sockets: %v", err)
	}
	var idx []int
	for _, so := range socks {
		dst, _ := netip.AddrFromSlice(so.ID.Destination)
		if so.State == tcpSynSent && dst.Unmap() == testnet.PeerV4 && int(so.ID.DestinationPort) == port {
			idx = append(idx, int(so.ID.Interface))
		}
	}
	return idx
}

var peerAddr = netip.AddrPortFrom(testnet.PeerV4, testnet.Port).String()

// askVia dials the peers through u and returns which side answered; it
// checks that UplinkOf names the link of that side, by index and name.
func (f *upFix) askVia(t *testing.T, u *Uplinks) string {
	t.Helper()
	c, err := u.DialContext(context.Background(), "tcp", peerAddr)
	if err != nil {
		t.Fatalf("%s: failed to dial: %v", u.Strategy, err)
	}
	defer c.Close()
	if _, ok := c.(*net.TCPConn); !ok {
		t.Errorf("conn is a %T, want a *net.TCPConn", c)
	}
	got, err := testnet.Ask(c)
	if err != nil {
		t.Fatalf("%s: failed to ask: %v", u.Strategy, err)
	}
	l, ok := UplinkOf(c)
	want := f.tp.A
	if got == "b" {
		want = f.tp.B
	}
	if !ok || l.Index != want.Index || l.Name != want.LinkName {
		t.Errorf("%s: UplinkOf = %v, %v; want %s (index %d), the side that answered", u.Strategy, l, ok, want.LinkName, want.Index)
	}
	return got
}

// expect dials through u with each strategy and checks that side answered,
// that exactly the SYNs of those dials reached side's peer and none the
// other's, and that the dial made sockets bound to sockets, in order (by
// default only side's: an unusable uplink gets no socket, and Race does not
// wait on it).
func (f *upFix) expect(t *testing.T, stage string, u *Uplinks, side string, sockets ...int) {
	t.Helper()
	want := [2]int64{1, 0}
	if side == "b" {
		want = [2]int64{0, 1}
	}
	if sockets == nil {
		sockets = []int{f.tp.A.Index}
		if side == "b" {
			sockets = []int{f.tp.B.Index}
		}
	}
	for _, st := range []Strategy{Fallback, Race} {
		u.Strategy = st
		var mu sync.Mutex
		var bound []int
		u.ControlContext = func(_ context.Context, _, _ string, c syscall.RawConn) error {
			idx, err := readBound(c)
			mu.Lock()
			bound = append(bound, idx)
			mu.Unlock()
			return err
		}
		before := f.counts()
		if got := f.askVia(t, u); got != side {
			t.Errorf("%s, %s: peer %s answered, want %s", stage, st, got, side)
		}
		u.ControlContext = nil
		d := f.counts()
		d[0] -= before[0]
		d[1] -= before[1]
		if d != want {
			t.Errorf("%s, %s: SYNs received by peers a, b: %v, want %v", stage, st, d, want)
		}
		mu.Lock()
		if fmt.Sprint(bound) != fmt.Sprint(sockets) {
			t.Errorf("%s, %s: sockets bound to %v, want %v", stage, st, bound, sockets)
		}
		mu.Unlock()
	}
}

// TestUplinksFailover runs two uplinks through what a phone or a multi-WAN
// box meets: the primary healthy, losing its carrier, set down, black-holed
// (with each strategy), then back. Every stage counts the SYNs each peer
// received: no attempt crossed an uplink it was not bound to.
func TestUplinksFailover(t *testing.T) {
	f := newUpFix(t, testnet.Port)
	tp := f.tp
	tp.ServeNames(t)
	pinB, err := f.m.Pin(tp.B.LinkName)
	if err != nil {
		t.Fatal(err)
	}
	u := &Uplinks{Bindings: []Binding{f.m.Follow(tp.A.LinkName), pinB}}
	u.FallbackDelay = 50 * time.Millisecond

	f.expect(t, "primary healthy", u, "a")
	ib := &Uplinks{Bindings: []Binding{IndexBinding(tp.A.Index), IndexBinding(tp.B.Index)}}
	f.expect(t, "index bindings, primary healthy", ib, "a")

	setPeer(t, tp.A, false)
	f.waitUsable(t, tp.A, false)
	f.expect(t, "primary without carrier", u, "b")
	setPeer(t, tp.A, true)
	f.waitUsable(t, tp.A, true)
	f.expect(t, "carrier back", u, "a")

	setClient(t, tp.A, false)
	f.waitUsable(t, tp.A, false)
	f.expect(t, "primary down", u, "b")
	// Without a monitor, a link that is down is tried, and fails fast
	// (no route through it): Fallback moves on at once.
	f.expect(t, "index bindings, primary down", ib, "b", tp.A.Index, tp.B.Index)
	setClient(t, tp.A, true)
	f.waitUsable(t, tp.A, true)
	f.expect(t, "primary up again", u, "a")

	// The primary's peer drops its answers: SYNs arrive, nothing returns.
	blackhole(t, tp.A.Peer, testnet.ClientV4)
	var (
		mu    sync.Mutex
		bound []int // what each attempt's socket was bound to when the template's hook ran
	)
	var overlap bool // b's socket was made while a's was still connecting
	u.ControlContext = func(_ context.Context, _, _ string, c syscall.RawConn) error {
		idx, err := readBound(c)
		pending := false
		if idx == tp.B.Index {
			socks, derr := netlink.SocketDiagTCP(unix.AF_INET)
			if derr != nil {
				return derr
			}
			for _, so := range socks {
				pending = pending || so.State == tcpSynSent && int(so.ID.Interface) == tp.A.Index
			}
		}
		mu.Lock()
		bound = append(bound, idx)
		overlap = overlap || pending
		mu.Unlock()
		return err
	}
	u.Timeout = 30 * time.Second // Fallback's share of it: 15 s
	for _, tc := range []struct {
		st      Strategy
		timeout time.Duration
	}{
		{Race, 30 * time.Second},
		{Fallback, 4 * time.Second}, // two seconds each
	} {
		u.Strategy, u.Timeout = tc.st, tc.timeout
		mu.Lock()
		bound, overlap = nil, false
		mu.Unlock()
		before := f.counts()
		if got := f.askVia(t, u); got != "b" {
			t.Errorf("primary black-holed, %s: peer %s answered, want b", tc.st, got)
		}
		after := f.counts()
		if after[0] == before[0] || after[1] != before[1]+1 {
			t.Errorf("primary black-holed, %s: SYNs received by peers a, b: %d, %d; want some, 1",
				tc.st, after[0]-before[0], after[1]-before[1])
		}
		if idx := connecting(t, testnet.Port); len(idx) != 0 {
			t.Errorf("primary black-holed, %s: sockets still connecting after the dial returned, bound to %v", tc.st, idx)
		}
		mu.Lock()
		if want := []int{tp.A.Index, tp.B.Index}; fmt.Sprint(bound) != fmt.Sprint(want) {
			t.Errorf("primary black-holed, %s: the template's hook saw sockets bound to %v, want %v", tc.st, bound, want)
		}
		// Race starts b while a still waits; Fallback abandons a first.
		if overlap != (tc.st == Race) {
			t.Errorf("primary black-holed, %s: b's attempt began while a's was connecting: %v, want %v", tc.st, overlap, tc.st == Race)
		}
		mu.Unlock()
	}

	// The primary's own hook is slow: it returns only once b has won.
	// Its socket then never connects, and sends nothing; left alone, it
	// would send its SYNs into the black hole until the dial's timeout.
	u.Strategy, u.Timeout = Race, 5*time.Second
	bWon := make(chan struct{})
	u.ControlContext = func(_ context.Context, _, _ string, c syscall.RawConn) error {
		switch idx, _ := readBound(c); idx {
		case tp.A.Index:
			<-bWon
		case tp.B.Index:
			time.AfterFunc(200*time.Millisecond, func() { close(bWon) })
		}
		return nil
	}
	before := f.counts()
	if got := f.askVia(t, u); got != "b" {
		t.Errorf("primary held in its hook: peer %s answered, want b", got)
	}
	if after := f.counts(); after[0] != before[0] || after[1] != before[1]+1 {
		t.Errorf("primary held in its hook: SYNs received by peers a, b: %d, %d; want 0, 1",
			after[0]-before[0], after[1]-before[1])
	}
	if idx := connecting(t, testnet.Port); len(idx) != 0 {
		t.Errorf("primary held in its hook: sockets still connecting after the dial returned, bound to %v", idx)
	}
	u.ControlContext = nil

	// Both black-holed: the dial runs out of time, and says so of each.
	blackhole(t, tp.B.Peer, testnet.ClientV4)
	for _, tc := range []struct {
		st        Strategy
		triedBoth bool
	}{
		{Race, true},
		{Fallback, false}, // the first uplink's share is the whole second
	} {
		u.Strategy, u.Timeout = tc.st, time.Second
		c, err := u.Dial("tcp", peerAddr)
		if err == nil {
			c.Close()
			t.Fatalf("both black-holed, %s: dial succeeded", tc.st)
		}
		var ue *UplinksError
		if !errors.As(err, &ue) || len(ue.Uplinks) != 2 {
			t.Fatalf("both black-holed, %s: got %v, want an *UplinksError of 2 uplinks", tc.st, err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("both black-holed, %s: %v is not a timeout", tc.st, err)
		}
		if a, b := ue.Uplinks[0], ue.Uplinks[1]; !a.Tried || a.Link.Index != tp.A.Index || b.Tried != tc.triedBoth || b.Link.Index != tp.B.Index {
			t.Errorf("both black-holed, %s: got %+v, %+v; want a tried, b tried: %v", tc.st, a, b, tc.triedBoth)
		}
		for _, s := range []string{"follow " + tp.A.LinkName, "pin " + tp.B.LinkName} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("both black-holed, %s: %q does not name %s", tc.st, err, s)
			}
		}
		if !tc.triedBoth && !strings.Contains(err.Error(), "not tried: context deadline exceeded") {
			t.Errorf("both black-holed, %s: %q does not say why b was not tried", tc.st, err)
		}
		if idx := connecting(t, testnet.Port); len(idx) != 0 {
			t.Errorf("both black-holed, %s: sockets still connecting after the dial returned, bound to %v", tc.st, idx)
		}
	}
	unblackhole(t, tp.B.Peer, testnet.ClientV4)
	unblackhole(t, tp.A.Peer, testnet.ClientV4)
	u.Timeout = 0
	f.expect(t, "primary back", u, "a")
}

// TestUplinksNotUsable proves that a dial with no usable uplink fails
// before any packet leaves, with an error that names each uplink and why.
func TestUplinksNotUsable(t *testing.T) {
	f := newUpFix(t, testnet.Port)
	tp := f.tp
	pinB, err := f.m.Pin(tp.B.LinkName)
	if err != nil {
		t.Fatal(err)
	}
	setPeer(t, tp.B, false)
	f.waitUsable(t, tp.B, false)
	u := &Uplinks{Bindings: []Binding{f.m.Follow("nosuch0"), pinB, IndexBinding(0), nil, f.m.Follow(tp.A.LinkName)}}
	for _, st := range []Strategy{Fallback, Race} {
		u.Strategy = st
		// The last uplink is usable and tried: it has no route to that
		// prefix, a failure as fast as an unusable uplink's.
		c, err := u.DialContext(context.Background(), "tcp6", "[2001:db8:77::2]:7007")
		if err == nil {
			c.Close()
			t.Fatalf("%s: dial succeeded", st)
		}
		var ue *UplinksError
		if !errors.As(err, &ue) || len(ue.Uplinks) != 5 {
			t.Fatalf("%s: got %v, want an *UplinksError of 5 uplinks", st, err)
		}
		want := []error{syscall.ENODEV, syscall.ENETDOWN, syscall.EINVAL, syscall.EINVAL, nil}
		for i, a := range ue.Uplinks[:4] {
			if a.Tried || !errors.Is(a.Err, want[i]) {
				t.Errorf("%s: uplink %d: tried %v, %v; want not tried, %v", st, i, a.Tried, a.Err, want[i])
			}
		}
		if a := ue.Uplinks[4]; !a.Tried || !errors.Is(a.Err, syscall.ENETUNREACH) || a.Link.Index != tp.A.Index {
			t.Errorf("%s: last uplink: %+v; want tried through %s, network unreachable", st, a, tp.A.LinkName)
		}
		if !strings.Contains(err.Error(), "[2] pin "+tp.B.LinkName) || !strings.Contains(err.Error(), "not tried: interface "+strconv.Itoa(tp.B.Index)+" ("+tp.B.LinkName+"): no carrier") {
			t.Errorf("%s: %q does not say why %s was not tried", st, err, tp.B.LinkName)
		}
	}
	if c := f.counts(); c != [2]int64{0, 0} {
		t.Errorf("SYNs received by peers a, b: %v, want none", c)
	}
}

// TestUplinksTemplate proves that an Uplinks whose template binds, or that
// has no uplinks, fails every dial.
func TestUplinksTemplate(t *testing.T) {
	for _, tc := range []struct {
		u    *Uplinks
		want error
	}{
		{&Uplinks{Dialer: Dialer{Index: 1}, Bindings: []Binding{IndexBinding(1)}}, errTemplateBinds},
		{&Uplinks{Dialer: Dialer{Binding: IndexBinding(1)}, Bindings: []Binding{IndexBinding(1)}}, errTemplateBinds},
		{&Uplinks{}, errNoUplinks},
	} {
		c, err := tc.u.Dial("tcp", "127.0.0.1:9")
		if err == nil {
			c.Close()
		}
		var oe *net.OpError
		if !errors.Is(err, tc.want) || !errors.Is(err, syscall.EINVAL) || !errors.As(err, &oe) || oe.Op != "dial" {
			t.Errorf("%+v: got %v, want a dial *net.OpError of %v", tc.u, err, tc.want)
		}
	}
	if _, err := (&Uplinks{Bindings: []Binding{IndexBinding(1)}}).NetDialer().Dial("tcp", "127.0.0.1:9"); !errors.Is(err, errUplinksNetDialer) {
		t.Errorf("NetDialer: got %v, want %v", err, errUplinksNetDialer)
	}
}

// TestUplinksTransport proves that one http.Client fails over between
// uplinks: its next connection goes through the secondary once the
// primary has lost its carrier, and through the primary once it is back.
func TestUplinksTransport(t *testing.T) {
	port, _ := strconv.Atoi(httpPort)
	f := newUpFix(t, port)
	tp := f.tp
	w := serveWeb(t, tp)
	u := &Uplinks{Bindings: []Binding{f.m.Follow(tp.A.LinkName), f.m.Follow(tp.B.LinkName)}, Strategy: Race}
	tr := NewTransport(u)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	url := "http://" + net.JoinHostPort(testnet.PeerV4.String(), httpPort) + "/"
	fetch := func(stage, want string) {
		t.Helper()
		tr.CloseIdleConnections() // a new connection, through the uplink of the moment
		_, body, err := get(context.Background(), c, url)
		if err != nil {
			t.Fatalf("%s: failed to get: %v", stage, err)
		}
		if !strings.HasPrefix(body, want+" ") {
			t.Errorf("%s: answered %q, want from peer %s", stage, body, want)
		}
	}
	fetch("primary healthy", "a")
	setPeer(t, tp.A, false)
	f.waitUsable(t, tp.A, false)
	fetch("primary without carrier", "b")
	setPeer(t, tp.A, true)
	f.waitUsable(t, tp.A, true)
	fetch("primary back", "a")
	if a, b := w.requests["a"].Load(), w.requests["b"].Load(); a != 2 || b != 1 {
		t.Errorf("requests served by peers a, b: %d, %d; want 2, 1", a, b)
	}
	if c := f.counts(); c != [2]int64{2, 1} {
		t.Errorf("SYNs received by peers a, b: %v, want [2 1]", c)
	}
}

// TestAbandonSocketBeforeConnect checks the moment a race's winner can
// meet: the primary's socket recorded, its connect not made yet (its
// Control hook has returned). A shutdown then fails with ENOTCONN (the
// kernel only marks the socket's reading side shut), so abandonSocket
// makes it again until the connect is made, which it then disconnects or
// leaves to be closed. It needs no privilege: loopback only.
func TestAbandonSocketBeforeConnect(t *testing.T) {
	// Nothing accepts: an EOF can only come from the shutdown.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		go func() {
			abandonSocket(c)
			close(done)
		}()
		select {
		case <-done:
			t.Error("abandonSocket returned before the socket connected")
		case <-time.After(50 * time.Millisecond):
		}
		return nil
	}}
	c, err := d.Dial("tcp4", ln.Addr().String())
	<-done
	if err != nil {
		return // disconnected while connecting
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read from an abandoned conn: %d, %v; want 0, EOF", n, err)
	}
}
