package ifbind

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// linkNS makes a namespace for a test's links and a netlink handle in it.
func linkNS(t testing.TB) (*testnet.NS, *netlink.Handle) {
	t.Helper()
	ns := testnet.NewNS(t)
	h, err := netlink.NewHandleAt(netns.NsHandle(ns.FD()))
	if err != nil {
		t.Fatalf("failed to open a netlink handle in the namespace: %v", err)
	}
	t.Cleanup(h.Close)
	return ns, h
}

// addVeth adds a veth pair, both ends in h's namespace and down, the first
// end with the given index when it is not 0, and returns the first end.
func addVeth(t testing.TB, h *netlink.Handle, name, peer string, index int) netlink.Link {
	t.Helper()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name, Index: index}, PeerName: peer}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("failed to add veth %s (index %d): %v", name, index, err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("failed to look up %s: %v", name, err)
	}
	return l
}

func delLink(t testing.TB, h *netlink.Handle, name string) {
	t.Helper()
	l, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("failed to look up %s: %v", name, err)
	}
	if err := h.LinkDel(l); err != nil {
		t.Fatalf("failed to delete %s: %v", name, err)
	}
}

// monitorIn starts a Monitor in ns, closed when the test ends.
func monitorIn(t testing.TB, ns *testnet.NS, cfg monitorConfig) *Monitor {
	t.Helper()
	var m *Monitor
	err := ns.Do(func() (err error) {
		m, err = newMonitor(context.Background(), cfg)
		return err
	})
	if err != nil {
		t.Fatalf("failed to start the monitor: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// settle waits until cond holds of m's table, bounded so that a broken
// monitor fails the test instead of hanging it.
func settle(t testing.TB, m *Monitor, what string, cond func(s *snapshot) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		s := m.load()
		if cond(s) {
			return
		}
		if s.err != nil {
			t.Fatalf("monitor stopped while waiting until %s: %v", what, s.err)
		}
		select {
		case <-s.changed:
		case <-ctx.Done():
			t.Fatalf("monitor never saw %s", what)
		}
	}
}

func hasName(name string) func(*snapshot) bool {
	return func(s *snapshot) bool { return s.byName[name] != nil }
}

func lacksName(name string) func(*snapshot) bool {
	return func(s *snapshot) bool { return s.byName[name] == nil }
}

// listenIn makes a UDP socket in ns through lc and returns the index it is
// bound to, or the error of the listen.
func listenIn(t testing.TB, ns *testnet.NS, lc *ListenConfig) (int, error) {
	t.Helper()
	var pc net.PacketConn
	err := ns.Do(func() (err error) {
		pc, err = lc.ListenPacket(context.Background(), "udp4", "0.0.0.0:0")
		return err
	})
	if err != nil {
		return 0, err
	}
	defer pc.Close()
	return boundIndexOf(t, pc.(*net.UDPConn)), nil
}

// canonical returns l with empty slices made nil, for comparisons.
func canonical(l Link) Link {
	if len(l.Altnames) == 0 {
		l.Altnames = nil
	}
	if len(l.HardwareAddr) == 0 {
		l.HardwareAddr = nil
	}
	return l
}

// agreeWithDump fails t unless m's table holds what a fresh dump through h
// lists, link for link, names and altnames included.
func agreeWithDump(t testing.TB, m *Monitor, h *netlink.Handle) {
	t.Helper()
	ls, err := h.LinkList()
	if err != nil {
		t.Fatalf("failed to list links: %v", err)
	}
	var want []Link
	for _, l := range ls {
		want = append(want, canonical(linkOf(l)))
	}
	slices.SortFunc(want, func(a, b Link) int { return a.Index - b.Index })
	got, err := m.Links()
	if err != nil {
		t.Fatalf("failed to list the monitor's links: %v", err)
	}
	for i := range got {
		got[i] = canonical(got[i])
	}
	if d := diffLinks(want, got); d != "" {
		t.Fatalf("monitor disagrees with a fresh dump of %d links (-want +got):\n%s", len(want), d)
	}
	s := m.load()
	names := 0
	for _, l := range want {
		names += 1 + len(l.Altnames)
		for _, n := range append([]string{l.Name}, l.Altnames...) {
			if e := s.byName[n]; e == nil || e.link.Index != l.Index {
				t.Fatalf("monitor maps name %s to %v, want index %d", n, e, l.Index)
			}
		}
	}
	if len(s.byName) != names {
		t.Fatalf("monitor knows %d names, want %d", len(s.byName), names)
	}
}

func diffLinks(want, got []Link) string {
	var b strings.Builder
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || i < len(want) && want[i].Index < got[j].Index:
			fmt.Fprintf(&b, "-%+v\n", want[i])
			i++
		case i == len(want) || got[j].Index < want[i].Index:
			fmt.Fprintf(&b, "+%+v\n", got[j])
			j++
		default:
			if fmt.Sprintf("%+v", want[i]) != fmt.Sprintf("%+v", got[j]) {
				fmt.Fprintf(&b, "-%+v\n+%+v\n", want[i], got[j])
			}
			i++
			j++
		}
	}
	return b.String()
}

