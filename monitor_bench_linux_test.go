package ifbind

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Benchmarks of lookups, follow-mode dials and the Monitor's memory. Run
// them with
//
//	go test -run '^$' -bench 'Lookup|Follow|MonitorMemory' -benchtime 2000x -count 6 .
//
// The largest fixture (10,000 links) is built once per process, in a
// namespace of its own, only when a benchmark asks for it: benchmarks never
// run under plain `go test`, and -short leaves that size out.

// linkCounts are the numbers of links the lookup and memory benchmarks run
// at. Each is made of veth pairs, both ends in the fixture's namespace, so
// that a count is the number of links there (lo aside).
var linkCounts = []int{10, 1000, 10000}

var fixtures struct {
	sync.Mutex
	byN map[int]*testnet.NS
}

// fixture returns a namespace holding n links (n/2 veth pairs, named v0,
// v0p, v1, v1p...), built on first use and kept until the process exits.
func fixture(b *testing.B, n int) *testnet.NS {
	b.Helper()
	testnet.Require(b)
	if n >= 10000 && testing.Short() {
		b.Skip("10,000 links take seconds to build; not with -short")
	}
	fixtures.Lock()
	defer fixtures.Unlock()
	if ns := fixtures.byN[n]; ns != nil {
		return ns
	}
	ns, err := testnet.NewProcessNS()
	if err != nil {
		b.Fatalf("failed to make the namespace: %v", err)
	}
	start := time.Now()
	if err := ns.AddVeths("v", n/2); err != nil {
		b.Fatalf("failed to add %d veth pairs: %v", n/2, err)
	}
	b.Logf("built %d links in %v", n, time.Since(start).Round(time.Millisecond))
	if fixtures.byN == nil {
		fixtures.byN = make(map[int]*testnet.NS)
	}
	fixtures.byN[n] = ns
	return ns
}

// inNS runs the benchmark loop f on a thread inside ns.
func inNS(b *testing.B, ns *testnet.NS, f func() error) {
	b.Helper()
	if err := ns.Do(f); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLookup measures one name-to-index lookup of a link among n:
// through a Monitor (no system call), through netlink.LinkByName (one
// RTM_GETLINK request) and through net.InterfaceByName (which lists every
// link).
func BenchmarkLookup(b *testing.B) {
	for _, n := range linkCounts {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			ns := fixture(b, n)
			name := fmt.Sprintf("v%d", n/4) // a link in the middle
			var m *Monitor
			inNS(b, ns, func() (err error) {
				m, err = NewMonitor(context.Background())
				return err
			})
			defer m.Close()
			want, err := m.LinkByName(name)
			if err != nil {
				b.Fatal(err)
			}
			check := func(got int) error {
				if got != want.Index {
					return fmt.Errorf("%s has index %d, want %d", name, got, want.Index)
				}
				return nil
			}
			b.Run("impl=monitor", func(b *testing.B) {
				inNS(b, ns, func() error {
					var l Link
					for b.Loop() {
						l, _ = m.LinkByName(name)
					}
					return check(l.Index)
				})
			})
			b.Run("impl=netlink", func(b *testing.B) {
				inNS(b, ns, func() error {
					var l netlink.Link
					var err error
					for b.Loop() {
						if l, err = netlink.LinkByName(name); err != nil {
							return err
						}
					}
					return check(l.Attrs().Index)
				})
			})
			b.Run("impl=net", func(b *testing.B) {
				inNS(b, ns, func() error {
					var ifi *net.Interface
					var err error
					for b.Loop() {
						if ifi, err = net.InterfaceByName(name); err != nil {
							return err
						}
					}
					return check(ifi.Index)
				})
			})
		})
	}
}

// BenchmarkMonitorMemory measures what a Monitor of n links holds on the
// heap (HeapInuse after it started, less before, after a GC each time), and
// how long it takes to start (ns/op: one subscription and one dump).
func BenchmarkMonitorMemory(b *testing.B) {
	for _, n := range linkCounts {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			ns := fixture(b, n)
			var heap uint64
			inNS(b, ns, func() error {
				for b.Loop() {
					var before, after runtime.MemStats
					runtime.GC()
					runtime.ReadMemStats(&before)
					m, err := NewMonitor(context.Background())
					if err != nil {
						return err
					}
					runtime.GC()
					runtime.ReadMemStats(&after)
					heap = after.HeapInuse - before.HeapInuse
					if links, _ := m.Links(); len(links) < n {
						return fmt.Errorf("monitor holds %d links, want %d", len(links), n)
					}
					m.Close()
				}
				return nil
			})
			b.ReportMetric(float64(heap), "heap-B")
			b.ReportMetric(float64(heap)/float64(n), "heap-B/link")
		})
	}
}

