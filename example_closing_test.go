package ifbind_test

import (
	"context"
	"errors"
	"log"

	"github.com/ifbind/ifbind"
)

// Pin a link and have the monitor close what was made through it once the
// link is deleted or moved out: a read blocked on a VPN tunnel that went
// away returns at once, and says why.
func ExampleMonitor_PinClosing() {
	ctx := context.Background()
	m, err := ifbind.NewMonitor(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	tunnel, err := m.PinClosing("wg0")
	if err != nil {
		log.Fatal(err)
	}
	d := &ifbind.Dialer{Binding: tunnel}
	c, err := d.DialContext(ctx, "tcp", "192.0.2.10:443") // a wrapper of the *net.TCPConn
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	buf := make([]byte, 4096)
	if _, err := c.Read(buf); errors.Is(err, ifbind.ErrLinkGone) {
		log.Print("wg0 went away; not reconnecting through whatever replaced it")
	}
}
