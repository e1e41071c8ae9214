package ifbind

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"golang.org/x/sys/unix"
)

// Names the DNS servers of the tenants give: both families at the peer
// addresses, and one of the two families at an address nobody has, so that
// the attempt of that family hangs and the other must win the race.
const (
	nsBoth   = "both.ifbind.test"
	nsV6Dead = "v6dead.ifbind.test"
	nsV4Dead = "v4dead.ifbind.test"
)

// tenants builds two namespaces with an eth0 each (different indexes), each
// wired to a peer of its own that runs the name servers of ServeNames and
// a DNS server, all with the same addresses.
func tenants(t *testing.T) (*testnet.Topo, map[string]*testnet.DNS) {
	tp := testnet.NewTenants(t)
	if tp.A.Index == tp.B.Index {
		t.Fatalf("both eth0 have index %d; the test needs them apart", tp.A.Index)
	}
	tp.ServeNames(t)
	hosts := fmt.Sprintf("%s %s\n%s %s\n%s %s\n2001:db8::99 %s\n192.0.2.99 %s\n%s %s\n",
		testnet.PeerV4, nsBoth, testnet.PeerV6, nsBoth,
		testnet.PeerV4, nsV6Dead, nsV6Dead,
		nsV4Dead, testnet.PeerV6, nsV4Dead)
	dns := map[string]*testnet.DNS{}
	for _, s := range tp.Sides() {
		dns[s.Name] = testnet.StartDNS(t, s.Peer, hosts+dnsHosts(s.Name))
	}
	tp.WaitReady(t)
	return tp, dns
}

// opening matches what a peer receives that starts an exchange, UDP
// datagrams and TCP SYNs: spontaneous traffic (neighbour discovery, router
// solicitations, multicast listener reports) does not blur it, nor do the
// late segments of a connection that closed a moment ago.
func opening(p testnet.Packet) bool { return !p.Outgoing && (p.UDP() || p.SYN()) }

