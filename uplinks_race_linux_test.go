package ifbind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
)

// Hostile tests of Race, whose primary dials on the caller's context and
// is abandoned through its socket, whose next attempts a sharded clock
// starts, and whose racers are pooled. The first two tests failed on the
// commit that made it so (d2c5ad1).

// attackAsk asks the peer over c and checks that the side that answered is
// want, that UplinkOf names it, and that c is the *net.TCPConn to raddr.
func attackAsk(t *testing.T, tp *testnet.Topo, c net.Conn, raddr string, want *testnet.Side) {
	t.Helper()
	if _, ok := c.(*net.TCPConn); !ok {
		t.Errorf("conn is a %T, want *net.TCPConn", c)
	}
	if got := c.RemoteAddr().String(); got != raddr {
		t.Errorf("conn goes to %s, want %s (another dial's conn?)", got, raddr)
	}
	l, ok := UplinkOf(c)
	if !ok || l.Index != want.Index {
		t.Errorf("UplinkOf = %v, %v; want %s", l, ok, want.LinkName)
	}
	got, err := testnet.Ask(c)
	if err != nil {
		t.Errorf("ask: %v", err)
	} else if got != want.Name {
		t.Errorf("peer %s answered, want %s", got, want.Name)
	}
}

// TestAttackRacePanicHook: a caller's Control hook that panics, or calls
// runtime.Goexit (t.FailNow in a test's hook), in the primary; the caller
// recovers, as net/http's server does for handlers. dialUplinks' deferred
// putRacer then puts the racer back in the pool while the race is not
// over: its primary's raceStart still in raceClock ("panic", "goexit":
// when it comes due, fire calls due on the reset racer, whose raceRunner
// is nil: a nil dereference in the timer's goroutine crashes the process),
// or the winner's conn in r.conn, dropped unclosed ("late": the hook
// panics once b has connected). Each runs in a child process.
func TestAttackRacePanicHook(t *testing.T) {
	if mode := os.Getenv("IFBIND_ATTACK_CHILD"); mode != "" {
		attackPanicChild(t, mode)
		return
	}
	for _, mode := range []string{"panic", "goexit", "late", "swap"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestAttackRacePanicHook$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), "IFBIND_ATTACK_CHILD="+mode)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("%s in the primary's Control hook, recovered: the child failed: %v\n%s", mode, err, lastLines(string(out), 25))
			}
		})
	}
}

func lastLines(s string, n int) string {
	for _, mark := range []string{"WRONG CONN", "still open", "panic:", "DATA RACE"} {
		if i := strings.Index(s, mark); i >= 0 {
			s = s[i:]
			break
		}
	}
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[:n]
	}
	return strings.Join(l, "\n")
}

