package ifbind_test

import (
	"context"
	"errors"
	"log"
	"time"

	"github.com/ifbind/ifbind"
)

// Follow a name: a PPPoE or WireGuard link that is deleted and re-created
// on reconnect gets a new index each time, and every new connection goes
// through whichever link is called "wg0" at that moment.
func ExampleMonitor_Follow() {
	ctx := context.Background()
	m, err := ifbind.NewMonitor(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	// Wait for the link to exist and carry traffic, at most a minute.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := m.WaitUp(wctx, "wg0"); err != nil {
		log.Fatal(err)
	}

	d := &ifbind.Dialer{Binding: m.Follow("wg0")}
	c, err := d.DialContext(ctx, "tcp", "192.0.2.10:443")
	if err != nil {
		log.Fatal(err) // errors.Is(err, syscall.ENODEV) while no link is called wg0
	}
	defer c.Close()
}

// Pin a link: connections go through the device eth1 names now, and fail
// closed once it is deleted, even if a new device takes its name or index.
func ExampleMonitor_Pin() {
	ctx := context.Background()
	m, err := ifbind.NewMonitor(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	uplink, err := m.Pin("eth1") // or an index, or a MAC address
	if err != nil {
		log.Fatal(err) // "ifbind: no link named eth1; did you mean eth0, ens1?"
	}
	lc := &ifbind.ListenConfig{Binding: uplink}
	ln, err := lc.Listen(ctx, "tcp", ":8080")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	d := &ifbind.Dialer{Binding: uplink}
	if _, err := d.DialContext(ctx, "tcp", "192.0.2.10:443"); errors.Is(err, ifbind.ErrLinkGone) {
		log.Print("uplink deleted; refusing to use its replacement")
	}
}