// TestNetnsReachesItsOwnPeer proves that dialers, listeners, resolvers and
// monitors of each of two namespaces, each with an eth0 and the same
// addresses, reach their own peer only, and that the other peer's NIC
// counts no packet of theirs.
func TestNetnsReachesItsOwnPeer(t *testing.T) {
	tp, dns := tenants(t)
	captures := map[string]*testnet.Capture{}
	for _, s := range tp.Sides() {
		captures[s.Name] = s.Capture(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, s := range tp.Sides() {
		o := other(tp, s)
		rx0 := captures[o.Name].Count(opening)

		seen0 := o.Seen.Load()

		// IP literals, by every dial method, TCP and UDP, both families.
		// The caller's hook runs at home, after the thread came back: no
		// code of the caller's runs in the namespace.
		d := &Dialer{Index: s.Index, Netns: s.Client.Path()}
		home, _ := os.Readlink("/proc/self/ns/net")
		var hookErr error
		d.Control = func(_, _ string, _ syscall.RawConn) error {
			if got, _ := os.Readlink("/proc/thread-self/ns/net"); got != home && hookErr == nil {
				hookErr = fmt.Errorf("the caller's hook ran in %s, want %s", got, home)
			}
			return nil
		}
		for _, m := range dialMethods[:2] {
			for _, ip := range []netip.Addr{testnet.PeerV4, testnet.PeerV6} {
				for _, network := range []string{"tcp", "udp"} {
					c, err := m.dial(ctx, d, network, netip.AddrPortFrom(ip, testnet.Port))
					if err != nil {
						t.Fatalf("%s: failed to dial %s %v in %s: %v", m.name, network, ip, s.Name, err)
					}
					if got := boundIndexOf(t, c.(syscall.Conn)); got != s.Index {
						t.Errorf("%s: bound to index %d, want %d", m.name, got, s.Index)
					}
					// UplinkOf names the link as the socket's namespace does.
					if l, ok := UplinkOf(c); !ok || l.Index != s.Index || l.Name != s.LinkName {
						t.Errorf("%s: UplinkOf gave %v, %v, want %s (index %d)", m.name, l, ok, s.LinkName, s.Index)
					}
					askIs(t, c, s.Name)
				}
			}
		}

		// A raw socket: DialIP's echo request is answered by the own
		// peer (the other peer's capture counts only TCP and UDP, so
		// this is checked by the answer alone).
		ic, err := d.DialIP(ctx, "ip4:icmp", netip.Addr{}, testnet.PeerV4)
		if err != nil {
			t.Fatalf("failed to DialIP in %s: %v", s.Name, err)
		}
		if got := boundIndexOf(t, ic); got != s.Index {
			t.Errorf("DialIP in %s: bound to index %d, want %d", s.Name, got, s.Index)
		}
		if _, err := ic.Write(echoRequest(8, 1)); err != nil {
			t.Fatalf("failed to send an echo request in %s: %v", s.Name, err)
		}
		ic.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := ic.ReadFrom(make([]byte, 1500)); err != nil {
			t.Errorf("no echo reply in %s: %v", s.Name, err)
		}
		ic.Close()

		if hookErr != nil {
			t.Error(hookErr)
		}
		d.Control = nil

		// Names that resolve to both families, through a resolver that
		// asks the tenant's own DNS server from the tenant's namespace;
		// one family's address is dead in two of them, so that the
		// racing attempt of the other family is the one that connects.
		r, err := NewResolver(d, testnet.PeerV4.String())
		if err != nil {
			t.Fatalf("failed to make a resolver in %s: %v", s.Name, err)
		}
		// An answer too big for UDP: the query is asked again over TCP,
		// from the namespace too, and the tenant's own server answers.
		big, err := r.LookupNetIP(ctx, "ip4", "big.ifbind.test")
		if err != nil || len(big) != 40 || big[0].As4()[0] != bigAddr(s.Name, 1).As4()[0] {
			t.Errorf("big.ifbind.test in %s: got %d addresses (%v), %v; want the 40 of %s's server", s.Name, len(big), big, err, s.Name)
		}
		dr := *d
		dr.Resolver = r
		dr.FallbackDelay = 20 * time.Millisecond
		for _, name := range []string{nsBoth, nsV6Dead, nsV4Dead} {
			c, err := dr.DialContext(ctx, "tcp", net.JoinHostPort(name, strconv.Itoa(testnet.Port)))
			if err != nil {
				t.Fatalf("failed to dial %s in %s: %v", name, s.Name, err)
			}
			askIs(t, c, s.Name)
			if qs := dns[s.Name].WaitQueries(name, 2); len(qs) < 2 {
				t.Errorf("%s: the DNS server of %s saw %v, want an A and an AAAA query", name, s.Name, qs)
			}
		}

		// A listener in the namespace hears its own peer, and the other
		// peer, which has the same addresses, reaches nobody.
		lc := &ListenConfig{Index: s.Index, Netns: s.Client.Path()}
		ln, err := lc.Listen(ctx, "tcp", ":7100")
		if err != nil {
			t.Fatalf("failed to listen in %s: %v", s.Name, err)
		}
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Write([]byte("accepted"))
				c.Close()
			}
		}()
		addr := net.JoinHostPort(testnet.ClientV4.String(), "7100")
		// (The other peer, whose tenant has no such listener, is refused:
		// its capture does not count the reset, but keep it out anyway.)
		before := captures[o.Name].Count(opening)
		if err := o.Peer.Do(func() error {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err == nil {
				c.Close()
			}
			return err
		}); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("peer %s dialed the listener of %s: got %v, want ECONNREFUSED", o.Name, s.Name, err)
		}
		rx0 += captures[o.Name].Count(opening) - before
		var c net.Conn
		if err := s.Peer.Do(func() (err error) { c, err = net.DialTimeout("tcp", addr, 5*time.Second); return err }); err != nil {
			t.Fatalf("peer %s failed to reach the listener of its tenant: %v", s.Name, err)
		}
		askIs(t, c, "accepted")
		ln.Close()

		// A UDP conn in the namespace, with its multicast egress pinned.
		uc, err := lc.ListenUDP(ctx, "udp", netip.AddrPort{})
		if err != nil {
			t.Fatalf("failed to listen on UDP in %s: %v", s.Name, err)
		}
		if _, err := uc.WriteToUDPAddrPort([]byte("who?"), netip.AddrPortFrom(testnet.PeerV6, testnet.Port)); err != nil {
			t.Fatalf("failed to send from the UDP conn of %s: %v", s.Name, err)
		}
		// Ingress information and multicast joins name the namespace's
		// own index (the other tenant's eth0 has another one).
		ir, err := NewIngressReader(uc)
		if err != nil {
			t.Fatalf("failed to read ingress information in %s: %v", s.Name, err)
		}
		uc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 16)
		n, _, in, err := ir.ReadFrom(buf)
		if err != nil || string(buf[:n]) != s.Name || in.Index != s.Index {
			t.Errorf("UDP conn of %s: got %q from index %d, %v; want %q from %d", s.Name, buf[:n], in.Index, err, s.Name, s.Index)
		}
		if err := JoinGroup(uc, s.Index, netip.MustParseAddr("ff02::1:3")); err != nil {
			t.Errorf("failed to join a group on eth0 of %s: %v", s.Name, err)
		}
		if err := JoinGroup(uc, o.Index, netip.MustParseAddr("ff02::1:3")); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("joined a group on the other tenant's index %d in %s: got %v, want EINVAL", o.Index, s.Name, err)
		}
		uc.Close()

		// A monitor of the namespace sees its links; its bindings carry
		// the namespace, so a Dialer needs no Netns.
		m, err := NewMonitorAt(ctx, s.Client.Path())
		if err != nil {
			t.Fatalf("failed to start a monitor in %s: %v", s.Name, err)
		}
		if l, err := m.LinkByName("eth0"); err != nil || l.Index != s.Index {
			t.Errorf("monitor of %s: eth0 is %v, %v; want index %d", s.Name, l, err, s.Index)
		}
		c, err = (&Dialer{Binding: m.Follow("eth0")}).Dial("udp", net.JoinHostPort(testnet.PeerV4.String(), strconv.Itoa(testnet.Port)))
		if err != nil {
			t.Fatalf("failed to dial through the monitor of %s: %v", s.Name, err)
		}
		askIs(t, c, s.Name)
		pinned, err := m.Pin("eth0")
		if err != nil {
			t.Fatalf("failed to pin eth0 of %s: %v", s.Name, err)
		}
		// The same namespace spelled by this process's pid.
		same := "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(s.Client.FD())
		c, err = (&Dialer{Binding: pinned, Netns: same}).DialContext(ctx, "tcp", net.JoinHostPort(testnet.PeerV6.String(), strconv.Itoa(testnet.Port)))
		if err != nil {
			t.Fatalf("failed to dial through a pin of %s: %v", s.Name, err)
		}
		askIs(t, c, s.Name)
		m.Close()

		if got := o.Seen.Load(); got != seen0 {
			t.Errorf("the servers of peer %s saw %d connections or datagrams meant for %s", o.Name, got-seen0, s.Name)
		}
		if captures[s.Name].Count(opening) == 0 {
			t.Errorf("the capture on eth0 of peer %s counted nothing: it proves nothing", s.Name)
		}
		if rx := captures[o.Name].Count(opening); rx != rx0 {
			t.Errorf("eth0 of peer %s received %d UDP datagrams or TCP SYNs while %s was used", o.Name, rx-rx0, s.Name)
		}
	}
	for _, s := range tp.Sides() {
		if n := len(dns[s.Name].Queries("big.ifbind.test")); n != 2 {
			t.Errorf("the DNS server of %s saw %d queries for big.ifbind.test, want 2 (UDP, then TCP) from its own tenant", s.Name, n)
		}
		for _, name := range []string{nsBoth, nsV6Dead, nsV4Dead} {
			if n := len(dns[s.Name].Queries(name)); n > 2 {
				t.Errorf("the DNS server of %s saw %d queries for %s, want 2: those of its own tenant", s.Name, n, name)
			}
		}
	}
	checkThreadsHome(t)
}

