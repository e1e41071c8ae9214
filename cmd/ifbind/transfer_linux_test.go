package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// TestDialLinkGone deletes the interface of a udp dial in mid-session: the
// next datagram's send fails with ENODEV, which is the interface's doing
// (exit 3), not stdin's or stdout's (5), and the error names the
// interface and the direction, with one prefix.
func TestDialLinkGone(t *testing.T) {
	bin := build(t)
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ifbgone0"}, PeerName: "ifbgone1"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("failed to add veth ifbgone0: %v", err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName("ifbgone0"); err == nil {
			netlink.LinkDel(l)
		}
	})
	l, err := netlink.LinkByName("ifbgone0")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("198.51.100.1/24")
	if err := netlink.AddrAdd(l, addr); err != nil {
		t.Fatalf("failed to add an address to ifbgone0: %v", err)
	}
	for _, name := range []string{"ifbgone0", "ifbgone1"} {
		if err := netlink.LinkSetUp(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Name: name}}); err != nil {
			t.Fatalf("failed to bring %s up: %v", name, err)
		}
	}
	index := l.Attrs().Index

	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close()
	cmd := exec.Command(bin, "dial", "-v", "-i", "ifbgone0", "udp", "198.51.100.2:9")
	cmd.Stdin = stdinR
	p := start(t, cmd, "")
	stdinR.Close()
	p.waitLine(t, "connected")
	if err := netlink.LinkDel(l); err != nil {
		t.Fatalf("failed to delete ifbgone0: %v", err)
	}
	// Send until the socket says its device is gone (the first send may
	// precede the kernel's invalidation of the socket's route).
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := stdinW.Write([]byte("after\n")); err != nil {
			break // the command ended and closed its stdin
		}
		select {
		case <-p.done:
		case <-time.After(50 * time.Millisecond):
			if time.Now().Before(deadline) {
				continue
			}
			t.Fatalf("dial did not end after its interface was deleted; stderr:\n%s", p.stderr.String())
		}
		break
	}
	code := p.wait(t)
	// The kernel says ENODEV, or ENETUNREACH once the routes went with
	// the device: either way the interface is named, and gone.
	want := fmt.Sprintf("ifbind dial: udp 198.51.100.2:9 through ifbgone0 (index %d): sending to 198.51.100.2:9: ", index)
	got := p.stderr.String()
	_, last, _ := strings.Cut(strings.TrimSuffix(got, "\n"), "\n") // after -v's line
	if code != exitInterface || !strings.HasPrefix(last, want) || strings.Count(last, "ifbind") != 1 ||
		!strings.HasSuffix(last, "no such device") && !strings.HasSuffix(last, fmt.Sprintf("(ifbgone0 (index %d) is gone)", index)) {
		t.Errorf("dial whose interface is deleted: exit %d, stderr %q, want %d and %q", code, got, exitInterface, want)
	}
}

// TestTransferError checks the words and exit codes of failures during a
// transfer: the socket's name the direction and the peer without the
// *net.OpError's chain, and stdin's and stdout's are local.
func TestTransferError(t *testing.T) {
	peer := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 2), Port: 7}
	op := &net.OpError{Op: "write", Net: "udp", Addr: peer, Err: os.NewSyscallError("write", errENODEV)}
	for _, tc := range []struct {
		err  error
		code int
		msg  string
	}{
		{&sockError{"sending to", peer, op}, exitInterface, "ifbind dial: udp 192.0.2.2:7 through eth1 (index 3): sending to 192.0.2.2:7: no such device\n"},
		{&sockError{"receiving from", peer, &net.OpError{Op: "read", Net: "udp", Addr: peer, Err: os.NewSyscallError("read", errECONNREFUSED)}}, exitNetwork,
			"ifbind dial: udp 192.0.2.2:7 through eth1 (index 3): receiving from 192.0.2.2:7: connection refused\n"},
		{&localError{"writing stdout", os.ErrClosed}, exitLocal, "ifbind dial: writing stdout: file already closed\n"},
		{&localError{"reading stdin", errENODEV}, exitLocal, "ifbind dial: reading stdin: no such device\n"},
	} {
		var b strings.Builder
		ss := &session{cmd: "dial", where: "udp 192.0.2.2:7 through eth1 (index 3)"}
		if code := ss.failed(&b, tc.err); code != tc.code || b.String() != tc.msg {
			t.Errorf("transferFailed(%v): got %d, %q, want %d, %q", tc.err, code, b.String(), tc.code, tc.msg)
		}
	}
}

var (
	errENODEV       = syscall.ENODEV
	errECONNREFUSED = syscall.ECONNREFUSED
)
