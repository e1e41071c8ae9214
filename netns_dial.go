package ifbind

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"time"
)

// dialNetns is DialContext for a Dialer whose sockets are made in another
// network namespace. net.Dialer races the two families of a dual-stack dial
// on goroutines of its own, whose threads are not in the namespace; so the
// name is resolved here, and each attempt dials one address on a thread
// that is (runIn), racing the families as net does (RFC 6555 and 8305:
// the first address's family first, the other after FallbackDelay).
func (d *Dialer) dialNetns(ctx context.Context, network, address string) (net.Conn, error) {
	// A racing attempt that lost may still read d after the winner
	// returned: give the attempts a copy of their own, which neither the
	// caller nor Uplinks' pool of attempt Dialers changes.
	dc := *d
	d = &dc
	host, port, ipNet := address, "", true
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
		ipNet = false
		h, p, err := net.SplitHostPort(address)
		if err != nil {
			return d.dialOne(ctx, network, address) // net says what is wrong
		}
		host, port = h, p
	default:
		if !strings.HasPrefix(network, "ip") {
			return d.dialOne(ctx, network, address)
		}
	}
	if _, err := netip.ParseAddr(host); err == nil || host == "" {
		return d.dialOne(ctx, network, address)
	}
	if d.Timeout != 0 || !d.Deadline.IsZero() {
		deadline := d.Deadline
		if t := time.Now().Add(d.Timeout); d.Timeout != 0 && (deadline.IsZero() || t.Before(deadline)) {
			deadline = t
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	r := d.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	family := "ip"
	switch {
	case strings.HasSuffix(network, "4") || strings.HasPrefix(network, "ip4"):
		family = "ip4"
	case strings.HasSuffix(network, "6") || strings.HasPrefix(network, "ip6"):
		family = "ip6"
	}
	ips, err := r.LookupNetIP(ctx, family, host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	var pnum int
	if !ipNet {
		if pnum, err = r.LookupPort(ctx, network, port); err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
	}
	// A local address of one family keeps the addresses of that family,
	// as net does.
	switch la := localIP(d.LocalAddr); {
	case la.Is4():
		family = "ip4"
	case la.Is6():
		family = "ip6"
	}
	var primaries, fallbacks []string
	var first netip.Addr
	for _, ip := range ips {
		ip = ip.Unmap()
		if (family == "ip4" && !ip.Is4()) || (family == "ip6" && !ip.Is6()) {
			continue
		}
		a := ip.String()
		if !ipNet {
			a = netip.AddrPortFrom(ip, uint16(pnum)).String()
		}
		if !first.IsValid() {
			first = ip
		}
		if network == "tcp" && d.FallbackDelay >= 0 && ip.Is4() != first.Is4() {
			fallbacks = append(fallbacks, a)
		} else {
			primaries = append(primaries, a)
		}
	}
	if len(primaries) == 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.AddrError{Err: "no suitable address found", Addr: host}}
	}
	return d.dialParallel(ctx, network, primaries, fallbacks)
}

// localIP returns the IP address of a Dialer's LocalAddr, unmapped; the
// zero Addr when there is none or it is unspecified.
func localIP(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.TCPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	}
	addr, ok := netip.AddrFromSlice(ip)
	if !ok || addr.IsUnspecified() {
		return netip.Addr{}
	}
	return addr.Unmap()
}

// dialOne dials address, an IP literal, in the namespace.
func (d *Dialer) dialOne(ctx context.Context, network, address string) (net.Conn, error) {
	return dialInNetns(d, network, "", func(nd net.Dialer) (net.Conn, error) {
		return nd.DialContext(ctx, network, address)
	})
}

// dialInNetns is dial for a Dialer whose sockets are made in another namespace:
// do runs there (runIn). It is apart from dial so that do escapes to the
// heap only here (runIn hands it to a goroutine), and dials in the caller's
// namespace pay no allocation for it.
func dialInNetns[C any](d *Dialer, network, lzone string, do func(nd net.Dialer) (C, error)) (C, error) {
	nd, bd, err := d.prepare(network, lzone)
	if err != nil {
		var zero C
		return zero, err
	}
	c, err := runIn(bd.ns, func() (C, error) { return do(nd) })
	if err != nil {
		return c, bd.dialError(opError("dial", network, err))
	}
	return c, nil
}

// dialSerial dials addrs in turn, giving each a share of the time left, as
// net does, and returns the first connection or the first error.
func (d *Dialer) dialSerial(ctx context.Context, network string, addrs []string) (net.Conn, error) {
	var first error
	for i, a := range addrs {
		if err := ctx.Err(); err != nil {
			if first == nil {
				first = &net.OpError{Op: "dial", Net: network, Err: err}
			}
			break
		}
		actx := ctx
		if deadline, ok := ctx.Deadline(); ok {
			if p := partialDeadline(time.Now(), deadline, len(addrs)-i); p.Before(deadline) {
				var cancel context.CancelFunc
				actx, cancel = context.WithDeadline(ctx, p)
				defer cancel()
			}
		}
		c, err := d.dialOne(actx, network, a)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
	}
	return nil, first
}

// partialDeadline gives one of n addresses left its share of the time to
// deadline, at least two seconds when there is that much, as net does.
func partialDeadline(now, deadline time.Time, n int) time.Time {
	left := deadline.Sub(now)
	share := left / time.Duration(n)
	const minimum = 2 * time.Second
	if share < minimum {
		share = min(left, minimum)
	}
	return now.Add(share)
}

// dialParallel races the primaries against the fallbacks, which start
// after the fallback delay or as soon as the primaries fail, and returns
// the first connection; the loser is closed.
func (d *Dialer) dialParallel(ctx context.Context, network string, primaries, fallbacks []string) (net.Conn, error) {
	if len(fallbacks) == 0 {
		return d.dialSerial(ctx, network, primaries)
	}
	type result struct {
		c       net.Conn
		err     error
		primary bool
	}
	returned := make(chan struct{})
	defer close(returned)
	results := make(chan result)
	race := func(ctx context.Context, addrs []string, primary bool) {
		c, err := d.dialSerial(ctx, network, addrs)
		select {
		case results <- result{c, err, primary}:
		case <-returned:
			if c != nil {
				c.Close()
			}
		}
	}
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	go race(pctx, primaries, true)
	delay := d.FallbackDelay
	if delay == 0 {
		delay = defaultFallbackDelay
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	var perr error
	pdone, fdone, fstarted := false, false, false
	for {
		select {
		case <-timer.C:
			if !fstarted {
				fstarted = true
				go race(fctx, fallbacks, false)
			}
		case r := <-results:
			if r.err == nil {
				return r.c, nil
			}
			if r.primary {
				pdone, perr = true, r.err
			} else {
				fdone = true
			}
			if pdone && fdone {
				return nil, perr
			}
			if r.primary && !fstarted {
				timer.Reset(0) // the primaries failed: race the fallbacks now
			}
		}
	}
}
