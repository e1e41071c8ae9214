package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestDial(t *testing.T) {
	bin := build(t)
	tp := testnet.New(t)
	tp.ServeNames(t)
	ways := specs(t, tp.B.Index, "ifbind-alt-b")

	t.Run("each side", func(t *testing.T) {
		for _, s := range tp.Sides() {
			for _, network := range []string{"tcp", "udp"} {
				for _, addr := range []string{"192.0.2.2:7007", "[2001:db8::2]:7007"} {
					a, b := tp.A.Seen.Load(), tp.B.Seen.Load()
					runBin(t, bin, "who?\n", "dial", "-idle", "300ms", "-i", s.LinkName, network, addr).
						expect(t, "dial "+network+" "+addr+" via "+s.LinkName, 0, s.Name)
					da, db := tp.A.Seen.Load()-a, tp.B.Seen.Load()-b
					if (s.Name == "a") != (da == 1 && db == 0) || (s.Name == "b") != (db == 1 && da == 0) {
						t.Errorf("dial %s %s via %s: peer a saw %d, peer b %d", network, addr, s.LinkName, da, db)
					}
				}
			}
		}
	})

	t.Run("iface forms", func(t *testing.T) {
		for way, spec := range ways {
			runBin(t, bin, "who?\n", "dial", "-i", spec, "tcp", "192.0.2.2:7007").expect(t, "dial -i "+way+" "+spec, 0, "b")
		}
	})

	t.Run("verbose", func(t *testing.T) {
		// --verbose is -v, as in get.
		r := runBin(t, bin, "who?\n", "dial", "--verbose", "-i", "ifb-b", "tcp", "192.0.2.2:7007")
		r.expect(t, "dial --verbose", 0, "b")
		if want := fmt.Sprintf("through ifb-b (index %d)", tp.B.Index); !strings.Contains(r.stderr, "ifbind dial: connected ") || !strings.Contains(r.stderr, want) {
			t.Errorf("dial --verbose: stderr %q, want the connection and %q", r.stderr, want)
		}
	})

	t.Run("errors", func(t *testing.T) {
		r := runBin(t, bin, "", "dial", "-i", "ifb-a", "tcp", "192.0.2.2:9")
		if r.code != exitNetwork || !strings.Contains(r.stderr, "connection refused") {
			t.Errorf("dial a closed port: exit %d, stderr %q, want %d and connection refused", r.code, r.stderr, exitNetwork)
		}
		r = runBin(t, bin, "", "dial", "-i", "42", "tcp", "192.0.2.2:7007")
		if r.code != exitInterface || !strings.Contains(r.stderr, "ifb-b") {
			t.Errorf("dial -i 42: exit %d, stderr %q, want %d and a list of the links", r.code, r.stderr, exitInterface)
		}
		r = runBin(t, bin, "", "dial", "-i", "02:00:00:00:00:99", "tcp", "192.0.2.2:7007")
		if r.code != exitInterface || !strings.Contains(r.stderr, "ifb-a") {
			t.Errorf("dial -i unknown MAC: exit %d, stderr %q, want %d and a list of the links", r.code, r.stderr, exitInterface)
		}
		// Nothing answers 192.0.2.99: the connect waits for ARP. -w takes
		// seconds, as nc's.
		r = runBin(t, bin, "", "dial", "-w", "0.3", "-i", "ifb-a", "tcp", "192.0.2.99:7007")
		if want := fmt.Sprintf("through ifb-a (index %d): timed out connecting after 300ms (-w)", tp.A.Index); r.code != exitNetwork || !strings.Contains(r.stderr, want) {
			t.Errorf("dial -w 0.3: exit %d, stderr %q, want %d and %q", r.code, r.stderr, exitNetwork, want)
		}
		for _, args := range [][]string{
			{"dial", "tcp", "192.0.2.2:7007"},
			{"dial", "-i", "ifb-a", "sctp", "192.0.2.2:7007"},
			{"dial", "-i", "ifb-a", "tcp", "192.0.2.2"},
			{"dial", "-i", "ifb-a", "tcp"},
		} {
			if r := runBin(t, bin, "", args...); r.code != exitUsage {
				t.Errorf("%v: exit %d, want %d; stderr %s", args, r.code, exitUsage, r.stderr)
			}
		}
	})
}