// askIs asks c, a conn to a ServeNames server, who answers, and closes it.
func askIs(t *testing.T, c net.Conn, want string) {
	t.Helper()
	defer c.Close()
	got, err := testnet.Ask(c)
	if err != nil {
		t.Fatalf("failed to ask %v: %v", c.RemoteAddr(), err)
	}
	if got != want {
		t.Errorf("%v answered %q, want %q", c.RemoteAddr(), got, want)
	}
}

// checkThreadsHome fails t unless every thread of the process is in the
// network namespace of a thread no goroutine locked.
func checkThreadsHome(t *testing.T) {
	t.Helper()
	home := make(chan string)
	go func() {
		s, _ := os.Readlink("/proc/thread-self/ns/net")
		home <- s
	}()
	want := <-home
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatalf("failed to list threads: %v", err)
	}
	away := 0
	for _, task := range tasks {
		got, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns/net"))
		if err != nil {
			continue // ended meanwhile
		}
		if got != want {
			away++
			t.Errorf("thread %s is in %s, want %s: a thread was left in another namespace", task.Name(), got, want)
		}
	}
	if away == 0 {
		t.Logf("%d threads, all in %s", len(tasks), want)
	}
}

// TestNetnsManyDialsThreadsStayHome makes thousands of dials into two
// namespaces at once, from many goroutines, each answered by the right
// peer, then checks that every thread of the process is back in the
// original namespace. It does not run in parallel with other tests, whose
// helpers lock threads into peers on purpose.
func TestNetnsManyDialsThreadsStayHome(t *testing.T) {
	tp, _ := tenants(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dialers := map[*testnet.Side][3]*Dialer{}
	for _, s := range tp.Sides() {
		d := &Dialer{Index: s.Index, Netns: s.Client.Path()}
		r, err := NewResolver(d, testnet.PeerV6.String())
		if err != nil {
			t.Fatalf("failed to make a resolver in %s: %v", s.Name, err)
		}
		byName := *d
		byName.Resolver = r
		m, err := NewMonitorAt(ctx, s.Client.Path())
		if err != nil {
			t.Fatalf("failed to start a monitor in %s: %v", s.Name, err)
		}
		defer m.Close()
		dialers[s] = [3]*Dialer{d, &byName, {Binding: m.Follow("eth0")}}
	}
	// 2,048 dials: one in 8 by name, one in 8 through a monitor's binding.
	const workers, dials = 32, 64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range dials {
				s := tp.Sides()[(w+i)%2]
				network, ip := "udp", testnet.PeerV4
				if i%4 == 0 {
					network = "tcp"
				}
				if i%2 == 0 {
					ip = testnet.PeerV6
				}
				d, addr := dialers[s][0], netip.AddrPortFrom(ip, testnet.Port).String()
				switch i % 8 {
				case 1:
					d, addr = dialers[s][1], net.JoinHostPort(nsBoth, strconv.Itoa(testnet.Port))
				case 3:
					d = dialers[s][2]
				}
				if i%16 == 5 {
					// A listen among the dials, in the same namespace.
					lc := &ListenConfig{Index: s.Index, Netns: s.Client.Path()}
					pc, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(testnet.ClientV4.String(), "0"))
					if err != nil {
						errs <- fmt.Errorf("listen in %s: %w", s.Name, err)
						return
					}
					pc.Close()
				}
				c, err := d.DialContext(ctx, network, addr)
				if err != nil {
					errs <- fmt.Errorf("dial %s %v in %s: %w", network, ip, s.Name, err)
					return
				}
				got, err := testnet.Ask(c)
				c.Close()
				if err != nil || got != s.Name {
					errs <- fmt.Errorf("dial %s %v in %s: answered %q, %v", network, ip, s.Name, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkThreadsHome(t)
}

// TestNetnsGone proves that a namespace that goes while a Monitor watches it
// and dials run fails each new socket with ErrNetnsGone, naming it, and that
// nothing is left behind: the leak check of the test counts goroutines and
// descriptors, and the threads are all home.
func TestNetnsGone(t *testing.T) {
	t.Run("process exited", func(t *testing.T) {
		tp := testnet.NewTenants(t)
		tp.ServeNames(t)
		tp.WaitReady(t)
		s := tp.A
		// A process in the namespace; /proc/PID/ns/net names it while
		// it lives.
		cmd := exec.Command("sleep", "60")
		if err := s.Client.Do(cmd.Start); err != nil {
			t.Fatalf("failed to start a process in the namespace: %v", err)
		}
		path := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net"
		exited := false
		t.Cleanup(func() {
			if !exited {
				cmd.Process.Kill()
				cmd.Wait()
			}
		})
		goneWhileDialing(t, s, path, false, func() {
			cmd.Process.Kill()
			cmd.Wait()
			exited = true
		})
	})
	t.Run("descriptor closed", func(t *testing.T) {
		tp := testnet.NewTenants(t)
		tp.ServeNames(t)
		tp.WaitReady(t)
		s := tp.A
		fd, err := unix.Dup(s.Client.FD())
		if err != nil {
			t.Fatalf("failed to dup: %v", err)
		}
		closed := false
		t.Cleanup(func() {
			if !closed {
				unix.Close(fd)
			}
		})
		goneWhileDialing(t, s, "/proc/self/fd/"+strconv.Itoa(fd), false, func() {
			unix.Close(fd)
			closed = true
		})
	})
	t.Run("name re-pointed", func(t *testing.T) {
		// The path comes to name another namespace: the Monitor's
		// bindings notice, by identity.
		tp := testnet.NewTenants(t)
		tp.ServeNames(t)
		tp.WaitReady(t)
		s := tp.A
		fd, err := unix.Dup(s.Client.FD())
		if err != nil {
			t.Fatalf("failed to dup: %v", err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		goneWhileDialing(t, s, "/proc/self/fd/"+strconv.Itoa(fd), true, func() {
			if err := unix.Dup3(tp.B.Client.FD(), fd, unix.O_CLOEXEC); err != nil {
				t.Fatalf("failed to re-point the descriptor: %v", err)
			}
		})
	})
}

// goneWhileDialing dials s's peer through path, by Netns and through a
// Monitor's binding, from several goroutines, calls gone, and checks that
// every dial after it fails with ErrNetnsGone and names path.
//
// With repointed, path names another namespace afterwards: only the
// Monitor's binding fails (a Dialer's Netns goes wherever path leads).
func goneWhileDialing(t *testing.T, s *testnet.Side, path string, repointed bool, gone func()) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := NewMonitorAt(ctx, path)
	if err != nil {
		t.Fatalf("failed to start a monitor in %s: %v", path, err)
	}
	defer m.Close()
	dialers := []*Dialer{
		{Index: s.Index, Netns: path},
		{Binding: m.Follow("eth0")},
	}
	addr := netip.AddrPortFrom(testnet.PeerV4, testnet.Port).String()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok sync.Map
	for i, d := range dialers {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if c, err := d.DialContext(ctx, "udp", addr); err == nil {
						ok.Store(i, true)
						c.Close()
					}
				}
			}()
		}
	}
	// Let every dialer succeed at least once before the namespace goes.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, a := ok.Load(0)
		_, b := ok.Load(1)
		if a && b {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			wg.Wait()
			t.Fatalf("the dialers never succeeded before the namespace went")
		}
	}
	gone()
	close(stop)
	wg.Wait()
	for i, d := range dialers {
		if repointed && d.Netns != "" {
			continue
		}
		for _, network := range []string{"udp", "tcp"} {
			_, err := d.DialContext(ctx, network, addr)
			if !errors.Is(err, ErrNetnsGone) {
				t.Errorf("dialer %d, %s after the namespace went: got %v, want ErrNetnsGone", i, network, err)
			} else if !strings.Contains(err.Error(), path) {
				t.Errorf("dialer %d: %q does not name %s", i, err, path)
			}
		}
	}
	if !repointed {
		_, err = (&ListenConfig{Index: s.Index, Netns: path}).ListenPacket(ctx, "udp", ":0")
		if !errors.Is(err, ErrNetnsGone) {
			t.Errorf("listen after the namespace went: got %v, want ErrNetnsGone", err)
		}
	}
	_, err = (&ListenConfig{Binding: m.Follow("eth0")}).ListenPacket(ctx, "udp", ":0")
	if !errors.Is(err, ErrNetnsGone) {
		t.Errorf("listen through the monitor after the namespace went: got %v, want ErrNetnsGone", err)
	}
	// The monitor still holds the namespace it watched, and its table.
	if l, err := m.LinkByName("eth0"); err != nil || l.Index != s.Index {
		t.Errorf("monitor after the namespace went: eth0 is %v, %v", l, err)
	}
	m.Close()
	checkThreadsHome(t)
}