// dialBench returns the Dialers whose cost BenchmarkFollowDial compares: a
// plain Index on lo, a follow of "lo" and a pin of it, and the address they
// dial (a UDP "connect" on loopback, which sends nothing: the sharpest
// measure of what the binding adds).
func dialBench(b *testing.B) (modes []string, dialers map[string]*Dialer, raddr netip.AddrPort) {
	testnet.Require(b)
	m, err := NewMonitor(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	lo, err := m.LinkByName("lo")
	if err != nil {
		b.Fatal(err)
	}
	pin, err := m.Pin("lo")
	if err != nil {
		b.Fatal(err)
	}
	dialers = map[string]*Dialer{
		"index":  {Index: lo.Index},
		"follow": {Binding: m.Follow("lo")},
		"pin":    {Binding: pin},
	}
	return []string{"index", "follow", "pin"}, dialers, netip.MustParseAddrPort("127.0.0.1:9")
}

func dialOnce(d *Dialer, raddr netip.AddrPort) error {
	c, err := d.DialUDP(context.Background(), "udp4", netip.AddrPort{}, raddr)
	if err != nil {
		return err
	}
	return c.Close()
}

// BenchmarkFollowDial measures a UDP dial (socket, bind, connect, close) on
// loopback through each mode, for benchstat:
//
//	go test -run '^$' -bench FollowDial -count 10 . > dial.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /mode dial.txt
func BenchmarkFollowDial(b *testing.B) {
	modes, dialers, raddr := dialBench(b)
	for _, mode := range modes {
		d := dialers[mode]
		b.Run("mode="+mode, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := dialOnce(d, raddr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFollowDialRatio interleaves dials in follow and index mode, in
// rounds of 32 of each (the order alternating), and reports the median of
// the rounds' time ratios (follow/index): a round's two halves run within a
// millisecond of each other, so that changes in the machine's load, which
// move a whole benchmark run by tens of percent on a shared machine, fall
// on both alike.
func BenchmarkFollowDialRatio(b *testing.B) {
	_, dialers, raddr := dialBench(b)
	index, follow := dialers["index"], dialers["follow"]
	interleave(b, 32, "index", func() error { return dialOnce(index, raddr) },
		namedFunc{"follow", func() error { return dialOnce(follow, raddr) }})
}

// BenchmarkFollowHook measures the binding itself, without the rest of a
// dial: the Control hook of each mode run on one UDP socket, which the
// kernel binds again each time (root, or CAP_NET_RAW, in the sandbox).
func BenchmarkFollowHook(b *testing.B) {
	modes, dialers, _ := dialBench(b)
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	rc, err := c.(*net.UDPConn).SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, mode := range modes {
		hook := dialers[mode].NetDialer().ControlContext
		b.Run("mode="+mode, func(b *testing.B) {
			for b.Loop() {
				if err := hook(ctx, "udp4", "127.0.0.1:9", rc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMonitorUpdate measures what a change costs the monitor at n
// links: op=event is one rename, from the request until the monitor's table
// shows it (kernel, event and a new table); op=clone is the copy of the
// table that each batch of events makes, the price of lock-free lookups.
func BenchmarkMonitorUpdate(b *testing.B) {
	for _, n := range linkCounts {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			ns := fixture(b, n)
			var m *Monitor
			var h *netlink.Handle
			inNS(b, ns, func() (err error) {
				if m, err = NewMonitor(context.Background()); err != nil {
					return err
				}
				h, err = netlink.NewHandle()
				return err
			})
			defer m.Close()
			defer h.Close()
			l, err := h.LinkByName("v0")
			if err != nil {
				b.Fatal(err)
			}
			b.Run("op=event", func(b *testing.B) {
				names := [2]string{"v0", "w0"}
				i := 0
				for b.Loop() {
					i++
					to := names[i%2]
					if err := h.LinkSetName(l, to); err != nil {
						b.Fatal(err)
					}
					settle(b, m, to, hasName(to))
				}
				if i%2 == 1 {
					h.LinkSetName(l, "v0")
				}
			})
			b.Run("op=clone", func(b *testing.B) {
				t := m.load().linkTable
				for b.Loop() {
					t.clone()
				}
			})
		})
	}
}

// BenchmarkFollowResolve measures what a Binding adds to each socket before
// the setsockopt: one read of the monitor's table.
func BenchmarkFollowResolve(b *testing.B) {
	_, dialers, _ := dialBench(b)
	for _, mode := range []string{"follow", "pin"} {
		bd := dialers[mode].Binding
		b.Run("mode="+mode, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bd.target(sockInfo{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMiss measures a lookup of a name that no link has, among n links,
// against a hit: through a Follow binding (what each socket of a client
// retrying while its link is down pays), a Monitor and the package's
// LinkByName (one netlink request either way). A miss must cost what a hit
// costs, whatever n: the close names of its error are listed only when the
// text is read.
//
//	go test -run '^$' -bench Miss -benchtime 2000x -count 6 .
func BenchmarkMiss(b *testing.B) {
	for _, n := range linkCounts {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			ns := fixture(b, n)
			var m *Monitor
			inNS(b, ns, func() (err error) {
				m, err = NewMonitor(context.Background())
				return err
			})
			defer m.Close()
			names := map[string]string{"hit": fmt.Sprintf("v%d", n/4), "miss": "wan0"}
			raddr := netip.MustParseAddrPort("127.0.0.1:9")
			for _, lk := range []struct {
				name   string
				lookup func(name string) error
			}{
				{"follow", func(name string) error { _, err := m.Follow(name).target(sockInfo{}); return err }},
				{"monitor", func(name string) error { _, err := m.LinkByName(name); return err }},
				{"kernel", func(name string) error { _, err := LinkByName(name); return err }},
				// A whole UDP dial through Follow (socket, binding,
				// connect, close), a hit on lo.
				{"dial", func(name string) error { return dialOnce(&Dialer{Binding: m.Follow(name)}, raddr) }},
			} {
				for _, res := range []string{"hit", "miss"} {
					name := names[res]
					if lk.name == "dial" && res == "hit" {
						name = "lo"
					}
					b.Run("impl="+lk.name+"/res="+res, func(b *testing.B) {
						b.ReportAllocs()
						inNS(b, ns, func() error {
							var err error
							for b.Loop() {
								err = lk.lookup(name)
							}
							if (err == nil) != (res == "hit") || err != nil && !errors.Is(err, syscall.ENODEV) {
								return fmt.Errorf("lookup of %s: got %v", name, err)
							}
							return nil
						})
					})
				}
			}
		})
	}
}

// BenchmarkListenLinks is BenchmarkListenRatio among n links: a UDP listen
// on lo by ifbind (which reads the binding back to check that the
// interface exists), through a Follow binding (whose Monitor vouches for
// the link: no check), and by the floor's hook followed by the same check
// (what the check alone costs), each over the floor. The kernel finds an
// interface by index in a hash of 256 chains, so a check costs more as
// links grow.
func BenchmarkListenLinks(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			ns := fixture(b, n)
			var m *Monitor
			var index int
			inNS(b, ns, func() (err error) {
				if m, err = NewMonitor(context.Background()); err != nil {
					return err
				}
				lo, err := m.LinkByName("lo")
				index = lo.Index
				return err
			})
			defer m.Close()
			ctx := context.Background()
			listen := func(lc interface {
				ListenPacket(context.Context, string, string) (net.PacketConn, error)
			}) func() error {
				return func() error {
					pc, err := lc.ListenPacket(ctx, "udp4", "127.0.0.1:0")
					if err != nil {
						return err
					}
					return pc.Close()
				}
			}
			inNS(b, ns, func() error {
				floor := floorControl(index)
				checked := func(network, address string, c syscall.RawConn) error {
					if err := floor(network, address, c); err != nil {
						return err
					}
					var cerr error
					if err := c.Control(func(fd uintptr) { cerr = checkBinding(int(fd)) }); err != nil {
						return err
					}
					return cerr
				}
				interleave(b, 32, "floor", listen(&net.ListenConfig{Control: floor}),
					namedFunc{"ifbind", listen(&ListenConfig{Index: index})},
					namedFunc{"follow", listen(&ListenConfig{Binding: m.Follow("lo")})},
					namedFunc{"floor+check", listen(&net.ListenConfig{Control: checked})})
				return nil
			})
		})
	}
}

// BenchmarkListenCheck compares, interleaved on one UDP socket bound to lo,
// the checks a listen could make that its interface exists: the read-back
// ifbind makes (getsockopt SO_BINDTODEVICE), the ioctl SIOCGIFNAME, and, as
// the least a system call costs, a getsockopt that checks nothing
// (SO_BINDTOIFINDEX).
//
//	go test -run '^$' -bench ListenCheck -benchtime 20000x -count 6 .
func BenchmarkListenCheck(b *testing.B) {
	index := loopbackIndex(b)
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	rc, err := c.(*net.UDPConn).SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	if err := bindRawConn(rc, target{index: index}); err != nil {
		b.Fatal(err)
	}
	var fd int
	rc.Control(func(f uintptr) { fd = int(f) })
	interleave(b, 32, "readback", func() error { return checkBinding(fd) },
		namedFunc{"siocgifname", func() error {
			var ifr unix.Ifreq
			ifr.SetUint32(uint32(index))
			return unix.IoctlIfreq(fd, unix.SIOCGIFNAME, &ifr)
		}},
		namedFunc{"nocheck", func() error {
			_, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX)
			return err
		}})
	runtime.KeepAlive(c)
}