func attackPanicChild(t *testing.T, mode string) {
	if mode == "swap" {
		attackSwapChild(t)
		return
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var first atomic.Bool
	delay := 100 * time.Millisecond
	if mode == "late" {
		delay = 20 * time.Millisecond
	}
	u := &Uplinks{Bindings: []Binding{IndexBinding(1), IndexBinding(1)}, Strategy: Race, FallbackDelay: delay}
	u.Control = func(string, string, syscall.RawConn) error {
		if !first.CompareAndSwap(false, true) {
			return nil // the secondary's socket: not held
		}
		switch mode {
		case "goexit":
			runtime.Goexit()
		case "late":
			time.Sleep(300 * time.Millisecond) // b connects meanwhile
		}
		panic("caller's hook panics")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { t.Logf("recovered: %v", recover()) }()
		c, err := u.Dial("tcp4", ln.Addr().String())
		if err == nil {
			c.Close()
		}
	}()
	<-done
	if mode != "late" {
		time.Sleep(500 * time.Millisecond) // the primary's raceStart comes due after 100 ms
		return
	}
	// b's conn won, and the dial panicked: nobody has it; it must have
	// been closed (the peer reads EOF), not left open.
	select {
	case c := <-accepted:
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("the winner's conn, which no caller got, is still open 2 s after the dial: peer reads %v, want EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("b never connected")
	}
}

// attackSwapChild: the primary of u1's dial panics while u1's secondary
// is still in its hook; the caller recovers and dials u2, to another
// address, on the same goroutine (one P: the pool hands it u1's racer).
// u1's secondary then connects, into u2's race: u2's dial returns u1's
// conn, to the wrong address, or the process crashes.
func attackSwapChild(t *testing.T) {
	runtime.GOMAXPROCS(1)
	listen := func() net.Listener {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		return ln
	}
	l1, l2 := listen(), listen()
	defer l1.Close()
	defer l2.Close()
	var n1, n2 atomic.Int32
	u1 := &Uplinks{Bindings: []Binding{IndexBinding(1), IndexBinding(1)}, Strategy: Race, FallbackDelay: 20 * time.Millisecond}
	u1.Control = func(string, string, syscall.RawConn) error {
		if n1.Add(1) == 1 {
			time.Sleep(60 * time.Millisecond)
			panic("u1's primary hook panics")
		}
		time.Sleep(150 * time.Millisecond) // u1's secondary: connects once u2 dials
		return nil
	}
	u2 := &Uplinks{Bindings: []Binding{IndexBinding(1), IndexBinding(1)}, Strategy: Race, FallbackDelay: 20 * time.Millisecond}
	u2.Control = func(string, string, syscall.RawConn) error {
		if n2.Add(1) == 1 {
			time.Sleep(400 * time.Millisecond)
			return nil
		}
		time.Sleep(3 * time.Second)
		return nil
	}
	func() {
		defer func() { recover() }()
		c, err := u1.Dial("tcp4", l1.Addr().String())
		if err == nil {
			c.Close()
		}
	}()
	c, err := u2.Dial("tcp4", l2.Addr().String())
	if err != nil {
		fmt.Fprintf(os.Stderr, "u2's dial: %v\n", err)
		t.Errorf("u2's dial: %v", err)
		return
	}
	defer c.Close()
	if got := c.RemoteAddr().String(); got != l2.Addr().String() {
		fmt.Fprintf(os.Stderr, "WRONG CONN: u2 dialed %s, got a conn to %s (u1's)\n", l2.Addr(), got)
		t.Errorf("u2 dialed %s, got a conn to %s", l2.Addr(), got)
	}
}

// TestAttackRaceConcurrent: 200 goroutines share two Uplinks at once: one
// dials IPv4, whose primary is black-holed (b wins after FallbackDelay),
// the other IPv6, whose primary is healthy (a wins). Pooled racers are
// reused from one dial to the next: a conn, uplink or clock entry of a
// previous dial would show as a conn to the wrong address or side. After
// all, no socket is left connecting, and testnet.New checks for leaks.
func TestAttackRaceConcurrent(t *testing.T) {
	f := newUpFix(t, testnet.Port)
	tp := f.tp
	tp.ServeNames(t)
	blackhole(t, tp.A.Peer, testnet.ClientV4)
	mk := func() *Uplinks {
		u := &Uplinks{Bindings: []Binding{f.m.Follow(tp.A.LinkName), f.m.Follow(tp.B.LinkName)}, Strategy: Race, FallbackDelay: 20 * time.Millisecond}
		u.Timeout = 30 * time.Second
		return u
	}
	u4, u6 := mk(), mk()
	a4 := netip.AddrPortFrom(testnet.PeerV4, testnet.Port).String()
	a6 := netip.AddrPortFrom(testnet.PeerV6, testnet.Port).String()
	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, addr, want := u4, a4, tp.B
			if i%2 == 1 {
				u, addr, want = u6, a6, tp.A
			}
			c, err := u.DialContext(context.Background(), "tcp", addr)
			if err != nil {
				t.Errorf("dial %d %s: %v", i, addr, err)
				return
			}
			defer c.Close()
			if want == tp.A { // healthy, but b may connect first under load
				if l, _ := UplinkOf(c); l.Index == tp.B.Index {
					want = tp.B
				}
			}
			attackAsk(t, tp, c, addr, want)
		}()
	}
	wg.Wait()
	if idx := connecting(t, testnet.Port); len(idx) != 0 {
		t.Errorf("sockets still connecting after every dial returned, bound to %v", idx)
	}
	// An IPv6 primary slower than 20 ms under load lets b's attempt
	// connect too; it loses and is closed: b may accept a few more.
	if a, b := tp.A.Seen.Load(), tp.B.Seen.Load(); a > n/2 || b < n/2 || a+b < n {
		t.Errorf("connections accepted by peers a, b: %d, %d; want at most %d, at least %d, %d in all or more", a, b, n/2, n/2, n)
	}
}

