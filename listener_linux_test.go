package ifbind

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
)

const listenPort = 7100

// TestListenersShareAPort binds a TCP listener and a UDP conn on the same
// port to each NIC at once; each hears only its own NIC's peer.
func TestListenersShareAPort(t *testing.T) {
	tp := testnet.New(t)
	for _, client := range []netip.Addr{testnet.ClientV4, testnet.ClientV6} {
		t.Run(client.String(), func(t *testing.T) { testListenersShareAPort(t, tp, client) })
	}
}

func testListenersShareAPort(t *testing.T, tp *testnet.Topo, client netip.Addr) {
	ctx := context.Background()
	{
		to := netip.AddrPortFrom(client, listenPort).String()
		lns := map[string]net.Listener{}
		pcs := map[string]net.PacketConn{}
		for _, s := range tp.Sides() {
			lc := &ListenConfig{Index: s.Index}
			ln, err := lc.Listen(ctx, "tcp", ":7100")
			if err != nil {
				t.Fatalf("failed to listen on %s: %v", s.LinkName, err)
			}
			defer ln.Close()
			pc, err := lc.ListenPacket(ctx, "udp", ":7100")
			if err != nil {
				t.Fatalf("failed to listen for packets on %s: %v", s.LinkName, err)
			}
			defer pc.Close()
			if got := boundIndexOf(t, ln.(syscall.Conn)); got != s.Index {
				t.Errorf("listener bound to %d, want %d", got, s.Index)
			}
			lns[s.Name], pcs[s.Name] = ln, pc
		}
		// Each peer connects and sends its name to the client address,
		// which both NICs carry.
		for _, s := range tp.Sides() {
			if err := s.Peer.Do(func() error {
				c, err := net.Dial("tcp", to)
				if err != nil {
					return err
				}
				c.Write([]byte(s.Name))
				c.Close()
				u, err := net.Dial("udp", to)
				if err != nil {
					return err
				}
				defer u.Close()
				_, err = u.Write([]byte(s.Name))
				return err
			}); err != nil {
				t.Fatalf("peer %s failed to reach %s: %v", s.Name, to, err)
			}
		}
		for _, s := range tp.Sides() {
			ln := lns[s.Name].(*net.TCPListener)
			ln.SetDeadline(time.Now().Add(5 * time.Second))
			c, err := ln.Accept()
			if err != nil {
				t.Fatalf("%s: listener on %s accepted nothing: %v", to, s.LinkName, err)
			}
			got, _ := io.ReadAll(c)
			c.Close()
			if string(got) != s.Name {
				t.Errorf("%s: listener on %s got %q, want %q", to, s.LinkName, got, s.Name)
			}
			ln.SetDeadline(time.Now().Add(100 * time.Millisecond))
			if c, err := ln.Accept(); err == nil {
				c.Close()
				t.Errorf("%s: listener on %s accepted a second connection, want one", to, s.LinkName)
			}

			pc := pcs[s.Name]
			pc.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatalf("%s: conn on %s received nothing: %v", to, s.LinkName, err)
			}
			if string(buf[:n]) != s.Name {
				t.Errorf("%s: conn on %s got %q, want %q", to, s.LinkName, buf[:n], s.Name)
			}
			if !testnet.Quiet(pc, 100*time.Millisecond) {
				t.Errorf("%s: conn on %s received a second datagram, want one", to, s.LinkName)
			}
		}
	}
}

func TestListenConfigFailsClosed(t *testing.T) {
	tp := testnet.New(t)
	missing := deadIndex(t)
	ctx := context.Background()
	for _, tc := range badIndexes(missing) {
		for _, network := range []string{"tcp", "tcp4", "tcp6", "udp", "udp4", "udp6"} {
			lc := &ListenConfig{Index: tc.index}
			var err error
			if network[0] == 't' {
				var ln net.Listener
				if ln, err = lc.Listen(ctx, network, ":0"); err == nil {
					ln.Close()
				}
			} else {
				var pc net.PacketConn
				if pc, err = lc.ListenPacket(ctx, network, ":0"); err == nil {
					pc.Close()
				}
			}
			if err == nil {
				t.Errorf("%s: listen %s succeeded, want an error", tc.name, network)
				continue
			}
			checkBindError(t, err, tc.want, tc.index)
		}
		if _, err := (&ListenConfig{Index: tc.index}).NetListenConfig().Listen(ctx, "tcp", ":0"); !errors.Is(err, tc.want) {
			t.Errorf("%s: NetListenConfig: got %v, want %v", tc.name, err, tc.want)
		}
	}
	_ = tp
}
