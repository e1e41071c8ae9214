package ifbind_test

import (
	"context"
	"errors"
	"log"

	"github.com/ifbind/ifbind"
)

// Dial through eth0 of the network namespace "blue" (/run/netns/blue),
// from any goroutine, without moving the process.
func ExampleDialer_netns() {
	ctx := context.Background()
	m, err := ifbind.NewMonitorAt(ctx, "blue") // the links of blue
	if err != nil {
		log.Fatal(err) // errors.Is(err, syscall.EPERM) without CAP_SYS_ADMIN over blue
	}
	defer m.Close()

	// The binding carries the namespace: no Netns needed.
	d := &ifbind.Dialer{Binding: m.Follow("eth0")}
	// Names resolved from blue, by its own nameservers
	// (/etc/netns/blue/resolv.conf, else /etc/resolv.conf).
	r, err := ifbind.NewResolver(d)
	if err != nil {
		log.Fatal(err)
	}
	d.Resolver = r
	c, err := d.DialContext(ctx, "tcp", "printer.internal:631")
	if errors.Is(err, ifbind.ErrNetnsGone) {
		log.Fatal("blue was deleted")
	}
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

// Listen on eth0 of the namespace of process 4242, by index.
func ExampleListenConfig_netns() {
	lc := &ifbind.ListenConfig{Netns: "/proc/4242/ns/net", Index: 2}
	ln, err := lc.Listen(context.Background(), "tcp", ":8080")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
}