func TestLinkLookups(t *testing.T) {
	ns, h := linkNS(t)
	l := addVeth(t, h, "wan0", "wan0p", 0)
	const alt = "uplink-with-a-long-altname" // longer than 15 bytes
	if err := h.LinkAddAltName(l, alt); err != nil {
		t.Fatalf("failed to add altname: %v", err)
	}
	if err := h.LinkSetAlias(l, "uplink"); err != nil {
		t.Fatalf("failed to set alias: %v", err)
	}
	want := Link{Index: l.Attrs().Index, Name: "wan0", HardwareAddr: l.Attrs().HardwareAddr, Altnames: []string{alt}, Alias: "uplink", Flags: net.FlagBroadcast | net.FlagMulticast, MTU: 1500, Type: "veth"}
	m := monitorIn(t, ns, monitorConfig{})

	lookups := []struct {
		name string
		f    func() (Link, error)
	}{
		{"LinkByName", func() (Link, error) { return LinkByName("wan0") }},
		{"LinkByName altname", func() (Link, error) { return LinkByName(alt) }},
		{"LinkByIndex", func() (Link, error) { return LinkByIndex(want.Index) }},
		{"LinkByHardwareAddr", func() (Link, error) { return LinkByHardwareAddr(want.HardwareAddr) }},
		{"LinkByAlias", func() (Link, error) { return LinkByAlias("uplink") }},
		{"LookupLink index", func() (Link, error) { return LookupLink(fmt.Sprint(want.Index)) }},
		{"LookupLink mac", func() (Link, error) { return LookupLink(want.HardwareAddr.String()) }},
		{"LookupLink altname", func() (Link, error) { return LookupLink(alt) }},
		{"Monitor.LinkByName", func() (Link, error) { return m.LinkByName("wan0") }},
		{"Monitor.LinkByName altname", func() (Link, error) { return m.LinkByName(alt) }},
		{"Monitor.LinkByIndex", func() (Link, error) { return m.LinkByIndex(want.Index) }},
		{"Monitor.LinkByHardwareAddr", func() (Link, error) { return m.LinkByHardwareAddr(want.HardwareAddr) }},
		{"Monitor.LinkByAlias", func() (Link, error) { return m.LinkByAlias("uplink") }},
		{"Monitor.LookupLink mac", func() (Link, error) { return m.LookupLink(want.HardwareAddr.String()) }},
	}
	for _, lk := range lookups {
		var got Link
		err := ns.Do(func() (err error) {
			got, err = lk.f()
			return err
		})
		if err != nil {
			t.Errorf("%s: failed: %v", lk.name, err)
			continue
		}
		if fmt.Sprintf("%+v", canonical(got)) != fmt.Sprintf("%+v", want) {
			t.Errorf("%s: got %+v, want %+v", lk.name, got, want)
		}
	}

	misses := []struct {
		name string
		f    func() (Link, error)
		msg  string
	}{
		{"LinkByName", func() (Link, error) { return LinkByName("wan1") }, "ifbind: no link named wan1; did you mean wan0 or wan0p?"},
		{"Monitor.LinkByName", func() (Link, error) { return m.LinkByName("wan1") }, "ifbind: no link named wan1; did you mean wan0 or wan0p?"},
		{"LinkByName far", func() (Link, error) { return LinkByName("xyzzy") }, "ifbind: no link named xyzzy"},
		{"LinkByIndex", func() (Link, error) { return LinkByIndex(9999) }, "ifbind: no link with index 9999"},
		{"Monitor.LinkByIndex", func() (Link, error) { return m.LinkByIndex(9999) }, "ifbind: no link with index 9999"},
		{"LinkByAlias", func() (Link, error) { return LinkByAlias("downlink") }, `ifbind: no link with alias "downlink"`},
		{"LinkByHardwareAddr", func() (Link, error) { return LinkByHardwareAddr(net.HardwareAddr{2, 0, 0, 0, 0, 9}) }, "ifbind: no link with hardware address 02:00:00:00:00:09"},
	}
	for _, ms := range misses {
		// The text is read in the namespace of the lookup: that is where
		// the close names are listed from, when it is first read.
		var msg string
		err := ns.Do(func() error {
			_, err := ms.f()
			if err != nil {
				msg = err.Error()
			}
			return err
		})
		if !errors.Is(err, syscall.ENODEV) {
			t.Errorf("%s: got error %v, want one that is ENODEV", ms.name, err)
			continue
		}
		if msg != ms.msg {
			t.Errorf("%s: got error %q, want %q", ms.name, msg, ms.msg)
		}
	}

	// Read from another namespace, the text of a kernel lookup's miss
	// lists no names: they would be that namespace's. A Monitor's miss
	// lists its own table's wherever it is read.
	var kernelErr, monitorErr error
	ns.Do(func() error {
		_, kernelErr = LinkByName("wan1")
		_, monitorErr = m.LinkByName("wan1")
		return nil
	})
	if got, want := fmt.Sprint(kernelErr), "ifbind: no link named wan1"; got != want || !errors.Is(kernelErr, syscall.ENODEV) {
		t.Errorf("LinkByName read in another namespace: got %q, want %q (ENODEV)", got, want)
	}
	if got, want := fmt.Sprint(monitorErr), "ifbind: no link named wan1; did you mean wan0 or wan0p?"; got != want {
		t.Errorf("Monitor.LinkByName read in another namespace: got %q, want %q", got, want)
	}
}