// TestAttackRaceCancel cancels the caller's context mid-race: before the
// fallback delay (only the primary started) and after it (both started,
// both black-holed). The error is the cancellation, names each uplink, and
// no socket is left connecting; b gets no SYN when cancelled before.
func TestAttackRaceCancel(t *testing.T) {
	f := newUpFix(t, testnet.Port)
	tp := f.tp
	blackhole(t, tp.A.Peer, testnet.ClientV4)
	u := &Uplinks{Bindings: []Binding{f.m.Follow(tp.A.LinkName), f.m.Follow(tp.B.LinkName)}, Strategy: Race}

	run := func(stage string, delay, after time.Duration, wantTried [2]bool) {
		t.Helper()
		u.FallbackDelay = delay
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(after, cancel)
		c, err := u.DialContext(ctx, "tcp", peerAddr)
		cancel()
		if err == nil {
			c.Close()
			t.Fatalf("%s: dial succeeded", stage)
		}
		var ue *UplinksError
		if !errors.As(err, &ue) || len(ue.Uplinks) != 2 || !errors.Is(err, context.Canceled) {
			t.Fatalf("%s: got %v, want an *UplinksError of 2, context.Canceled", stage, err)
		}
		for i, a := range ue.Uplinks {
			if a.Tried != wantTried[i] || !errors.Is(a.Err, context.Canceled) {
				t.Errorf("%s: uplink %d: tried %v, %v; want tried %v, canceled", stage, i, a.Tried, a.Err, wantTried[i])
			}
		}
		if !strings.Contains(err.Error(), "[1] follow "+tp.A.LinkName) || !strings.Contains(err.Error(), "[2] follow "+tp.B.LinkName) {
			t.Errorf("%s: %q does not name each uplink", stage, err)
		}
		if idx := connecting(t, testnet.Port); len(idx) != 0 {
			t.Errorf("%s: sockets still connecting after the dial returned, bound to %v", stage, idx)
		}
	}
	run("before the delay", time.Hour, 100*time.Millisecond, [2]bool{true, false})
	if c := f.counts(); c[1] != 0 {
		t.Errorf("before the delay: SYNs received by peer b: %d, want 0", c[1])
	}
	blackhole(t, tp.B.Peer, testnet.ClientV4)
	run("after the delay", 20*time.Millisecond, 300*time.Millisecond, [2]bool{true, true})
}

// TestAttackRaceShortTimeout: Timeout shorter than FallbackDelay. The
// secondary never starts: b gets no SYN, the error is a timeout and says
// so for each uplink.
//
// A negative FallbackDelay disables the race, as in net.Dialer: the next
// uplink is dialed only once the previous one failed, so that a
// black-holed primary keeps the whole time.
func TestAttackRaceShortTimeout(t *testing.T) {
	f := newUpFix(t, testnet.Port)
	tp := f.tp
	blackhole(t, tp.A.Peer, testnet.ClientV4)
	for _, delay := range []time.Duration{time.Hour, -1} {
		t.Run(fmt.Sprint("delay=", delay), func(t *testing.T) {
			raceShortTimeout(t, f, delay)
		})
	}
}

func raceShortTimeout(t *testing.T, f *upFix, delay time.Duration) {
	tp := f.tp
	before := f.counts()
	u := &Uplinks{Bindings: []Binding{f.m.Follow(tp.A.LinkName), f.m.Follow(tp.B.LinkName)}, Strategy: Race, FallbackDelay: delay}
	u.Timeout = 400 * time.Millisecond
	c, err := u.Dial("tcp", peerAddr)
	if err == nil {
		c.Close()
		t.Fatal("dial succeeded")
	}
	var ue *UplinksError
	var ne net.Error
	if !errors.As(err, &ue) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("got %v, want an *UplinksError that is a timeout", err)
	}
	if a := ue.Uplinks[1]; a.Tried || !errors.Is(a.Err, context.DeadlineExceeded) {
		t.Errorf("uplink b: tried %v, %v; want not tried, deadline exceeded", a.Tried, a.Err)
	}
	if c := f.counts(); c[1] != before[1] || c[0] == before[0] {
		t.Errorf("SYNs received by peers a, b: %d, %d; want some, 0", c[0]-before[0], c[1]-before[1])
	}
	if idx := connecting(t, testnet.Port); len(idx) != 0 {
		t.Errorf("sockets still connecting after the dial returned, bound to %v", idx)
	}
}

