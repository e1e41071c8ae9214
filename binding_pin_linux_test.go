package ifbind

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"golang.org/x/sys/unix"
)

// TestListenUDPBindingPinsMulticast proves that ListenUDP with a Binding
// pins IPv6 multicast egress to the interface the Binding chose, read back
// through IPV6_MULTICAST_IF, and not to Index, which is 0 with a Binding.
// (IPv4 cannot be read back: Linux answers IP_MULTICAST_IF with the
// address, not the index that ip_mreqn set.)
func TestListenUDPBindingPinsMulticast(t *testing.T) {
	tp := testnet.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := NewMonitor(ctx)
	if err != nil {
		t.Fatalf("failed to start the monitor: %v", err)
	}
	defer m.Close()
	pin, err := m.Pin(tp.B.LinkName)
	if err != nil {
		t.Fatalf("failed to pin %s: %v", tp.B.LinkName, err)
	}
	for _, b := range []struct {
		name    string
		binding Binding
		want    int
	}{
		{"Follow(" + tp.A.LinkName + ")", m.Follow(tp.A.LinkName), tp.A.Index},
		{"Pin(" + tp.B.LinkName + ")", pin, tp.B.Index},
	} {
		for _, network := range []string{"udp6", "udp"} {
			c, err := (&ListenConfig{Binding: b.binding}).ListenUDP(ctx, network, netip.AddrPort{})
			if err != nil {
				t.Fatalf("%s: failed to listen on %s: %v", b.name, network, err)
			}
			rc, err := c.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var got int
			var gerr error
			if cerr := rc.Control(func(fd uintptr) {
				got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF)
			}); cerr != nil {
				gerr = cerr
			}
			c.Close()
			if gerr != nil || got != b.want {
				t.Errorf("%s, %s: IPV6_MULTICAST_IF = %d, %v; want %d", b.name, network, got, gerr, b.want)
			}
		}
	}
}

// TestNilMonitorHappyEyeballs proves that a binding from a nil *Monitor (an
// ignored NewMonitor error) fails each socket with an error for which
// errors.Is(err, net.ErrClosed) holds, and does not panic: a Happy Eyeballs
// dial makes its second socket in a goroutine of net's, where a panic in
// the Control hook would kill the program.
func TestNilMonitorHappyEyeballs(t *testing.T) {
	tp := testnet.New(t)
	serveDNS(t, tp)
	var m *Monitor
	if _, err := m.Pin(tp.A.LinkName); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Pin on a nil *Monitor: got %v, want net.ErrClosed", err)
	}
	r, err := NewResolver(&Dialer{Index: tp.A.Index}, testnet.PeerV4.String())
	if err != nil {
		t.Fatalf("failed to make the resolver: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if addrs, err := r.LookupNetIP(ctx, "ip", webName); err != nil || len(addrs) != 2 {
		t.Fatalf("failed to look up %s: %v, %v; want one address of each family, for Happy Eyeballs", webName, addrs, err)
	}
	var hooked atomic.Int32
	d := &Dialer{Binding: m.Follow(tp.A.LinkName)}
	d.Resolver = r
	d.FallbackDelay = time.Millisecond
	d.Control = func(string, string, syscall.RawConn) error {
		hooked.Add(1) // never: the binding fails first
		return nil
	}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(webName, httpPort))
	if c != nil {
		c.Close()
	}
	var be *BindError
	if !errors.Is(err, net.ErrClosed) || !errors.As(err, &be) {
		t.Errorf("dial with a binding of a nil *Monitor: got %v, want a *BindError for which errors.Is(err, net.ErrClosed) holds", err)
	}
	if n := hooked.Load(); n != 0 {
		t.Errorf("the caller's hook ran %d times: a socket was bound", n)
	}
}
