//go:build !linux

package ifbind

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// Ingress information is parsed on Linux only: other systems send it in
// other control messages (IP_RECVDSTADDR and IP_RECVIF on BSD).
const ingressSupported = false

const ingressOOBSize = 0

func parseIngress([]byte) Ingress { return Ingress{} }

const replyOOBSize = 0

func replyOOB([]byte, netip.Addr, Ingress) []byte { return nil }

// checkOOB cannot parse control messages outside Linux; the conns it
// guards are made on Linux only.
func checkOOB([]byte, int) error { return nil }

func boundOf(syscall.Conn) (int, error) { return 0, nil }

// checkBound cannot read the binding back outside Linux.
func checkBound(*net.UDPConn, int) error { return nil }

// ipv6Only answers true, so that SetMulticastLoopback sets only the IPv6
// option on an IPv6 socket: whether it also carries IPv4 is not read here.
func ipv6Only(*net.UDPConn) (bool, error) { return true, nil }

func listenPing(network string, _ netip.Addr, _ ctlFunc) (net.PacketConn, error) {
	return nil, fmt.Errorf("ifbind: %q: %w", network, unsupportedError("an unprivileged ICMP socket"))
}
