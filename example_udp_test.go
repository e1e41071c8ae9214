package ifbind_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/netip"

	"github.com/ifbind/ifbind"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// A DHCP client on one NIC: it listens on port 68 of that NIC only (another
// client may do the same on another NIC) and broadcasts through it.
func ExampleListenConfig_ListenUDP() {
	l, err := ifbind.LinkByName("eth1")
	if err != nil {
		log.Fatal(err)
	}
	lc := &ifbind.ListenConfig{Index: l.Index}
	c, err := lc.ListenUDP(context.Background(), "udp4", netip.MustParseAddrPort("0.0.0.0:68"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	var discover []byte // a DHCPDISCOVER, built by a DHCP library
	// Leaves through eth1 only, whatever the routing table says.
	if _, err := c.WriteToUDPAddrPort(discover, netip.MustParseAddrPort("255.255.255.255:67")); err != nil {
		log.Fatal(err)
	}
}

// An mDNS responder on one NIC: it joins the group on that NIC, by index,
// sends to the group through it, and does not hear itself.
func ExampleJoinGroup() {
	l, err := ifbind.LinkByName("eth1")
	if err != nil {
		log.Fatal(err)
	}
	lc := &ifbind.ListenConfig{Index: l.Index}
	c, err := lc.ListenUDP(context.Background(), "udp4", netip.MustParseAddrPort("0.0.0.0:5353"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	mdns := netip.MustParseAddr("224.0.0.251")
	if err := ifbind.JoinGroup(c, l.Index, mdns); err != nil {
		log.Fatal(err)
	}
	if err := ifbind.SetMulticastLoopback(c, false); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 9000)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d bytes from %v on %v\n", n, from, l)
	}
}

// One wildcard socket shared by every NIC, which learns per datagram
// through which NIC, and to which address, it came.
func ExampleIngressReader() {
	c, err := net.ListenUDP("udp", &net.UDPAddr{Port: 6767})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	r, err := ifbind.NewIngressReader(c)
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, in, err := r.ReadFrom(buf) // no allocation
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%d bytes from %v through interface %d, sent to %v\n", n, from, in.Index, in.Dst)
	}
}

// ping -I eth1 192.0.2.2, without privileges where
// net.ipv4.ping_group_range allows it.
func ExampleListenConfig_ListenICMP() {
	l, err := ifbind.LinkByName("eth1")
	if err != nil {
		log.Fatal(err)
	}
	lc := &ifbind.ListenConfig{Index: l.Index}
	c, err := lc.ListenICMP(context.Background(), "udp4", netip.Addr{})
	if err != nil {
		log.Fatal(err) // "ip4:icmp" works with CAP_NET_RAW instead
	}
	defer c.Close()
	m := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{Seq: 1, Data: []byte("hello")}}
	b, err := m.Marshal(nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.WriteTo(b, &net.UDPAddr{IP: net.ParseIP("192.0.2.2")}); err != nil {
		log.Fatal(err)
	}
	n, from, err := c.ReadFrom(b[:cap(b)])
	if err != nil {
		log.Fatal(err)
	}
	reply, err := icmp.ParseMessage(1, b[:n])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(reply.Type, "from", from)
}

// A server on one wildcard socket shared by every NIC, such as a DHCP or
// DNS server, answers each datagram through the NIC it came in on, from
// the address it was sent to: never by the routing table's choice.
func ExampleIngressReader_Reply() {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: 6767})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	r, err := ifbind.NewIngressReader(c)
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 1500)
	for {
		n, from, in, err := r.ReadFrom(buf)
		if err != nil {
			log.Fatal(err)
		}
		// in.Index is the NIC, in.Dst the address (or broadcast) it was
		// sent to; Reply sends back through in.Index and nothing else.
		if _, err := r.Reply(buf[:n], from, in); err != nil {
			log.Print(err)
		}
	}
}
