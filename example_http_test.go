package ifbind_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/ifbind/ifbind"
)

// An http.Client for each uplink, for example to check that each path to a
// service works. Every connection of a client, TLS and HTTP/2 included,
// leaves through its own interface.
func ExampleNewTransport() {
	for _, name := range []string{"eth0", "wwan0"} {
		link, err := ifbind.LookupLink(name)
		if err != nil {
			log.Fatal(err)
		}
		d := &ifbind.Dialer{Index: link.Index}
		d.Timeout = 5 * time.Second
		client := &http.Client{Transport: ifbind.NewTransport(d), Timeout: 10 * time.Second}
		resp, err := client.Get("https://example.com/health")
		if err != nil {
			fmt.Printf("%s: down: %v\n", link.Name, err)
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Printf("%s: %s over %s\n", link.Name, resp.Status, resp.Proto)
	}
}

// Names resolved through the interface too: without a bound resolver, the
// queries for the names d dials leave by the default route, and are answered
// by the default route's network.
func ExampleNewResolver() {
	link, err := ifbind.LookupLink("wwan0")
	if err != nil {
		log.Fatal(err)
	}
	d := &ifbind.Dialer{Index: link.Index}
	// The nameservers the interface's network gave, for example by DHCP.
	// With none, those of /etc/resolv.conf are used, and a loopback one
	// (systemd-resolved's 127.0.0.53) is an error here, not a hang later.
	r, err := ifbind.NewResolver(d, "192.0.2.53", "[2001:db8::53]:53")
	if err != nil {
		log.Fatal(err)
	}
	d.Resolver = r
	client := &http.Client{Transport: ifbind.NewTransport(d)}
	resp, err := client.Get("https://example.com/")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	addrs, err := r.LookupNetIP(context.Background(), "ip", "example.com")
	fmt.Println(addrs, err)
}

// TLS with crypto/tls: tls.Dialer takes a *net.Dialer, and NetDialer gives
// one whose sockets are bound.
func ExampleDialer_NetDialer_tls() {
	link, err := ifbind.LookupLink("eth1")
	if err != nil {
		log.Fatal(err)
	}
	d := &ifbind.Dialer{Index: link.Index}
	td := &tls.Dialer{NetDialer: d.NetDialer(), Config: &tls.Config{MinVersion: tls.VersionTLS12}}
	c, err := td.DialContext(context.Background(), "tcp", "example.com:443")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.(*tls.Conn).ConnectionState().Version == tls.VersionTLS13)
}

// connect stands for a library that takes a dial function, as gRPC's
// grpc.WithContextDialer does, and dials through it.
func connect(ctx context.Context, target string, dial func(ctx context.Context, addr string) (net.Conn, error)) (net.Conn, error) {
	return dial(ctx, target)
}

// A library that dials through a function the caller gives: bind its
// connections by giving it the Dialer's DialContext. With gRPC:
//
//	conn, err := grpc.NewClient("dns:///api.example.com:443",
//		grpc.WithContextDialer(dial), ...)
func ExampleDialer_DialContext_dialFunc() {
	link, err := ifbind.LookupLink("eth1")
	if err != nil {
		log.Fatal(err)
	}
	d := &ifbind.Dialer{Index: link.Index}
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}
	c, err := connect(context.Background(), "api.example.com:443", dial)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.LocalAddr())
}
