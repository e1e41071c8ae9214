package ifbind

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"

	"github.com/ifbind/ifbind/internal/testnet"
)

func TestDialerReachesItsOwnPeer(t *testing.T) {
	tp := testnet.New(t)
	tp.ServeNames(t)
	ctx := context.Background()
	for _, s := range tp.Sides() {
		for _, ip := range []netip.Addr{testnet.PeerV4, testnet.PeerV6} {
			for _, network := range []string{"tcp", "udp"} {
				d := &Dialer{Index: s.Index}
				addr := net.JoinHostPort(ip.String(), strconv.Itoa(testnet.Port))
				c, err := d.DialContext(ctx, network, addr)
				if err != nil {
					t.Fatalf("failed to dial %s %s on %s: %v", network, addr, s.LinkName, err)
				}
				got, err := testnet.Ask(c)
				c.Close()
				if err != nil {
					t.Fatalf("failed to ask %s %s on %s: %v", network, addr, s.LinkName, err)
				}
				if got != s.Name {
					t.Errorf("%s %s bound to %s: answered by %q, want %q", network, addr, s.LinkName, got, s.Name)
				}
			}
		}
	}
	if a, b := tp.A.Seen.Load(), tp.B.Seen.Load(); a != 4 || b != 4 {
		t.Errorf("peers saw a=%d b=%d, want 4 each", a, b)
	}
}
