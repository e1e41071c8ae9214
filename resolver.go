package ifbind

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// resolvConf is the file NewResolver reads nameservers from when it is
// given none.
const resolvConf = "/etc/resolv.conf"

// maxNameservers is how many nameservers a resolv.conf may name: the
// resolver of the C library reads the first three (MAXNS), and so does Go's.
const maxNameservers = 3

// maxResolvConf bounds the size of a resolv.conf ReadNameservers reads.
const maxResolvConf = 1 << 20

// ErrLoopbackNameserver is returned, wrapped, by NewResolver when a
// nameserver is a loopback address (such as 127.0.0.53 of systemd-resolved,
// 127.0.0.1 or ::1) or the unspecified address, which means this host: no
// packet sent through a network interface reaches it, and a resolver bound
// to one would only time out.
var ErrLoopbackNameserver = errors.New("ifbind: a loopback nameserver cannot be reached through a network interface")

// NewResolver returns a *net.Resolver (PreferGo) whose queries, over UDP
// and over TCP after a truncated answer, leave only through the interface d
// binds to, from sockets d dials. Set it as d.Resolver so that the names d
// dials are resolved by the interface's own nameservers:
//
//	r, err := ifbind.NewResolver(d)
//	if err != nil { ... }
//	d.Resolver = r
//
// Each nameserver is an IP address with an optional port (53 by default):
// "192.0.2.53", "[2001:db8::53]:5353". A link-local IPv6 address without a
// zone is scoped to d.Index, and is an error with a Binding. With none, the
// nameservers of /etc/resolv.conf are used (see ReadNameservers).
//
// Queries go to the first nameserver while it answers, and move on to the
// next after a dial error, a timeout, SERVFAIL or REFUSED. Timeouts,
// attempts, search domains and ndots come from the system configuration,
// and /etc/hosts answers first. When a Dialer's DialContext fails to
// resolve, its *net.DNSError names the nameserver asked as Server; a lookup
// called on the resolver itself names one of the system configuration.
//
// NewResolver fails for a nil d, a d that cannot bind (no Index, or both
// Index and Binding), a nameserver that is not an IP address or is a
// multicast or broadcast address, a link-local one with a Binding, and with an
// error for which errors.Is(err, ErrLoopbackNameserver) holds for a loopback
// or unspecified nameserver (systemd-resolved's 127.0.0.53), which no
// interface reaches. The resolver keeps a copy of d, is safe for concurrent
// use, and its sockets need what d's need. The ctx of a lookup bounds its
// queries. The README says why DNS is not bound by default.
func NewResolver(d *Dialer, nameservers ...string) (*net.Resolver, error) {
	return newResolver(d, resolvConfOf(d, netnsEtc), nameservers)
}

// newResolver is NewResolver, reading conf when no nameserver is given.
func newResolver(d *Dialer, conf string, nameservers []string) (*net.Resolver, error) {
	if d == nil {
		d = &Dialer{} // fails below, as the zero Dialer does
	}
	if _, err := newBinder(d.Index, d.Binding, false, nil, nil); err != nil {
		return nil, err
	}
	if _, err := netnsOf(d.Netns, d.Binding); err != nil {
		return nil, err
	}
	source := ""
	if len(nameservers) == 0 {
		var err error
		if nameservers, err = ReadNameservers(conf); err != nil {
			return nil, err
		}
		if len(nameservers) == 0 {
			return nil, fmt.Errorf("ifbind: %s names no nameserver (the system then asks the loopback, which no interface reaches): %w", conf, ErrLoopbackNameserver)
		}
		source = " (from " + conf + ")"
	}
	s := &servers{d: *d, addrs: make([]string, 0, len(nameservers))}
	if cp, ok := d.Binding.(*closingPin); ok {
		s.d.Binding = cp.pin // a query's socket lives for one query
	}
	for _, ns := range nameservers {
		ap, err := parseNameserver(ns, d.Index)
		if err != nil {
			name := ""
			if !d.inNetns() {
				name = interfaceName(d.Index)
			}
			return nil, &BindError{Index: d.Index, Name: name, Err: fmt.Errorf("nameserver %q%s: %w", ns, source, err)}
		}
		s.addrs = append(s.addrs, ap.String())
	}
	return &net.Resolver{PreferGo: true, Dial: s.dial}, nil
}