// TestAttackRaceTinyDelay: FallbackDelay of 1 ns, both uplinks healthy, so
// that both attempts connect at nearly the same moment; and 6 uplinks
// (past the 4 a racer held inline), the usable ones black-holed but the
// last. Every conn answers from the side UplinkOf names; no socket is left
// connecting; a hook on every socket sees it bound.
func TestAttackRaceTinyDelay(t *testing.T) {
	f := newUpFix(t, testnet.Port)
	tp := f.tp
	tp.ServeNames(t)
	side := map[int]*testnet.Side{tp.A.Index: tp.A, tp.B.Index: tp.B}
	u := &Uplinks{Bindings: []Binding{f.m.Follow(tp.A.LinkName), f.m.Follow(tp.B.LinkName)}, Strategy: Race, FallbackDelay: time.Nanosecond}
	u.Timeout = 20 * time.Second
	var unbound sync.Map
	u.ControlContext = func(_ context.Context, _, _ string, c syscall.RawConn) error {
		idx, err := readBound(c)
		if err != nil || (idx != tp.A.Index && idx != tp.B.Index) {
			unbound.Store(idx, err)
		}
		return err
	}
	dialN := func(stage string, k int, wantSide *testnet.Side) {
		t.Helper()
		var wg sync.WaitGroup
		for range k {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := u.Dial("tcp", peerAddr)
				if err != nil {
					t.Errorf("%s: %v", stage, err)
					return
				}
				defer c.Close()
				l, _ := UplinkOf(c)
				want := side[l.Index]
				if wantSide != nil {
					want = wantSide
				}
				if want == nil {
					t.Errorf("%s: UplinkOf = %v, neither side", stage, l)
					return
				}
				attackAsk(t, tp, c, peerAddr, want)
			}()
		}
		wg.Wait()
		if idx := connecting(t, testnet.Port); len(idx) != 0 {
			t.Errorf("%s: sockets still connecting after the dials returned, bound to %v", stage, idx)
		}
	}
	dialN("1ns, both healthy", 50, nil)

	blackhole(t, tp.A.Peer, testnet.ClientV4)
	fa := f.m.Follow(tp.A.LinkName)
	u.Bindings = []Binding{fa, f.m.Follow("nosuch0"), nil, fa, IndexBinding(tp.A.Index), f.m.Follow(tp.B.LinkName)}
	dialN("6 uplinks, 1ns", 20, tp.B)
	u.FallbackDelay = 20 * time.Millisecond
	dialN("6 uplinks, 20ms", 20, tp.B)

	// Bindings changed between dials: shorter, then longer, then b first.
	u.Bindings = []Binding{fa}
	u.Timeout = 300 * time.Millisecond
	c, err := u.Dial("tcp", peerAddr)
	var ue *UplinksError
	if err == nil {
		c.Close()
		t.Errorf("one black-holed uplink: dial succeeded")
	} else if !errors.As(err, &ue) || len(ue.Uplinks) != 1 {
		t.Errorf("one black-holed uplink: got %v, want an *UplinksError of 1", err)
	}
	u.Timeout = 20 * time.Second
	u.Bindings = []Binding{fa, fa, fa, fa, fa, fa, fa, f.m.Follow(tp.B.LinkName)}
	dialN("8 uplinks", 10, tp.B)
	u.Bindings = []Binding{f.m.Follow(tp.B.LinkName), fa}
	dialN("b first", 10, tp.B)
	unbound.Range(func(k, v any) bool {
		t.Errorf("a socket was bound to %v (%v) when the hook ran", k, v)
		return true
	})
}

