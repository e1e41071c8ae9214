package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// runIn runs bin with args and stdin inside ns, and returns what it did.
func runIn(t *testing.T, ns *testnet.NS, bin, stdin string, args ...string) result {
	t.Helper()
	var r result
	err := ns.Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env()
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			return err
		}
		r = result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
		return nil
	})
	if err != nil {
		t.Fatalf("failed to run ifbind %v: %v", args, err)
	}
	return r
}

// TestRoute checks `ifbind route DEST` against the kernel's answer
// (RTM_GETROUTE, `ip route get DEST`) on the same tables, with and without
// an excluded link, and dials through `-i default`.
func TestRoute(t *testing.T) {
	bin := build(t)
	tp := testnet.NewRouted(t)
	tp.ServeNames(t)
	h, err := tp.Client.Handle()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	a, b := tp.A, tp.B
	routes := []*netlink.Route{
		{LinkIndex: a.Index, Gw: a.Gateway4.AsSlice(), Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}},
		{LinkIndex: b.Index, Gw: b.Gateway6.AsSlice(), Dst: &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}},
		{LinkIndex: b.Index, Dst: &net.IPNet{IP: net.IPv4(10, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)}},
		{LinkIndex: a.Index, Dst: &net.IPNet{IP: net.IPv4(10, 1, 0, 0).To4(), Mask: net.CIDRMask(16, 32)}, Priority: 5},
		{LinkIndex: b.Index, Dst: &net.IPNet{IP: net.IPv4(10, 1, 0, 0).To4(), Mask: net.CIDRMask(16, 32)}, Priority: 10},
		{Type: unix.RTN_BLACKHOLE, Dst: &net.IPNet{IP: net.IPv4(10, 2, 0, 0).To4(), Mask: net.CIDRMask(16, 32)}},
		{LinkIndex: a.Index, Dst: &net.IPNet{IP: net.ParseIP("2001:db8:77::"), Mask: net.CIDRMask(48, 128)}},
	}
	for _, r := range routes {
		if err := h.RouteAdd(r); err != nil {
			t.Fatalf("failed to add %v: %v", r, err)
		}
	}
	for _, dst := range []string{"198.51.100.1", "10.9.9.9", "10.1.2.3", "10.2.3.4", "2001:db8:77::1", "2001:db8:99::1", "203.0.113.1"} {
		want := "error"
		rs, err := h.RouteGet(net.ParseIP(dst))
		if err == nil && len(rs) > 0 {
			l, err := h.LinkByIndex(rs[0].LinkIndex)
			if err != nil {
				t.Fatal(err)
			}
			want = l.Attrs().Name
		}
		r := runIn(t, tp.Client, bin, "", "route", dst)
		got := "error"
		if r.code == 0 {
			got, _, _ = strings.Cut(r.stdout, " ")
		} else if r.code != exitInterface || !strings.Contains(r.stderr, "no usable route") {
			t.Errorf("route %s: exit %d, stderr %q", dst, r.code, r.stderr)
		}
		if got != want {
			t.Errorf("ifbind route %s: got %s, the kernel says %s (stderr %q)", dst, got, want, r.stderr)
		}
	}
	// 10.1.0.0/16 through a, excluded: the kernel would take b's route.
	runIn(t, tp.Client, bin, "", "route", "-exclude", a.LinkName, "10.1.2.3").
		expect(t, "route with a excluded", 0, b.LinkName+" (index "+itoa(b.Index)+")\n")
	runIn(t, tp.Client, bin, "", "route", "-exclude-kinds", "veth", "10.1.2.3").expect(t, "route with veths excluded", exitInterface, "")
	runIn(t, tp.Client, bin, "", "route", "nonsense").expect(t, "route to nonsense", exitUsage, "")

	// -i default: IPv4 through a, IPv6 through b.
	runIn(t, tp.Client, bin, "who?\n", "dial", "-i", "default", "tcp", "203.0.113.1:7007").expect(t, "dial -i default over IPv4", 0, "a")
	runIn(t, tp.Client, bin, "who?\n", "dial", "-i", "default", "tcp", "[2001:db8:ff::1]:7007").expect(t, "dial -i default over IPv6", 0, "b")
	if err := h.RouteDel(routes[0]); err != nil {
		t.Fatal(err)
	}
	r := runIn(t, tp.Client, bin, "", "dial", "-i", "default", "tcp", "203.0.113.1:7007")
	if r.code != exitInterface || !strings.Contains(r.stderr, "no usable IPv4 default route") {
		t.Errorf("dial -i default without an IPv4 default: exit %d, stderr %q, want %d and no usable route", r.code, r.stderr, exitInterface)
	}
}