func TestMonitorFollowsChanges(t *testing.T) {
	ns, h := linkNS(t)
	m := monitorIn(t, ns, monitorConfig{})
	l := addVeth(t, h, "x0", "x0p", 0)
	settle(t, m, "x0 added", hasName("x0"))
	agreeWithDump(t, m, h)

	steps := []struct {
		what string
		do   func() error
		cond func(*snapshot) bool
	}{
		// Renaming needs the link down; the kernel announces altname
		// and alias changes only for links that are up.
		{"rename", func() error { return h.LinkSetName(l, "y0") }, hasName("y0")},
		{"up", func() error { return h.LinkSetUp(l) }, func(s *snapshot) bool { return s.byName["y0"].link.Flags&net.FlagUp != 0 }},
		{"altname", func() error { return h.LinkAddAltName(l, "y0-alt") }, hasName("y0-alt")},
		{"alias", func() error { return h.LinkSetAlias(l, "lab") }, func(s *snapshot) bool { return s.byName["y0"].link.Alias == "lab" }},
		{"altname removed", func() error { return h.LinkDelAltName(l, "y0-alt") }, lacksName("y0-alt")},
		{"down", func() error { return h.LinkSetDown(l) }, func(s *snapshot) bool { return s.byName["y0"].link.Flags&net.FlagUp == 0 }},
		{"delete", func() error { return h.LinkDel(l) }, lacksName("y0")},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("failed to %s: %v", st.what, err)
		}
		settle(t, m, st.what, st.cond)
		agreeWithDump(t, m, h)
	}
}

func TestWaitLink(t *testing.T) {
	ns, h := linkNS(t)
	m := monitorIn(t, ns, monitorConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	type result struct {
		l   Link
		err error
	}
	appeared, up := make(chan result, 1), make(chan result, 1)
	go func() { l, err := m.WaitLink(ctx, "late0"); appeared <- result{l, err} }()
	go func() { l, err := m.WaitUp(ctx, "late0"); up <- result{l, err} }()

	l := addVeth(t, h, "late0", "late0p", 0)
	r := <-appeared
	if r.err != nil || r.l.Index != l.Attrs().Index {
		t.Fatalf("WaitLink: got %v, %v, want index %d", r.l, r.err, l.Attrs().Index)
	}
	select {
	case r := <-up:
		t.Fatalf("WaitUp returned %v, %v while the link is down", r.l, r.err)
	default:
	}
	peer, err := h.LinkByName("late0p")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []netlink.Link{l, peer} { // a veth has carrier when both ends are up
		if err := h.LinkSetUp(x); err != nil {
			t.Fatalf("failed to set %s up: %v", x.Attrs().Name, err)
		}
	}
	r = <-up
	if r.err != nil || !r.l.Up() {
		t.Fatalf("WaitUp: got %v (flags %v), %v, want the link up", r.l, r.l.Flags, r.err)
	}

	short, cancelShort := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancelShort()
	_, err = m.WaitLink(short, "never0")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitLink of a missing link: got %v, want DeadlineExceeded", err)
	}
}