// TestAttackRaceHookFails: the caller's hook fails for a's sockets: the
// primary fails before its connect (nothing reaches peer a) and b is
// dialed at once, not after FallbackDelay (an hour here; the context's
// 20 s would end the dial otherwise).
func TestAttackRaceHookFails(t *testing.T) {
	f := newUpFix(t, testnet.Port)
	tp := f.tp
	tp.ServeNames(t)
	errHook := errors.New("hook says no")
	u := &Uplinks{Bindings: []Binding{f.m.Follow(tp.A.LinkName), f.m.Follow(tp.B.LinkName)}, Strategy: Race, FallbackDelay: time.Hour}
	u.Control = func(_, _ string, c syscall.RawConn) error {
		if idx, err := readBound(c); err != nil || idx == tp.A.Index {
			return errHook
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := u.DialContext(ctx, "tcp", peerAddr)
	if err != nil {
		t.Fatalf("got %v, want b to connect at once", err)
	}
	attackAsk(t, tp, c, peerAddr, tp.B)
	c.Close()
	if n := f.counts(); n != [2]int64{0, 1} {
		t.Errorf("SYNs received by peers a, b: %v, want [0 1]", n)
	}
	// Both fail: the error names each, with the hook's error.
	u.Control = func(string, string, syscall.RawConn) error { return errHook }
	_, err = u.DialContext(ctx, "tcp", peerAddr)
	var ue *UplinksError
	if !errors.As(err, &ue) || len(ue.Uplinks) != 2 || !ue.Uplinks[0].Tried || !ue.Uplinks[1].Tried ||
		!errors.Is(ue.Uplinks[0].Err, errHook) || !errors.Is(ue.Uplinks[1].Err, errHook) {
		t.Errorf("got %v, want both uplinks tried, failed with %v", err, errHook)
	}
}

// TestAttackRaceRefusedPrimary: peer a refuses (nothing listens on the
// port there), b accepts: b must be dialed at once, and win.
func TestAttackRaceRefusedPrimary(t *testing.T) {
	const port = 7011
	f := newUpFix(t, port)
	tp := f.tp
	var ln net.Listener
	if err := tp.B.Peer.Do(func() (err error) { ln, err = net.Listen("tcp", ":"+strconv.Itoa(port)); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("b"))
			c.Close()
		}
	}()
	addr := netip.AddrPortFrom(testnet.PeerV4, port).String()
	u := &Uplinks{Bindings: []Binding{f.m.Follow(tp.A.LinkName), f.m.Follow(tp.B.LinkName)}, Strategy: Race, FallbackDelay: time.Hour}
	for i := range 20 {
		if i%2 == 1 {
			u.FallbackDelay = math.MaxInt64 // no overflow in the clock
		} else {
			u.FallbackDelay = time.Hour
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := u.DialContext(ctx, "tcp", addr)
		cancel()
		if err != nil {
			t.Fatalf("dial %d: %v, want b to connect once a refused", i, err)
		}
		if l, _ := UplinkOf(c); l.Index != tp.B.Index {
			t.Errorf("dial %d: UplinkOf = %v, want %s", i, l, tp.B.LinkName)
		}
		c.Close()
	}
	if n := f.counts(); n != [2]int64{20, 20} {
		t.Errorf("SYNs received by peers a, b: %v, want [20 20]", n)
	}
}

// TestAttackRaceDialTCPLaddr: DialTCP with a fixed local address and port,
// the primary black-holed: b's socket is bound to another NIC than a's,
// which still holds that port while connecting, so the bind must not
// conflict; the conn has that local address.
func TestAttackRaceDialTCPLaddr(t *testing.T) {
	f := newUpFix(t, testnet.Port)
	tp := f.tp
	tp.ServeNames(t)
	blackhole(t, tp.A.Peer, testnet.ClientV4)
	u := &Uplinks{Bindings: []Binding{f.m.Follow(tp.A.LinkName), f.m.Follow(tp.B.LinkName)}, Strategy: Race, FallbackDelay: 20 * time.Millisecond}
	u.Timeout = 20 * time.Second
	for _, laddr := range []netip.AddrPort{
		netip.AddrPortFrom(testnet.ClientV4, 0),
		netip.AddrPortFrom(testnet.ClientV4, 40123),
	} {
		c, err := u.DialTCP(context.Background(), "tcp4", laddr, netip.AddrPortFrom(testnet.PeerV4, testnet.Port))
		if err != nil {
			t.Errorf("laddr %v: %v", laddr, err)
			continue
		}
		if got := c.LocalAddr().(*net.TCPAddr).AddrPort(); got.Addr() != laddr.Addr() || laddr.Port() != 0 && got.Port() != laddr.Port() {
			t.Errorf("laddr %v: local address %v", laddr, got)
		}
		attackAsk(t, tp, c, peerAddr, tp.B)
		c.Close()
	}
	if idx := connecting(t, testnet.Port); len(idx) != 0 {
		t.Errorf("sockets still connecting after the dials returned, bound to %v", idx)
	}
}

// TestAttackRaceName: a dial to a name, the primary black-holed: b wins;
// the name is resolved through b's peer's DNS.
func TestAttackRaceName(t *testing.T) {
	f := newUpFix(t, testnet.Port)
	tp := f.tp
	tp.ServeNames(t)
	testnet.StartDNS(t, tp.B.Peer, testnet.PeerV4.String()+" up.test\n")
	blackhole(t, tp.A.Peer, testnet.ClientV4)
	u := &Uplinks{Bindings: []Binding{f.m.Follow(tp.A.LinkName), f.m.Follow(tp.B.LinkName)}, Strategy: Race, FallbackDelay: 20 * time.Millisecond}
	u.Timeout = 20 * time.Second
	dnsB := &Dialer{Index: tp.B.Index}
	u.Resolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dnsB.DialContext(ctx, network, netip.AddrPortFrom(testnet.PeerV4, 53).String())
	}}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := u.Dial("tcp4", "up.test:"+strconv.Itoa(testnet.Port))
			if err != nil {
				t.Errorf("dial up.test: %v", err)
				return
			}
			defer c.Close()
			attackAsk(t, tp, c, peerAddr, tp.B)
		}()
	}
	wg.Wait()
	if idx := connecting(t, testnet.Port); len(idx) != 0 {
		t.Errorf("sockets still connecting after the dials returned, bound to %v", idx)
	}
}