// TestNetnsFailsClosed checks the errors of namespaces that cannot be used,
// and of bindings and plain net types that would make sockets elsewhere.
func TestNetnsFailsClosed(t *testing.T) {
	tp := testnet.NewTenants(t)
	ctx := context.Background()
	a, b := tp.A, tp.B
	plain, err := NewMonitor(ctx)
	if err != nil {
		t.Fatalf("failed to start a monitor: %v", err)
	}
	defer plain.Close()
	ma, err := NewMonitorAt(ctx, a.Client.Path())
	if err != nil {
		t.Fatalf("failed to start a monitor in a: %v", err)
	}
	defer ma.Close()
	// The same namespace spelled another way is the same namespace.
	same := "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(a.Client.FD())
	tmp := t.TempDir() + "/file"
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := netip.AddrPortFrom(testnet.PeerV4, testnet.Port).String()
	for _, tc := range []struct {
		name   string
		d      *Dialer
		want   error
		says   string
		listen bool // the ListenConfig of the same fields fails alike
	}{
		{"no such name", &Dialer{Index: 1, Netns: "ifbind-no-such-ns"}, ErrNetnsGone, "no namespace named ifbind-no-such-ns in /run/netns/", true},
		{"no such name errno", &Dialer{Index: 1, Netns: "ifbind-no-such-ns"}, syscall.ENOENT, "ifbind-no-such-ns", true},
		{"not a namespace", &Dialer{Index: 1, Netns: tmp}, syscall.EINVAL, "is not a network namespace", true},
		{"dot", &Dialer{Index: 1, Netns: ".."}, syscall.EINVAL, "not a namespace name", true},
		{"plain monitor's binding", &Dialer{Binding: plain.Follow("lo"), Netns: a.Client.Path()}, syscall.EINVAL, "use NewMonitorAt", true},
		{"other namespace's binding", &Dialer{Binding: ma.Follow("eth0"), Netns: b.Client.Path()}, syscall.EINVAL, "not the namespace of the Binding's Monitor", true},
		{"index of the other namespace", &Dialer{Index: 1000, Netns: a.Client.Path()}, syscall.ENODEV, "1000", false},
	} {
		_, err := tc.d.DialContext(ctx, "udp", addr)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: dial: got %v, want %v saying %q", tc.name, err, tc.want, tc.says)
		}
		if tc.d.Netns != "" && !strings.Contains(err.Error(), tc.d.Netns) && tc.want != syscall.ENODEV {
			t.Errorf("%s: %q does not name %s", tc.name, err, tc.d.Netns)
		}
		if tc.listen {
			lc := &ListenConfig{Index: tc.d.Index, Binding: tc.d.Binding, Netns: tc.d.Netns}
			if _, err := lc.ListenPacket(ctx, "udp", ":0"); !errors.Is(err, tc.want) {
				t.Errorf("%s: listen: got %v, want %v", tc.name, err, tc.want)
			}
		}
	}
	// The same namespace by another path, with the monitor's binding.
	c, err := (&Dialer{Binding: ma.Follow("eth0"), Netns: same}).Dial("udp", addr)
	if err != nil {
		t.Errorf("binding of a with a's namespace spelled %s: %v", same, err)
	} else {
		c.Close()
	}
	// A second socket of one call, made after the first took the thread
	// home, and a socket made on another thread, fail.
	e := &nsEntry{ref: &nsRef{spec: a.Client.Path(), path: a.Client.Path()}}
	if _, err := runIn(e, func() (int, error) {
		if err := e.leave(); err != nil {
			return 0, err
		}
		return 0, e.leave()
	}); !errors.Is(err, errOutside) {
		t.Errorf("leaving twice: got %v, want errOutside", err)
	}
	e = &nsEntry{ref: e.ref}
	if _, err := runIn(e, func() (int, error) {
		errc := make(chan error)
		go func() { errc <- e.leave() }()
		return 0, <-errc
	}); !errors.Is(err, errOutside) {
		t.Errorf("leaving from another goroutine: got %v, want errOutside", err)
	}

	// Plain net types cannot make sockets elsewhere: every dial fails.
	for _, d := range []*Dialer{{Index: a.Index, Netns: a.Client.Path()}, {Binding: ma.Follow("eth0")}} {
		if _, err := d.NetDialer().Dial("udp", addr); !errors.Is(err, errNetnsNetDialer) {
			t.Errorf("NetDialer of %+v: got %v, want errNetnsNetDialer", d, err)
		}
		lc := &ListenConfig{Index: d.Index, Binding: d.Binding, Netns: d.Netns}
		if _, err := lc.NetListenConfig().ListenPacket(ctx, "udp", ":0"); !errors.Is(err, errNetnsNetDialer) {
			t.Errorf("NetListenConfig of %+v: got %v, want errNetnsNetDialer", lc, err)
		}
	}
	checkThreadsHome(t)
}