// interfaceName returns the name of the interface with index, or "" when
// it has none. It is called for errors only.
func interfaceName(index int) string {
	l, err := LinkByIndex(index)
	if err != nil {
		return ""
	}
	return l.Name
}

// ReadNameservers returns the addresses of the "nameserver" lines of the
// resolv.conf file at path, in order, at most three (the limit of the C
// library's resolver), for NewResolver. Lines whose address is not an IP
// address are skipped, as the system's resolvers skip them. Other options
// are ignored. Comments start with '#' or ';'. For systemd-resolved, whose
// /etc/resolv.conf names its loopback stub, the upstream nameservers are in
// /run/systemd/resolve/resolv.conf.
func ReadNameservers(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("ifbind: failed to read nameservers: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxResolvConf+1))
	if err != nil {
		return nil, fmt.Errorf("ifbind: failed to read nameservers: %w", err)
	}
	if len(b) > maxResolvConf {
		return nil, fmt.Errorf("ifbind: failed to read nameservers: %s is larger than %d bytes", path, maxResolvConf)
	}
	return parseResolvConf(b), nil
}

// parseResolvConf returns the nameserver addresses of a resolv.conf.
func parseResolvConf(b []byte) []string {
	var addrs []string
	for len(b) > 0 && len(addrs) < maxNameservers {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if i := bytes.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(string(line))
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		// An address only, as the C library takes it: no port, no
		// brackets; an IPv6 zone is allowed.
		if _, err := netip.ParseAddr(f[1]); err != nil {
			continue
		}
		addrs = append(addrs, f[1])
	}
	return addrs
}

// parseNameserver parses a nameserver: an IP address with an optional
// port, 53 by default, IPv6 in brackets when a port is given. A link-local
// address without a zone gets the zone index; one with a zone is accepted
// only when the zone names index (by number or by name).
func parseNameserver(s string, index int) (netip.AddrPort, error) {
	var ap netip.AddrPort
	if a, err := netip.ParseAddr(s); err == nil {
		ap = netip.AddrPortFrom(a, 53)
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil || !a.Is6() {
			return ap, errors.New("not an IP address")
		}
		ap = netip.AddrPortFrom(a, 53)
	} else {
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			return ap, errors.New("not an IP address, with an optional port")
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return ap, errors.New("not an IP address")
		}
		if a.Is6() != strings.HasPrefix(s, "[") {
			return ap, errors.New("an IPv6 address with a port, and only one, must be in brackets")
		}
		p, err := strconv.ParseUint(port, 10, 16)
		if err != nil || p == 0 || !isDigits(port) {
			return ap, fmt.Errorf("port %q is not a number from 1 to 65535", port)
		}
		ap = netip.AddrPortFrom(a, uint16(p))
	}
	a := ap.Addr()
	zone := a.Zone()
	if a.Is4In6() {
		a = a.Unmap()
	}
	switch {
	case a.IsLoopback():
		return ap, loopbackError{}
	case a.IsUnspecified():
		return ap, loopbackError{unspecified: true}
	case a.IsMulticast():
		return ap, errors.New("a multicast address, which names no one nameserver")
	case a == ipv4Broadcast:
		return ap, errors.New("the broadcast address, which names no one nameserver: every host of the link would hear the query")
	case a.Is6() && a.IsLinkLocalUnicast():
		if index == 0 {
			return ap, errors.New("a link-local address, which needs a Dialer with an Index to scope it (a Binding's link may change)")
		}
		if zone != "" {
			if err := zoneCause(zone, index); err != nil {
				return ap, err
			}
		}
		a = a.WithZone(strconv.Itoa(index))
	case zone != "":
		return ap, errors.New("a zone on an address that is not link-local")
	}
	return netip.AddrPortFrom(a, ap.Port()), nil
}

// ipv4Broadcast is the limited broadcast address, 255.255.255.255.
var ipv4Broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// loopbackError is the cause of the error for a loopback nameserver, or the
// unspecified address, which also means this host.
type loopbackError struct{ unspecified bool }

func (e loopbackError) Error() string {
	if e.unspecified {
		return "the unspecified address, which a query sends to this host over the loopback: " +
			"no network interface reaches it"
	}
	return "a loopback address, which cannot be reached through a network interface " +
		"(with systemd-resolved, name the link's own nameservers: resolvectl dns, " +
		"or /run/systemd/resolve/resolv.conf)"
}

func (loopbackError) Is(target error) bool { return target == ErrLoopbackNameserver }

