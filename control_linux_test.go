package ifbind

import (
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// dormantPair adds two links, down so that they can be renamed, and returns
// their indexes.
func dormantPair(t *testing.T) (x, y int) {
	t.Helper()
	testnet.Require(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ifb-x"}, PeerName: "ifb-y"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("failed to add a veth pair: %v", err)
	}
	lx, err := netlink.LinkByName("ifb-x")
	if err != nil {
		t.Fatalf("failed to look up ifb-x: %v", err)
	}
	t.Cleanup(func() { netlink.LinkDel(lx) })
	ly, err := netlink.LinkByName("ifb-y")
	if err != nil {
		t.Fatalf("failed to look up ifb-y: %v", err)
	}
	return lx.Attrs().Index, ly.Attrs().Index
}

// swapNames swaps the names of two dormant links, as udev might.
func swapNames(t *testing.T, x, y int) {
	lx, err := netlink.LinkByIndex(x)
	if err != nil {
		t.Errorf("failed to look up %d: %v", x, err)
		return
	}
	ly, err := netlink.LinkByIndex(y)
	if err != nil {
		t.Errorf("failed to look up %d: %v", y, err)
		return
	}
	nx, ny := lx.Attrs().Name, ly.Attrs().Name
	for _, step := range []struct {
		l    netlink.Link
		name string
	}{{lx, "ifb-tmp"}, {ly, nx}, {lx, ny}} {
		if err := netlink.LinkSetName(step.l, step.name); err != nil {
			t.Errorf("failed to rename %s to %s: %v", step.l.Attrs().Name, step.name, err)
		}
	}
}

// oldKernel returns sockOps that act like a kernel without SO_BINDTOIFINDEX
// (before 5.0) and run race before every SO_BINDTODEVICE.
func oldKernel(race func(attempt int)) *sockOps {
	ops := kernelOps
	ops.bindIndex = func(int, int) error { return unix.ENOPROTOOPT }
	attempt := 0
	ops.bindName = func(fd int, name string) error {
		race(attempt)
		attempt++
		return kernelOps.bindName(fd, name)
	}
	ops.boundIndex = boundIndexByName
	return &ops
}

func udpSocket(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("failed to make a socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestFallbackBindsByName(t *testing.T) {
	x, _ := dormantPair(t)
	fd := udpSocket(t)
	if err := bindFD(fd, target{index: x, check: true}, oldKernel(func(int) {})); err != nil {
		t.Fatalf("failed to bind by name: %v", err)
	}
	if got, _ := boundIndex(fd); got != x {
		t.Errorf("bound to %d, want %d", got, x)
	}
}

// TestFallbackCatchesRename renames the interfaces between the lookup of the
// name and SO_BINDTODEVICE: the name then belongs to the other interface,
// the read-back sees it, and the binding is made again.
func TestFallbackCatchesRename(t *testing.T) {
	x, y := dormantPair(t)
	fd := udpSocket(t)
	tries := 0
	err := bindFD(fd, target{index: x, check: true}, oldKernel(func(attempt int) {
		tries++
		if attempt == 0 {
			swapNames(t, x, y)
		}
	}))
	if err != nil {
		t.Fatalf("failed to bind by name: %v", err)
	}
	if tries != 2 {
		t.Errorf("bound by name %d times, want 2 (the first on the renamed interface)", tries)
	}
	if got, _ := boundIndex(fd); got != x {
		t.Errorf("bound to %d, want %d", got, x)
	}
}

// TestFallbackGivesUp renames before every try: the binding fails rather
// than leave the socket on the wrong interface.
func TestFallbackGivesUp(t *testing.T) {
	x, y := dormantPair(t)
	fd := udpSocket(t)
	err := bindFD(fd, target{index: x, check: true}, oldKernel(func(int) { swapNames(t, x, y) }))
	if !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("got %v, want an error for which errors.Is(err, EAGAIN)", err)
	}
	var be *BindError
	if !errors.As(err, &be) || be.Index != x {
		t.Errorf("got %#v, want a *BindError for index %d", err, x)
	}
	if !strings.HasPrefix(err.Error(), "ifbind: interface ") {
		t.Errorf("got %q, want it to name the interface", err)
	}
}

func TestFallbackMissingInterface(t *testing.T) {
	testnet.Require(t)
	missing := deadIndex(t)
	fd := udpSocket(t)
	err := bindFD(fd, target{index: missing, check: true}, oldKernel(func(int) {}))
	if !errors.Is(err, syscall.ENODEV) {
		t.Fatalf("got %v, want ENODEV", err)
	}
}

// TestRebindNeedsCapNetRaw drops CAP_NET_RAW from one locked thread: a fresh
// socket still binds (Linux 5.7 and newer), binding it again is EPERM with
// an error that says what would fix it, and the socket is aborted.
func TestRebindNeedsCapNetRaw(t *testing.T) {
	tp := testnet.New(t)
	type result struct {
		first, again error
		restored     bool
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		var r result
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			r.first = err
			runtime.UnlockOSThread()
			done <- r
			return
		}
		saved := data
		data[0].Effective &^= 1 << unix.CAP_NET_RAW
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			r.first = err
			runtime.UnlockOSThread()
			done <- r
			return
		}
		ctx := context.Background()
		lc := &ListenConfig{Index: tp.A.Index}
		var pc net.PacketConn
		if pc, r.first = lc.ListenPacket(ctx, "udp", ":0"); r.first == nil {
			pc.Close()
		}
		lc.Control = func(_, _ string, c syscall.RawConn) error { return BindRawConn(c, tp.B.Index) }
		if pc, r.again = lc.ListenPacket(ctx, "udp", ":0"); r.again == nil {
			pc.Close()
		}
		if err := unix.Capset(&hdr, &saved[0]); err == nil {
			r.restored = true
			runtime.UnlockOSThread()
		} // else the thread dies with this goroutine, still locked
		done <- r
	}()
	r := <-done
	if !r.restored {
		t.Fatalf("failed to drop CAP_NET_RAW, or to restore it (first binding: %v)", r.first)
	}
	if r.first != nil {
		t.Errorf("first binding without CAP_NET_RAW: got %v, want success", r.first)
	}
	if !errors.Is(r.again, syscall.EPERM) {
		t.Fatalf("binding again without CAP_NET_RAW: got %v, want EPERM", r.again)
	}
	t.Logf("error: %v", r.again)
	if msg := r.again.Error(); !strings.Contains(msg, "CAP_NET_RAW") || !strings.Contains(msg, tp.B.LinkName) {
		t.Errorf("got %q, want it to name %s and say CAP_NET_RAW", msg, tp.B.LinkName)
	}
}