// TestNetnsResolvConf checks which resolv.conf NewResolver reads for a
// namespace: /etc/netns/NAME/resolv.conf when it exists, as ip netns exec
// does.
func TestNetnsResolvConf(t *testing.T) {
	etc := t.TempDir()
	if err := os.MkdirAll(filepath.Join(etc, "blue"), 0o755); err != nil {
		t.Fatal(err)
	}
	blue := filepath.Join(etc, "blue", "resolv.conf")
	if err := os.WriteFile(blue, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		d    *Dialer
		want string
	}{
		{&Dialer{Index: 1, Netns: "blue"}, blue},
		{&Dialer{Index: 1, Netns: "/run/netns/blue"}, blue},
		{&Dialer{Index: 1, Netns: "green"}, resolvConf},
		{&Dialer{Index: 1, Netns: "/proc/1/ns/net"}, resolvConf},
		{&Dialer{Index: 1}, resolvConf},
		{nil, resolvConf},
	} {
		if got := resolvConfOf(tc.d, etc); got != tc.want {
			t.Errorf("resolvConfOf(%+v) = %s, want %s", tc.d, got, tc.want)
		}
	}
}

// TestNetnsUnprivileged proves the errors of a namespace that cannot be
// entered, in a child process in a user namespace of its own, which does not
// own the test's namespaces: with a network namespace of its own (owned by
// its user namespace) it cannot enter the target; without one (unshare -U
// alone) it could not come back to its own, and never leaves. Both are
// EPERM and say what would allow it. (The whole suite, run as nobody,
// proves that a user namespace that owns the target is enough.)
func TestNetnsUnprivileged(t *testing.T) {
	if os.Getenv("IFBIND_NETNS_CHILD") != "" {
		netnsChild(t, os.Getenv("IFBIND_NETNS_CHILD"))
		return
	}
	tp := testnet.NewTenants(t)
	fd, err := unix.Dup(tp.A.Client.FD())
	if err != nil {
		t.Fatalf("failed to dup: %v", err)
	}
	f := os.NewFile(uintptr(fd), "netns")
	defer f.Close()
	for _, tc := range []struct {
		child string
		flags uintptr
	}{
		{"enter", syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET},
		{"home", syscall.CLONE_NEWUSER},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNetnsUnprivileged$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "IFBIND_NETNS_CHILD="+tc.child, "CI=")
		cmd.ExtraFiles = []*os.File{f}
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:  tc.flags,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "operation not permitted") {
			t.Errorf("child %s in a user namespace of its own failed: %v\n%s", tc.child, err, out)
		}
	}
}