// peerDial dials from inside side's peer namespace.
func peerDial(t *testing.T, s *testnet.Side, network, addr string, timeout time.Duration) (net.Conn, error) {
	t.Helper()
	var c net.Conn
	err := s.Peer.Do(func() error {
		var err error
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// refusedOrTimeout reports whether err says that nothing answered.
func refusedOrTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &ne) && ne.Timeout()
}

func TestListen(t *testing.T) {
	bin := build(t)
	tp := testnet.New(t)
	ways := specs(t, tp.A.Index, "ifbind-alt-a")

	t.Run("address not here", func(t *testing.T) {
		// An address this host does not have is a usage error (2), not
		// a network one: the command line is wrong.
		for _, network := range []string{"tcp", "udp"} {
			r := runBin(t, bin, "", "listen", "--verbose", "-i", "ifb-a", network, "198.51.100.7:9000")
			want := fmt.Sprintf("ifbind listen: %s 198.51.100.7:9000 through ifb-a (index %d): ", network, tp.A.Index)
			if r.code != exitUsage || !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, "not an address of this host") {
				t.Errorf("listen %s on 198.51.100.7: exit %d, stderr %q, want %d, %q and not an address of this host", network, r.code, r.stderr, exitUsage, want)
			}
		}
	})

	t.Run("tcp", func(t *testing.T) {
		port := 9000
		for way, spec := range ways {
			port++
			addr := "192.0.2.1:" + itoa(port)
			p := start(t, exec.Command(bin, "listen", "-v", "-i", spec, "tcp", ":"+itoa(port)), "to-a")
			p.waitLine(t, "listening on")
			// Peer b shares the address, but the listener is not on its
			// NIC: its SYN meets no socket. (The RST goes back by the
			// first route, through ifb-a, so peer b sees a timeout.)
			if _, err := peerDial(t, tp.B, "tcp", addr, 300*time.Millisecond); !refusedOrTimeout(err) {
				t.Errorf("listen -i %s: peer b's dial got %v, want no connection", way, err)
			}
			c, err := peerDial(t, tp.A, "tcp", addr, 10*time.Second)
			if err != nil {
				t.Fatalf("listen -i %s: peer a failed to connect: %v", way, err)
			}
			c.Write([]byte("from-a"))
			c.(*net.TCPConn).CloseWrite()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			got, err := io.ReadAll(c)
			if err != nil || string(got) != "to-a" {
				t.Errorf("listen -i %s: peer a read %q (%v), want %q", way, got, err, "to-a")
			}
			if code := p.wait(t); code != 0 || p.stdout.String() != "from-a" {
				t.Errorf("listen -i %s: exit %d, stdout %q, want 0 and %q; stderr:\n%s", way, code, p.stdout.String(), "from-a", p.stderr.String())
			}
		}
	})

	t.Run("udp", func(t *testing.T) {
		p := start(t, exec.Command(bin, "listen", "-v", "-idle", "500ms", "-i", "ifb-a", "udp", ":9100"), "to-a")
		p.waitLine(t, "listening on")
		// Peer b's datagram, sent first, meets no socket: had it reached
		// the listener, peer b would be its peer and "from-a" dropped.
		cb, err := peerDial(t, tp.B, "udp", "192.0.2.1:9100", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		cb.Write([]byte("from-b"))
		cb.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, err := cb.Read(make([]byte, 10)); !refusedOrTimeout(err) {
			t.Errorf("peer b's datagram: read got %d bytes, %v, want no answer", n, err)
		}
		ca, err := peerDial(t, tp.A, "udp", "192.0.2.1:9100", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ca.Write([]byte("from-a"))
		ca.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 10)
		n, err := ca.Read(buf)
		if err != nil || string(buf[:n]) != "to-a" {
			t.Errorf("peer a read %q (%v), want %q", buf[:n], err, "to-a")
		}
		if code := p.wait(t); code != 0 || p.stdout.String() != "from-a" {
			t.Errorf("listen udp: exit %d, stdout %q, want 0 and %q; stderr:\n%s", code, p.stdout.String(), "from-a", p.stderr.String())
		}
	})

	t.Run("interrupted", func(t *testing.T) {
		p := start(t, exec.Command(bin, "listen", "-v", "-i", "ifb-b", "tcp", ":9200"), "")
		p.waitLine(t, "listening on")
		p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.wait(t); code != exitInterrupted {
			t.Errorf("listen after SIGTERM: exit %d, want %d", code, exitInterrupted)
		}
	})

	t.Run("bare port", func(t *testing.T) {
		// nc -l 9400: a bare port is every address of IFACE.
		p := start(t, exec.Command(bin, "listen", "-v", "-i", "ifb-a", "tcp", "9400"), "to-a")
		p.waitLine(t, "listening on [::]:9400 through ifb-a")
		c, err := peerDial(t, tp.A, "tcp", "192.0.2.1:9400", 10*time.Second)
		if err != nil {
			t.Fatalf("listen tcp 9400: peer a failed to connect: %v", err)
		}
		c.(*net.TCPConn).CloseWrite()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if got, err := io.ReadAll(c); err != nil || string(got) != "to-a" {
			t.Errorf("listen tcp 9400: peer a read %q (%v), want %q", got, err, "to-a")
		}
		if code := p.wait(t); code != 0 {
			t.Errorf("listen tcp 9400: exit %d, want 0; stderr:\n%s", code, p.stderr.String())
		}
	})

	t.Run("port in use", func(t *testing.T) {
		p := start(t, exec.Command(bin, "listen", "-v", "-i", "ifb-a", "udp", ":9500"), "")
		p.waitLine(t, "listening on")
		r := runBin(t, bin, "", "listen", "-i", "ifb-a", "udp", ":9500")
		if want := fmt.Sprintf("ifbind listen: udp :9500 through ifb-a (index %d): listen udp :9500: bind: address already in use", tp.A.Index); r.code != exitLocal || !strings.HasPrefix(r.stderr, want) {
			t.Errorf("listen on a port in use: exit %d, stderr %q, want %d and %q", r.code, r.stderr, exitLocal, want)
		}
		// The other NIC's port is free: that is the point of binding.
		q := start(t, exec.Command(bin, "listen", "-v", "-i", "ifb-b", "udp", ":9500"), "")
		q.waitLine(t, "listening on")
		for _, p := range []*proc{p, q} {
			p.cmd.Process.Signal(syscall.SIGTERM)
			if code := p.wait(t); code != exitInterrupted {
				t.Errorf("listen after SIGTERM: exit %d, want %d", code, exitInterrupted)
			}
		}
	})

	t.Run("zones", func(t *testing.T) {
		r := runBin(t, bin, "", "listen", "-i", "ifb-a", "tcp", "[fe80::1%ifb-b]:9600")
		if want := fmt.Sprintf("zone %%ifb-b is not ifb-a (index %d), the interface of -i; drop the zone, which -i sets", tp.A.Index); r.code != exitUsage || !strings.Contains(r.stderr, want) {
			t.Errorf("listen with another NIC's zone: exit %d, stderr %q, want %d and %q", r.code, r.stderr, exitUsage, want)
		}
		r = runBin(t, bin, "", "listen", "-i", "ifb-a", "tcp", "[2001:db8::1%ifb-a]:9600")
		if r.code != exitUsage || !strings.Contains(r.stderr, "zone %ifb-a on an address that is not link-local") {
			t.Errorf("listen with a zone on a global address: exit %d, stderr %q, want %d and the zone named", r.code, r.stderr, exitUsage)
		}
		// ifb-a's own link-local address, with its zone, by index, or
		// with none: -i scopes it.
		addr := linkLocal(t, tp.A.Index)
		for _, host := range []string{addr + "%ifb-a", addr + "%" + itoa(tp.A.Index), addr} {
			p := start(t, exec.Command(bin, "listen", "-v", "-i", "ifb-a", "udp", "["+host+"]:9601"), "")
			p.waitLine(t, "listening on ["+addr+"%ifb-a]:9601 through ifb-a")
			p.cmd.Process.Signal(syscall.SIGTERM)
			p.wait(t)
		}
		r = runBin(t, bin, "", "listen", "-i", "ifb-a", "tcp", "[fe80::99]:9600")
		if r.code != exitUsage || !strings.Contains(r.stderr, "cannot assign requested address (not an address of this host: ifbind links lists those of ifb-a)") {
			t.Errorf("listen on a link-local address of no NIC: exit %d, stderr %q, want %d and a hint", r.code, r.stderr, exitUsage)
		}
	})

	t.Run("errors", func(t *testing.T) {
		r := runBin(t, bin, "", "listen", "-i", "nosuch0", "tcp", ":9300")
		if r.code != exitInterface || !strings.Contains(r.stderr, "ifbind-alt-a") {
			t.Errorf("listen -i nosuch0: exit %d, stderr %q, want %d and a list of the links", r.code, r.stderr, exitInterface)
		}
		if r := runBin(t, bin, "", "listen", "-i", "ifb-a", "tcp"); r.code != exitUsage {
			t.Errorf("listen without an address: exit %d, want %d", r.code, exitUsage)
		}
	})
}

// linkLocal returns the IPv6 link-local address of the link with index,
// once it is usable (duplicate address detection over).
func linkLocal(t *testing.T, index int) string {
	t.Helper()
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		t.Fatalf("failed to find link %d: %v", index, err)
	}
	for i := 0; i < 500; i++ {
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			t.Fatalf("failed to list the addresses of link %d: %v", index, err)
		}
		for _, a := range addrs {
			if a.IP.IsLinkLocalUnicast() && a.Flags&(unix.IFA_F_TENTATIVE) == 0 {
				return a.IP.String()
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("link %d has no usable link-local address", index)
	return ""
}