// servers dials the nameservers of a resolver made by NewResolver.
type servers struct {
	d     Dialer
	addrs []string      // "ip:port" of each nameserver, in order
	cur   atomic.Uint32 // the server in use is addrs[cur%len(addrs)]
}

// dial is the resolver's Dial. It ignores the address, which comes from the
// system configuration, and dials the nameserver in use through d, whose
// fields (LocalAddr, Control...) all apply.
func (s *servers) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	i := s.cur.Load()
	server := &s.addrs[i%uint32(len(s.addrs))]
	if a, ok := ctx.Value(askedKey{}).(*asked); ok {
		a.server.Store(server)
	}
	switch network {
	case "udp", "udp4", "udp6", "tcp", "tcp4", "tcp6":
	default:
		return nil, &net.OpError{Op: "dial", Net: network, Err: net.UnknownNetworkError(network)}
	}
	c, err := s.d.DialContext(ctx, network, *server)
	if err != nil {
		s.failed(i)
		return nil, err
	}
	switch c := c.(type) {
	case *net.UDPConn:
		return &udpConn{UDPConn: c, s: s, i: i}, nil
	case *net.TCPConn:
		return &tcpConn{TCPConn: c, s: s, i: i}, nil
	}
	return c, nil
}

// failed moves the resolver on from server i, unless another query already
// has.
func (s *servers) failed(i uint32) { s.cur.CompareAndSwap(i, i+1) }

// readFailed tells whether a read error means the nameserver failed: a
// timeout, or a refusal (an ICMP port unreachable on UDP, a reset on TCP).
func readFailed(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// udpConn is a query's UDP socket. It stays a net.PacketConn, which is how
// net.Resolver tells it from a TCP one.
type udpConn struct {
	*net.UDPConn
	s  *servers
	i  uint32
	id [2]byte // the ID of the query last written
}

func (c *udpConn) Write(b []byte) (int, error) {
	if len(b) >= 2 {
		c.id = [2]byte{b[0], b[1]}
	}
	return c.UDPConn.Write(b)
}

func (c *udpConn) Read(b []byte) (int, error) {
	n, err := c.UDPConn.Read(b)
	if err != nil {
		if readFailed(err) {
			c.s.failed(c.i)
		}
		return n, err
	}
	// The response (QR set) to the query, by its ID, with RCODE SERVFAIL
	// (2) or REFUSED (5). Others are left to net.Resolver, which skips
	// forgeries.
	if n >= 4 && b[0] == c.id[0] && b[1] == c.id[1] && b[2]&0x80 != 0 &&
		(b[3]&0x0f == 2 || b[3]&0x0f == 5) {
		c.s.failed(c.i)
	}
	return n, nil
}

// tcpConn is a query's TCP connection, after a truncated UDP answer.
type tcpConn struct {
	*net.TCPConn
	s *servers
	i uint32
}

func (c *tcpConn) Read(b []byte) (int, error) {
	n, err := c.TCPConn.Read(b)
	if err != nil && readFailed(err) {
		c.s.failed(c.i)
	}
	return n, err
}

// askedKey is the context key of the *asked a Dialer's DialContext hands
// down to its resolver's dials.
type askedKey struct{}

// asked records the nameserver a resolver made by NewResolver dialed last
// for one DialContext, so that its error can name it: net.Resolver names
// the server of the system configuration it meant to ask.
type asked struct{ server atomic.Pointer[string] }

// isHostName reports whether the host of address, a dial's "host:port",
// is a name to look up rather than an IP address.
func isHostName(address string) bool {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return true // net will say what is wrong
	}
	_, err = netip.ParseAddr(host)
	return err != nil
}

// withAsked returns ctx carrying a new record of the nameserver asked.
func withAsked(ctx context.Context) (context.Context, *asked) {
	a := new(asked)
	return context.WithValue(ctx, askedKey{}, a), a
}

// name returns err with the Server of its *net.DNSError set to the
// nameserver asked, when one was (net leaves it empty when ctx ended the
// lookup). err is left as it is otherwise, and never
// modified: net shares a lookup's error between the dials that wait for it.
func (a *asked) name(err error) error {
	server := a.server.Load()
	oe, ok := err.(*net.OpError)
	if server == nil || !ok {
		return err
	}
	de, ok := oe.Err.(*net.DNSError)
	if !ok || de.Server == *server {
		return err
	}
	dc, oc := *de, *oe
	dc.Server = *server
	oc.Err = &dc
	return &oc
}