// TestAttackRacePrimaryHookContext: the caller's ControlContext honours its
// context (a rate limiter, a semaphore: it waits for a slot or for ctx to
// end). The primary's hook waits; b connects after FallbackDelay. The
// primary was abandoned, but its hook got the caller's own context, which
// nothing cancels: the dial does not return, though b won, until the
// caller's context ends (here, until the test releases the hook after
// 10 s). Before d2c5ad1, and in net.Dialer's Happy Eyeballs, the primary's
// context is cancelled once another attempt connects.
func TestAttackRacePrimaryHookContext(t *testing.T) {
	f := newUpFix(t, testnet.Port)
	tp := f.tp
	tp.ServeNames(t)
	release := make(chan struct{})
	errReleased := errors.New("released by the test")
	u := &Uplinks{Bindings: []Binding{f.m.Follow(tp.A.LinkName), f.m.Follow(tp.B.LinkName)}, Strategy: Race, FallbackDelay: 20 * time.Millisecond}
	u.ControlContext = func(ctx context.Context, _, _ string, c syscall.RawConn) error {
		if idx, err := readBound(c); err != nil || idx != tp.A.Index {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-release:
			return errReleased
		}
	}
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := u.DialContext(context.Background(), "tcp", peerAddr)
		done <- result{c, err}
	}()
	var r result
	hung := false
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		hung = true
		t.Errorf("b connected (peer b accepted %d), yet the dial had not returned 10 s later: the abandoned primary's hook waits on a context nothing cancels", tp.B.Seen.Load())
		close(release)
		r = <-done
	}
	if r.err != nil {
		t.Fatalf("dial: %v", r.err)
	}
	if !hung { // else peer b's server timed the conn out meanwhile
		attackAsk(t, tp, r.c, peerAddr, tp.B)
	}
	r.c.Close()
	if n := f.counts(); n != [2]int64{0, 1} {
		t.Errorf("SYNs received by peers a, b: %v, want [0 1]", n)
	}
}

