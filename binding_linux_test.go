package ifbind

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
)

// upWithAddr brings l and its peer up and gives l a documentation address,
// so that a UDP dial to 198.51.100.2 routes through it.
func upWithAddr(t testing.TB, h *netlink.Handle, l netlink.Link, peer string) {
	t.Helper()
	addr, _ := netlink.ParseAddr("198.51.100.1/24")
	if err := h.AddrAdd(l, addr); err != nil {
		t.Fatalf("failed to add an address to %s: %v", l.Attrs().Name, err)
	}
	p, err := h.LinkByName(peer)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []netlink.Link{l, p} {
		if err := h.LinkSetUp(x); err != nil {
			t.Fatalf("failed to set %s up: %v", x.Attrs().Name, err)
		}
	}
}

// dialIn dials UDP to 198.51.100.2 in ns through d and returns the index
// the socket is bound to, or the error of the dial.
func dialIn(t testing.TB, ns *testnet.NS, d *Dialer) (int, error) {
	t.Helper()
	var c net.Conn
	err := ns.Do(func() (err error) {
		c, err = d.DialContext(context.Background(), "udp4", "198.51.100.2:9")
		return err
	})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return boundIndexOf(t, c.(*net.UDPConn)), nil
}

// TestBindingsDeleteRecreate deletes a link and creates another under the
// same name: follow binds the new one, pin fails closed.
func TestBindingsDeleteRecreate(t *testing.T) {
	ns, h := linkNS(t)
	first := addVeth(t, h, "wan", "wanp", 0)
	upWithAddr(t, h, first, "wanp")
	m := monitorIn(t, ns, monitorConfig{})
	settle(t, m, "wan up", func(s *snapshot) bool { e := s.byName["wan"]; return e != nil && e.link.Flags&net.FlagUp != 0 })
	follow := m.Follow("wan")
	pin, err := m.Pin("wan")
	if err != nil {
		t.Fatalf("failed to pin wan: %v", err)
	}

	check := func(stage string, b Binding, want int, wantErr error) {
		t.Helper()
		got, derr := dialIn(t, ns, &Dialer{Binding: b})
		lgot, lerr := listenIn(t, ns, &ListenConfig{Binding: b})
		if wantErr != nil {
			if !errors.Is(derr, wantErr) || !errors.Is(lerr, wantErr) {
				t.Errorf("%s: %s: dial got %d, %v; listen got %d, %v; want errors that are %v", stage, b, got, derr, lgot, lerr, wantErr)
			}
			var oe *net.OpError
			if !errors.As(derr, &oe) || oe.Op != "dial" {
				t.Errorf("%s: %s: dial error %v is not a *net.OpError of op dial", stage, b, derr)
			}
			return
		}
		if derr != nil || lerr != nil || got != want || lgot != want {
			t.Errorf("%s: %s: dial bound to %d, %v; listen bound to %d, %v; want %d", stage, b, got, derr, lgot, lerr, want)
		}
	}
	check("before", follow, first.Attrs().Index, nil)
	check("before", pin, first.Attrs().Index, nil)

	delLink(t, h, "wan")
	settle(t, m, "wan deleted", lacksName("wan"))
	check("deleted", follow, 0, syscall.ENODEV)
	check("deleted", pin, 0, ErrLinkGone)
	_, err = dialIn(t, ns, &Dialer{Binding: pin})
	if want := "ifbind: interface " + strconv.Itoa(first.Attrs().Index) + " (wan): link gone: deleted or moved to another namespace since it was pinned (no such device)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("pin error %q does not say %q", err, want)
	}

	second := addVeth(t, h, "wan", "wanp", 0)
	upWithAddr(t, h, second, "wanp")
	settle(t, m, "wan re-created and up", func(s *snapshot) bool { e := s.byName["wan"]; return e != nil && e.link.Flags&net.FlagUp != 0 })
	if second.Attrs().Index == first.Attrs().Index {
		t.Fatalf("the kernel gave the new link the old index %d", first.Attrs().Index)
	}
	check("re-created", follow, second.Attrs().Index, nil)
	check("re-created", pin, 0, ErrLinkGone)
}