func TestMonitorStops(t *testing.T) {
	ns, h := linkNS(t)
	addVeth(t, h, "s0", "s0p", 0)
	ctx, cancel := context.WithCancel(context.Background())
	var m *Monitor
	if err := ns.Do(func() (err error) { m, err = NewMonitor(ctx); return err }); err != nil {
		t.Fatalf("failed to start the monitor: %v", err)
	}
	follow := m.Follow("s0")
	pin, err := m.Pin("s0")
	if err != nil {
		t.Fatalf("failed to pin s0: %v", err)
	}
	waitErr := make(chan error, 1)
	go func() { _, err := m.WaitLink(context.Background(), "never0"); waitErr <- err }()

	cancel()
	<-m.done
	for name, f := range map[string]func() error{
		"LinkByName": func() error { _, err := m.LinkByName("s0"); return err },
		"WaitLink":   func() error { return <-waitErr },
		"follow": func() error {
			_, err := listenIn(t, ns, &ListenConfig{Binding: follow})
			return err
		},
		"pin": func() error {
			_, err := listenIn(t, ns, &ListenConfig{Binding: pin})
			return err
		},
	} {
		if err := f(); !errors.Is(err, net.ErrClosed) || !errors.Is(err, context.Canceled) {
			t.Errorf("%s after the context was cancelled: got %v, want net.ErrClosed and context.Canceled", name, err)
		}
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close after cancel: %v", err)
	}
	var zero Monitor
	if _, err := zero.LinkByName("lo"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("zero Monitor: got %v, want net.ErrClosed", err)
	}
}

// TestMonitorBurst makes well over 1,000 link events as fast as netlink
// takes them and checks that the monitor ends up agreeing with a dump.
func TestMonitorBurst(t *testing.T) {
	ns, h := linkNS(t)
	m := monitorIn(t, ns, monitorConfig{})
	const pairs = 250
	for i := range pairs {
		addVeth(t, h, fmt.Sprintf("b%d", i), fmt.Sprintf("b%dp", i), 0)
	}
	for i := 0; i < pairs; i += 2 {
		l, err := h.LinkByName(fmt.Sprintf("b%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetName(l, fmt.Sprintf("r%d", i)); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetAlias(l, fmt.Sprintf("alias%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i < pairs; i += 2 {
		delLink(t, h, fmt.Sprintf("b%d", i))
	}
	addVeth(t, h, "marker", "markerp", 0)
	settle(t, m, "the marker", hasName("marker"))
	agreeWithDump(t, m, h)
	if n := m.events.Load() + 1000*m.resyncs.Load(); n < 1000 {
		t.Errorf("monitor saw %d events, want the burst to make over 1000", n)
	}
	t.Logf("events applied: %d, resyncs: %d", m.events.Load(), m.resyncs.Load())
}

// TestMonitorResyncsAfterENOBUFS makes the kernel drop events for real: the
// monitor's socket gets the smallest buffer and its goroutine is held while
// links come and go. The monitor must notice (ENOBUFS), list the links again
// and agree with a dump; a pin whose link was replaced under the same index
// meanwhile must fail closed, and one whose link stayed must still bind.
func TestMonitorResyncsAfterENOBUFS(t *testing.T) {
	ns, h := linkNS(t)
	keep := addVeth(t, h, "keep0", "keep0p", 0)
	gone := addVeth(t, h, "gone0", "gone0p", 0)
	pause := make(chan struct{})
	m := monitorIn(t, ns, monitorConfig{rcvbuf: 1, pause: pause})
	pinKeep, err := m.Pin("keep0")
	if err != nil {
		t.Fatal(err)
	}
	pinGone, err := m.Pin("gone0")
	if err != nil {
		t.Fatal(err)
	}

	delLink(t, h, "gone0")
	addVeth(t, h, "gone0", "gone0p", gone.Attrs().Index) // same name, same index, new MAC
	for i := range 100 {
		addVeth(t, h, fmt.Sprintf("o%d", i), fmt.Sprintf("o%dp", i), 0)
	}
	for i := 0; i < 100; i += 3 {
		delLink(t, h, fmt.Sprintf("o%d", i))
	}
	close(pause)
	addVeth(t, h, "marker", "markerp", 0)
	settle(t, m, "the marker", hasName("marker"))
	if m.resyncs.Load() == 0 {
		t.Fatalf("monitor never saw ENOBUFS (events applied: %d)", m.events.Load())
	}
	agreeWithDump(t, m, h)

	if got, err := listenIn(t, ns, &ListenConfig{Binding: pinKeep}); err != nil || got != keep.Attrs().Index {
		t.Errorf("pin of an untouched link after resync: bound to %d, %v; want %d", got, err, keep.Attrs().Index)
	}
	if _, err := listenIn(t, ns, &ListenConfig{Binding: pinGone}); !errors.Is(err, ErrLinkGone) {
		t.Errorf("pin of a link replaced under the same index while events were dropped: got %v, want ErrLinkGone", err)
	}
	t.Logf("events applied: %d, resyncs: %d", m.events.Load(), m.resyncs.Load())
}
