package ifbind_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"syscall"

	"github.com/ifbind/ifbind"
)

// Dial through one interface, named as the user names it.
func ExampleDialer() {
	link, err := ifbind.LookupLink("eth0")
	if err != nil {
		log.Fatal(err)
	}
	d := &ifbind.Dialer{Index: link.Index}
	conn, err := d.DialContext(context.Background(), "tcp", "192.0.2.10:80")
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
}

// A Dialer with no interface refuses to dial rather than leave by the
// default route.
func ExampleDialer_failClosed() {
	d := &ifbind.Dialer{} // Index is 0
	_, err := d.Dial("tcp", "192.0.2.10:80")
	fmt.Println(errors.Is(err, syscall.EINVAL))
	fmt.Println(err)
	// Output:
	// true
	// dial tcp: ifbind: no interface to bind to: Index is 0
}

// Hand the binding to an API that takes a *net.Dialer.
func ExampleDialer_NetDialer() {
	d := &ifbind.Dialer{Index: 2}
	conn, err := tls.DialWithDialer(d.NetDialer(), "tcp", "example.net:443", &tls.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
}

// Listen on one interface only: the same port may be bound on another
// interface by another ListenConfig.
func ExampleListenConfig() {
	lc := &ifbind.ListenConfig{Index: 2}
	ln, err := lc.Listen(context.Background(), "tcp", ":8080")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
}

// Receive UDP datagrams that arrive through one interface only.
func ExampleListenConfig_ListenPacket() {
	lc := &ifbind.ListenConfig{Index: 2}
	pc, err := lc.ListenPacket(context.Background(), "udp", ":5353")
	if err != nil {
		log.Fatal(err)
	}
	defer pc.Close()
	buf := make([]byte, 1500)
	n, from, err := pc.ReadFrom(buf)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes from %v\n", n, from)
}

// Bind a socket made some other way, from its own Control hook.
func ExampleBindRawConn() {
	control := func(network, address string, c syscall.RawConn) error {
		return ifbind.BindRawConn(c, 2)
	}
	_ = control // for a net.Dialer, net.ListenConfig, or any API taking a Control hook
}