// TestPinSameIndex deletes a pinned link and creates another with the same
// index (as `ip link add ... index N` does): the pin fails closed.
func TestPinSameIndex(t *testing.T) {
	ns, h := linkNS(t)
	first := addVeth(t, h, "wan", "wanp", 0)
	index := first.Attrs().Index
	m := monitorIn(t, ns, monitorConfig{})
	pin, err := m.Pin(strconv.Itoa(index))
	if err != nil {
		t.Fatalf("failed to pin index %d: %v", index, err)
	}
	if got, err := listenIn(t, ns, &ListenConfig{Binding: pin}); err != nil || got != index {
		t.Fatalf("pin before: bound to %d, %v; want %d", got, err, index)
	}
	delLink(t, h, "wan")
	again := addVeth(t, h, "lan", "lanp", index)
	if again.Attrs().Index != index {
		t.Fatalf("new link got index %d, want %d", again.Attrs().Index, index)
	}
	settle(t, m, "lan", hasName("lan"))
	if _, err := listenIn(t, ns, &ListenConfig{Binding: pin}); !errors.Is(err, ErrLinkGone) || !errors.Is(err, syscall.ENODEV) {
		t.Errorf("pin after its index was reused: got %v, want ErrLinkGone and ENODEV", err)
	}
	if _, err := pin.Link(); !errors.Is(err, ErrLinkGone) {
		t.Errorf("pin.Link after its index was reused: got %v, want ErrLinkGone", err)
	}
	if got, err := listenIn(t, ns, &ListenConfig{Binding: m.Follow("lan")}); err != nil || got != index {
		t.Errorf("follow lan: bound to %d, %v; want %d", got, err, index)
	}
}

// TestFollowRenameWhileDialing moves a name between two links over and over
// while sockets are made through a follow binding: every socket is bound to
// one of the two links or fails with ENODEV (while no link has the name),
// and once the monitor has seen a rename, sockets bind to the new holder.
func TestFollowRenameWhileDialing(t *testing.T) {
	ns, h := linkNS(t)
	a := addVeth(t, h, "wan", "ap", 0)
	b := addVeth(t, h, "spare", "bp", 0)
	ia, ib := a.Attrs().Index, b.Attrs().Index
	m := monitorIn(t, ns, monitorConfig{})
	lc := &ListenConfig{Binding: m.Follow("wan")}

	var stop atomic.Bool
	var wg sync.WaitGroup
	var bound, missed atomic.Int64
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			var pc net.PacketConn
			err := ns.Do(func() (err error) {
				pc, err = lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:0")
				return err
			})
			if err != nil {
				if !errors.Is(err, syscall.ENODEV) {
					select {
					case errs <- err:
					default:
					}
				}
				missed.Add(1)
				continue
			}
			rc, _ := pc.(*net.UDPConn).SyscallConn()
			got, _ := readBound(rc) // 0 on error: reported below
			pc.Close()
			if got != ia && got != ib {
				select {
				case errs <- errors.New("socket bound to index " + strconv.Itoa(got)):
				default:
				}
			}
			bound.Add(1)
		}
	}()

	holder, other := a, b
	for i := range 50 {
		for _, step := range []struct {
			l    netlink.Link
			name string
		}{{holder, "tmp"}, {other, "wan"}, {holder, "spare"}} {
			if err := h.LinkSetName(step.l, step.name); err != nil {
				t.Fatalf("round %d: failed to rename %d to %s: %v", i, step.l.Attrs().Index, step.name, err)
			}
		}
		holder, other = other, holder
		want := holder.Attrs().Index
		settle(t, m, "the rename", func(s *snapshot) bool { e := s.byName["wan"]; return e != nil && e.link.Index == want })
		if got, err := listenIn(t, ns, lc); err != nil || got != want {
			t.Fatalf("round %d: after the rename a socket bound to %d, %v; want %d", i, got, err, want)
		}
	}
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("a socket made during the renames: %v", err)
	default:
	}
	if bound.Load() == 0 {
		t.Errorf("no socket was made during the renames")
	}
	t.Logf("sockets bound during renames: %d; failed while no link had the name: %d", bound.Load(), missed.Load())
}