// TestAttackRaceMPTCP: a template with Multipath TCP on. net would dial
// MPTCP, then plain TCP again on any error (a second socket in the
// primary, whose hook would find the race's state already raceSock).
// ifbind refuses Multipath TCP before any packet: each uplink says so,
// and no peer gets a SYN.
func TestAttackRaceMPTCP(t *testing.T) {
	f := newUpFix(t, testnet.Port)
	tp := f.tp
	u := &Uplinks{Bindings: []Binding{f.m.Follow(tp.A.LinkName), f.m.Follow(tp.B.LinkName)}, Strategy: Race, FallbackDelay: time.Nanosecond}
	u.SetMultipathTCP(true)
	_, err := u.Dial("tcp", peerAddr)
	var ue *UplinksError
	if !errors.As(err, &ue) || len(ue.Uplinks) != 2 {
		t.Fatalf("got %v, want an *UplinksError of 2", err)
	}
	for i, a := range ue.Uplinks {
		if !a.Tried || !errors.Is(a.Err, errMultipathTCP) {
			t.Errorf("uplink %d: tried %v, %v; want tried, %v", i, a.Tried, a.Err, errMultipathTCP)
		}
	}
	if n := f.counts(); n != [2]int64{0, 0} {
		t.Errorf("SYNs received by peers a, b: %v, want none", n)
	}
}

// TestAttackRaceManyFail: six uplinks (past the 4 a racer held inline),
// every usable one black-holed, FallbackDelay 1 ns, Timeout 500 ms. The
// error lists all six in order: the usable ones tried and timed out, the
// others not tried with their cause; nothing is left connecting.
func TestAttackRaceManyFail(t *testing.T) {
	f := newUpFix(t, testnet.Port)
	tp := f.tp
	blackhole(t, tp.A.Peer, testnet.ClientV4)
	blackhole(t, tp.B.Peer, testnet.ClientV4)
	fa, fb := f.m.Follow(tp.A.LinkName), f.m.Follow(tp.B.LinkName)
	u := &Uplinks{Bindings: []Binding{fa, f.m.Follow("nosuch0"), nil, fb, IndexBinding(tp.A.Index), fb}, Strategy: Race, FallbackDelay: time.Nanosecond}
	u.Timeout = 500 * time.Millisecond
	for i := range 5 {
		c, err := u.Dial("tcp", peerAddr)
		if err == nil {
			c.Close()
			t.Fatalf("dial %d succeeded", i)
		}
		var ue *UplinksError
		if !errors.As(err, &ue) || len(ue.Uplinks) != 6 || !ue.Timeout() {
			t.Fatalf("dial %d: got %v, want an *UplinksError of 6 that timed out", i, err)
		}
		for j, a := range ue.Uplinks {
			var want error = context.DeadlineExceeded
			tried := true
			switch j {
			case 1:
				want, tried = syscall.ENODEV, false
			case 2:
				want, tried = syscall.EINVAL, false
			}
			var ne net.Error
			timedOut := errors.Is(a.Err, want) || want == context.DeadlineExceeded && errors.As(a.Err, &ne) && ne.Timeout()
			if a.Binding != u.Bindings[j] || a.Tried != tried || !timedOut {
				t.Errorf("dial %d, uplink %d: %v, tried %v, %v; want tried %v, %v", i, j, a.Binding, a.Tried, a.Err, tried, want)
			}
		}
		if idx := connecting(t, testnet.Port); len(idx) != 0 {
			t.Errorf("dial %d: sockets still connecting after the dial returned, bound to %v", i, idx)
		}
	}
	if n := f.counts(); n[0] == 0 || n[1] == 0 {
		t.Errorf("SYNs received by peers a, b: %v, want some on each", n)
	}
}

// TestUplinksErrorNamesIndexBinding checks that the error of a dial
// through an IndexBinding names its link as well as its index, looked up
// once the dial failed: the binding has no table of names.
func TestUplinksErrorNamesIndexBinding(t *testing.T) {
	testnet.Require(t)
	lo, err := LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: refused
	for _, st := range []Strategy{Fallback, Race} {
		u := &Uplinks{Bindings: []Binding{IndexBinding(lo.Index)}, Strategy: st}
		_, err := u.Dial("tcp4", addr)
		var ue *UplinksError
		if !errors.As(err, &ue) || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("%s: got %v, want an *UplinksError, refused", st, err)
		}
		if l := ue.Uplinks[0].Link; l.Index != lo.Index || l.Name != "lo" {
			t.Errorf("%s: Uplinks[0].Link = %d %q, want %d lo", st, l.Index, l.Name, lo.Index)
		}
		if want := fmt.Sprintf("[1] index %d (lo): ", lo.Index); !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not contain %q", st, err, want)
		}
	}
}