// netnsChild runs in a user namespace that does not own the namespace it
// got as descriptor 3.
func netnsChild(t *testing.T, child string) {
	says := map[string]string{
		"enter": "cannot enter it: setns: operation not permitted (entering a network namespace needs CAP_SYS_ADMIN",
		"home":  "a thread could not come back to the process's own network namespace: setns: operation not permitted (it needs CAP_SYS_ADMIN",
	}[child]
	const path = "/proc/self/fd/3"
	_, err := (&Dialer{Index: 2, Netns: path}).Dial("udp", "192.0.2.2:7")
	if !errors.Is(err, syscall.EPERM) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), says) {
		t.Fatalf("dial: got %v, want EPERM naming %s and saying %q", err, path, says)
	}
	t.Log(err)
	_, err = NewMonitorAt(context.Background(), path)
	if !errors.Is(err, syscall.EPERM) || !strings.Contains(err.Error(), says) {
		t.Fatalf("monitor: got %v, want EPERM saying %q", err, says)
	}
	checkThreadsHome(t)
}

// TestNetnsIndexBinding checks that an IndexBinding, which names an index
// and no namespace, may go with Netns, as Index does.
func TestNetnsIndexBinding(t *testing.T) {
	r, err := netnsOf("/proc/self/ns/net", IndexBinding(1))
	if err != nil || r == nil {
		t.Errorf("netnsOf(/proc/self/ns/net, IndexBinding(1)): got %v, %v, want a namespace", r, err)
	}
	if _, err := netnsOf("/proc/self/ns/net", (&Monitor{}).Follow("lo")); !errors.Is(err, errBindingHere) {
		t.Errorf("netnsOf with a binding of this namespace: got %v, want %v", err, errBindingHere)
	}
}

// TestNetnsEveryMonitorBinding checks that every kind of Binding a Monitor
// makes carries the Monitor's namespace: one that did not would make its
// sockets in the caller's namespace, bound to an index of another.
func TestNetnsEveryMonitorBinding(t *testing.T) {
	testnet.Require(t)
	ns := testnet.NewNS(t)
	m, err := NewMonitorAt(t.Context(), ns.Path())
	if err != nil {
		t.Fatalf("failed to start a monitor of %s: %v", ns.Path(), err)
	}
	defer m.Close()
	pin, err := m.Pin("lo")
	if err != nil {
		t.Fatalf("failed to pin lo: %v", err)
	}
	closing, err := m.PinClosing("lo")
	if err != nil {
		t.Fatalf("failed to pin lo, closing: %v", err)
	}
	for _, b := range []Binding{m.Follow("lo"), pin, closing, m.DefaultRoute(RouteFilter{}), m.RouteTo(RouteFilter{})} {
		nb, ok := b.(netnsBinding)
		if !ok || nb.netns() == nil {
			t.Errorf("%v (%T) does not carry its Monitor's namespace", b, b)
		}
	}
}