// TestBindingTraffic proves both modes on the two-NIC topology: follow
// "ifb-a" reaches peer a, then, once the names are swapped, peer b; a pin
// taken before the swap keeps reaching peer a; a listener following
// "ifb-a" receives only what arrives through the link with that name.
func TestBindingTraffic(t *testing.T) {
	tp := testnet.New(t)
	tp.ServeNames(t)
	m, err := NewMonitor(context.Background())
	if err != nil {
		t.Fatalf("failed to start the monitor: %v", err)
	}
	defer m.Close()
	follow := m.Follow("ifb-a")
	pin, err := m.Pin("ifb-a")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	peer := netip.AddrPortFrom(testnet.PeerV4, testnet.Port)
	ask := func(b Binding) string {
		t.Helper()
		for _, network := range []string{"udp4", "tcp4"} {
			d := &Dialer{Binding: b}
			d.Timeout = 5 * time.Second
			c, err := d.DialContext(ctx, network, peer.String())
			if err != nil {
				t.Fatalf("%s: failed to dial %s: %v", b, network, err)
			}
			got, err := testnet.Ask(c)
			c.Close()
			if err != nil {
				t.Fatalf("%s: failed to ask over %s: %v", b, network, err)
			}
			if network == "tcp4" {
				return got
			}
		}
		panic("unreachable")
	}
	if got := ask(follow); got != "a" {
		t.Errorf("follow ifb-a: answered by %q, want a", got)
	}

	// Swap the names: renaming needs the links down.
	h, err := netlink.NewHandle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	la, _ := h.LinkByIndex(tp.A.Index)
	lb, _ := h.LinkByIndex(tp.B.Index)
	for _, step := range []func() error{
		func() error { return h.LinkSetDown(la) },
		func() error { return h.LinkSetDown(lb) },
		func() error { return h.LinkSetName(la, "ifb-t") },
		func() error { return h.LinkSetName(lb, "ifb-a") },
		func() error { return h.LinkSetName(la, "ifb-b") },
		func() error { return h.LinkSetUp(la) },
		func() error { return h.LinkSetUp(lb) },
	} {
		if err := step(); err != nil {
			t.Fatalf("failed to swap the names: %v", err)
		}
	}
	// WaitUp would return at once on the table from before the swap.
	settle(t, m, "the names swapped and the links up", func(s *snapshot) bool {
		a, b := s.byName["ifb-a"], s.byName["ifb-b"]
		return a != nil && b != nil && a.link.Index == tp.B.Index && b.link.Index == tp.A.Index &&
			a.link.Flags&net.FlagUp != 0 && b.link.Flags&net.FlagUp != 0
	})
	if got := ask(follow); got != "b" {
		t.Errorf("follow ifb-a after the swap: answered by %q, want b", got)
	}
	if got := ask(pin); got != "a" {
		t.Errorf("pin of the first ifb-a after the swap: answered by %q, want a", got)
	}

	// A listener following ifb-a (now side b's link) hears side b only.
	lc := &ListenConfig{Binding: follow}
	pc, err := lc.ListenPacket(ctx, "udp4", ":7100")
	if err != nil {
		t.Fatalf("failed to listen: %v", err)
	}
	defer pc.Close()
	if got := boundIndexOf(t, pc.(*net.UDPConn)); got != tp.B.Index {
		t.Fatalf("listener bound to %d, want %d", got, tp.B.Index)
	}
	send := func(s *testnet.Side, msg string) {
		err := s.Peer.Do(func() error {
			c, err := net.Dial("udp4", net.JoinHostPort(testnet.ClientV4.String(), "7100"))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte(msg))
			return err
		})
		if err != nil {
			t.Fatalf("failed to send from peer %s: %v", s.Name, err)
		}
	}
	send(tp.A, "from a")
	send(tp.B, "from b")
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "from b" {
		t.Fatalf("listener read %q, %v; want \"from b\"", buf[:n], err)
	}
	if !testnet.Quiet(pc, 200*time.Millisecond) {
		t.Errorf("listener following ifb-a (side b's link) also heard side a")
	}
}

// TestBindingWithIndexFails checks that Index and Binding together fail
// closed, on every path.
func TestBindingWithIndexFails(t *testing.T) {
	testnet.Require(t)
	m, err := NewMonitor(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b := m.Follow("lo")
	ctx := context.Background()
	d := &Dialer{Index: 1, Binding: b}
	_, err = d.DialContext(ctx, "udp4", "127.0.0.1:9")
	var oe *net.OpError
	if !errors.Is(err, syscall.EINVAL) || !errors.As(err, &oe) || oe.Op != "dial" {
		t.Errorf("Dialer with Index and Binding: got %v, want a dial *net.OpError that is EINVAL", err)
	}
	_, err = d.NetDialer().DialContext(ctx, "udp4", "127.0.0.1:9")
	if !errors.Is(err, errBothSet) {
		t.Errorf("NetDialer with Index and Binding: got %v, want errBothSet", err)
	}
	lc := &ListenConfig{Index: 1, Binding: b}
	if _, err := lc.ListenPacket(ctx, "udp4", "127.0.0.1:0"); !errors.Is(err, errBothSet) {
		t.Errorf("ListenConfig with Index and Binding: got %v, want errBothSet", err)
	}
	if _, err := lc.NetListenConfig().ListenPacket(ctx, "udp4", "127.0.0.1:0"); !errors.Is(err, errBothSet) {
		t.Errorf("NetListenConfig with Index and Binding: got %v, want errBothSet", err)
	}

	// Follow through NetDialer and NetListenConfig binds as the methods do.
	lo, err := m.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	c, err := (&Dialer{Binding: b}).NetDialer().DialContext(ctx, "udp4", "127.0.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := boundIndexOf(t, c.(*net.UDPConn)); got != lo.Index {
		t.Errorf("NetDialer with follow lo: bound to %d, want %d", got, lo.Index)
	}
	pc, err := (&ListenConfig{Binding: b}).NetListenConfig().ListenPacket(ctx, "udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if got := boundIndexOf(t, pc.(*net.UDPConn)); got != lo.Index {
		t.Errorf("NetListenConfig with follow lo: bound to %d, want %d", got, lo.Index)
	}
	// A follow of a name no link has fails closed and names the name.
	_, err = (&Dialer{Binding: m.Follow("lp")}).DialContext(ctx, "udp4", "127.0.0.1:9")
	if !errors.Is(err, syscall.ENODEV) || err.Error() != "dial udp4 127.0.0.1:9: ifbind: interface lp: no link by that name; did you mean lo?" {
		t.Errorf("follow of a missing name: got %v", err)
	}
	// An empty name says so, rather than "no link by that name".
	_, err = (&Dialer{Binding: m.Follow("")}).DialContext(ctx, "udp4", "127.0.0.1:9")
	if !errors.Is(err, syscall.ENODEV) || err.Error() != "dial udp4 127.0.0.1:9: ifbind: follow: the interface name is empty: no such device" {
		t.Errorf("follow of an empty name: got %v", err)
	}
	if _, err := m.Follow("").Link(); !errors.Is(err, errEmptyFollow) {
		t.Errorf("Follow(\"\").Link(): got %v, want errEmptyFollow", err)
	}
}

// TestBindingRunsCallerHooks checks that a Binding binds first and then
// runs the caller's Control or ControlContext, which sees the socket bound
// and whose error aborts it, for Dialer and ListenConfig alike.
func TestBindingRunsCallerHooks(t *testing.T) {
	testnet.Require(t)
	m, err := NewMonitor(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	lo, err := m.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	pin, err := m.Pin("lo")
	if err != nil {
		t.Fatal(err)
	}
	errHook := errors.New("caller's hook says no")
	for _, b := range []Binding{m.Follow("lo"), pin} {
		for _, fail := range []bool{false, true} {
			var seen int
			check := func(c syscall.RawConn) error {
				seen, _ = readBound(c)
				if fail {
					return errHook
				}
				return nil
			}
			ctl := func(_, _ string, c syscall.RawConn) error { return check(c) }
			ctlCtx := func(_ context.Context, _, _ string, c syscall.RawConn) error { return check(c) }
			runs := map[string]func() error{
				"Dialer.Control": func() error {
					d := &Dialer{Binding: b}
					d.Control = ctl
					c, err := d.Dial("udp4", "127.0.0.1:9")
					if err == nil {
						c.Close()
					}
					return err
				},
				"Dialer.ControlContext": func() error {
					d := &Dialer{Binding: b}
					d.Control = func(string, string, syscall.RawConn) error {
						return errors.New("Control ran; ControlContext should have")
					}
					d.ControlContext = ctlCtx
					c, err := d.Dial("udp4", "127.0.0.1:9")
					if err == nil {
						c.Close()
					}
					return err
				},
				"ListenConfig.Control": func() error {
					lc := &ListenConfig{Binding: b}
					lc.Control = ctl
					pc, err := lc.ListenPacket(context.Background(), "udp4", "127.0.0.1:0")
					if err == nil {
						pc.Close()
					}
					return err
				},
			}
			for name, run := range runs {
				seen = -1
				err := run()
				if fail && !errors.Is(err, errHook) || !fail && err != nil {
					t.Errorf("%s, %s, hook failing %v: got %v", b, name, fail, err)
				}
				if seen != lo.Index {
					t.Errorf("%s, %s: the caller's hook saw the socket bound to %d, want %d", b, name, seen, lo.Index)
				}
			}
		}
	}
}
