package ifbind

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A Strategy is how Uplinks picks among its usable uplinks.
type Strategy int

const (
	// Fallback dials through the first usable uplink, and through the
	// next one only when that dial fails: refused, unreachable, or out of
	// its share of the time. It is the zero Strategy.
	Fallback Strategy = iota

	// Race dials through the first usable uplink, and when no connection
	// is made within FallbackDelay, through the next one as well, and so
	// on; the first connection made wins and the others are abandoned.
	// UDP and IP dials, whose connect completes at once, are made as by
	// Fallback.
	Race
)

func (s Strategy) String() string {
	switch s {
	case Fallback:
		return "fallback"
	case Race:
		return "race"
	}
	return "Strategy(" + strconv.Itoa(int(s)) + ")"
}

// defaultFallbackDelay is the FallbackDelay of 0, Happy Eyeballs' (RFC
// 8305) and net.Dialer's.
const defaultFallbackDelay = 300 * time.Millisecond

// Uplinks dials through one of several uplinks, in order of preference:
// Ethernet then Wi-Fi, two ISPs, Wi-Fi then an LTE modem. Each dial goes
// through a Dialer that is the template with Binding set to one uplink, so
// every socket is bound before it connects, and no dial ever leaves unbound.
//
// An uplink is usable when its binding resolves to a link that is up with
// carrier and has an address of the destination's family that can be a
// source (for IPv6 one that is not link-local, unless the destination is).
// Monitor bindings (Follow, Pin) read this from the monitor's table,
// without a system call; an IndexBinding has no table and is always
// tried (see IndexBinding). Unusable uplinks are not tried, by either
// strategy; when none is usable the dial fails, and nothing is sent. Each
// dial reads usability anew, so a primary that comes back is used again.
//
// The zero value has no uplinks and every dial fails. Uplinks is safe for
// concurrent use, as long as its fields are not changed while dials run.
type Uplinks struct {
	// Dialer is the template of every attempt: Timeout, Deadline,
	// KeepAlive, Resolver, Control and ControlContext (which run on each
	// socket once it is bound) and the rest work as on a Dialer. Timeout
	// and Deadline bound the whole dial, every uplink included. Its Index
	// and Binding must be 0 and nil: set, they fail every dial.
	Dialer

	// Bindings are the uplinks, the preferred first: IndexBinding,
	// (*Monitor).Follow, (*Monitor).Pin. A nil entry is never usable.
	Bindings []Binding

	// Strategy is Fallback (the zero value) or Race.
	Strategy Strategy

	// FallbackDelay is how long Race waits for a connection through one
	// uplink before it dials through the next as well. 0 means 300 ms.
	// Fallback ignores it.
	FallbackDelay time.Duration
}

// Dial is DialContext with the background context.
func (u *Uplinks) Dial(network, address string) (net.Conn, error) {
	return u.DialContext(context.Background(), network, address)
}

// DialContext connects to address on the named network, as Dialer's
// DialContext does, through the first usable uplink that connects, as u's
// Strategy has it. The conn is the one net.Dialer returns (*net.TCPConn,
// *net.UDPConn...); UplinkOf tells which uplink it went through.
//
// ctx, u.Timeout and u.Deadline bound the whole dial. Fallback gives each
// uplink an equal share of the time left (two seconds at least, as
// net.Dialer gives each address); without any deadline, a dial through an
// uplink that drops what it sends waits for the kernel to give up (minutes
// for TCP): set Timeout, or use Race. Race gives each attempt all the time
// left. Attempts that lose are closed before DialContext returns. Within
// each uplink, the IPv6 and IPv4 addresses of a name race as through a
// Dialer (Happy Eyeballs).
//
// When no uplink connects, the error is an *UplinksError that tells, for
// each uplink, why it was not tried or how its dial failed. Unix networks
// reach no interface: they are dialed as by net.Dialer.
func (u *Uplinks) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if isUnixNetwork(network) && u != nil {
		return u.Dialer.Dialer.DialContext(ctx, network, address)
	}
	return dialUplinks(ctx, u, network, address, needOf(network, address), dialContext)
}

// dialContext is Dialer's DialContext as dialUplinks calls it: a function,
// not a closure, so that a dial allocates nothing for it.
func dialContext(ctx context.Context, d *Dialer, network, address string) (net.Conn, error) {
	return d.DialContext(ctx, network, address)
}

// DialTCP is Dialer's DialTCP through the first usable uplink that
// connects, as DialContext chooses it.
func (u *Uplinks) DialTCP(ctx context.Context, network string, laddr, raddr netip.AddrPort) (*net.TCPConn, error) {
	return dialUplinks(ctx, u, network, raddr.String(), needOfAddr(network, raddr.Addr()),
		func(ctx context.Context, d *Dialer, network, _ string) (*net.TCPConn, error) {
			return d.DialTCP(ctx, network, laddr, raddr)
		})
}

// DialUDP is Dialer's DialUDP through the first usable uplink, as
// DialContext chooses it.
func (u *Uplinks) DialUDP(ctx context.Context, network string, laddr, raddr netip.AddrPort) (*net.UDPConn, error) {
	return dialUplinks(ctx, u, network, raddr.String(), needOfAddr(network, raddr.Addr()),
		func(ctx context.Context, d *Dialer, network, _ string) (*net.UDPConn, error) {
			return d.DialUDP(ctx, network, laddr, raddr)
		})
}

// DialIP is Dialer's DialIP through the first usable uplink, as
// DialContext chooses it. Raw sockets need CAP_NET_RAW.
func (u *Uplinks) DialIP(ctx context.Context, network string, laddr, raddr netip.Addr) (*net.IPConn, error) {
	return dialUplinks(ctx, u, network, raddr.String(), needOfAddr(network, raddr),
		func(ctx context.Context, d *Dialer, network, _ string) (*net.IPConn, error) {
			return d.DialIP(ctx, network, laddr, raddr)
		})
}

// DialUnix is net.Dialer's DialUnix, unchanged: a Unix domain socket
// reaches no interface. It is defined so that this is said, not promoted.
func (u *Uplinks) DialUnix(ctx context.Context, network string, laddr, raddr *net.UnixAddr) (*net.UnixConn, error) {
	return u.Dialer.Dialer.DialUnix(ctx, network, laddr, raddr)
}

// NetDialer returns a *net.Dialer whose every dial fails: a net.Dialer
// cannot fail over between uplinks. It is defined so that the template's
// method, which would bind to the template's Index, is not promoted.
func (u *Uplinks) NetDialer() *net.Dialer {
	d := Dialer{Dialer: u.Dialer.Dialer}
	nd := d.NetDialer()
	nd.ControlContext = func(context.Context, string, string, syscall.RawConn) error {
		return &BindError{Err: errUplinksNetDialer}
	}
	return nd
}

// A need is the address family a dial needs a source address of.
type need struct {
	v4, v6    bool       // either will do when both are set
	linkLocal bool       // the destination is IPv6 link-local
	dst       netip.Addr // the destination, when the dial names an address
}

// routeUsable returns the link a route binding b would bind a socket of
// the family n needs to, toward n's destination when known: the family's
// own route, not Link's, which fails when the two families' routes differ.
func routeUsable(m *Monitor, b Binding, n need) (*linkEntry, error) {
	var t target
	err := error(&BindError{Err: ErrNoRoute})
	for _, network := range [2]string{"tcp4", "tcp6"} {
		if network == "tcp4" && !n.v4 || network == "tcp6" && !n.v6 {
			continue
		}
		si := sockInfo{network: network}
		if n.dst.IsValid() {
			si.address = netip.AddrPortFrom(n.dst, 0).String()
		}
		if t, err = b.target(si); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if e := m.load().byIndex[t.index]; e != nil {
		return e, nil
	}
	return nil, &BindError{Index: t.index, Name: t.name, Err: syscall.ENODEV}
}

// needOf returns what a dial to address on network needs.
func needOf(network, address string) need {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		host = address // "ip4:icmp" dials take a bare host
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		a = netip.Addr{} // a name: the family is the network's, or either
	}
	return needOfAddr(network, a)
}

func needOfAddr(network string, a netip.Addr) need {
	switch {
	case a.Is4() || a.Is4In6():
		return need{v4: true, dst: a.Unmap()}
	case a.Is6():
		return need{v6: true, linkLocal: a.IsLinkLocalUnicast(), dst: a}
	}
	n := need{v4: true, v6: true}
	if i := strings.IndexByte(network, ':'); i >= 0 {
		network = network[:i]
	}
	switch network[len(network)-1:] {
	case "4":
		n.v6 = false
	case "6":
		n.v4 = false
	}
	return n
}

// usable decides whether b may carry a dial that needs n now: the one rule
// both strategies apply. It returns the link b resolves to and, when b is
// not usable, why (an error for which errors.Is finds syscall.ENETDOWN,
// syscall.EADDRNOTAVAIL, or the cause of the binding's failure, such as
// syscall.ENODEV or ErrLinkGone).
//
// On IPv4 a route through an up link with an address always exists (the
// kernel takes any destination for on-link there), so the rule asks for
// what makes a link able to carry the family at all: up, carrier, and a
// source address past duplicate address detection, which for IPv6 is not
// link-local (a link that has only fe80:: has had no router advertisement
// or DHCPv6 yet). Route bindings add their own lookup here.
func usable(b Binding, n need) (Link, error) {
	var m *Monitor
	var e *linkEntry
	var err error
	switch b := b.(type) {
	case nil:
		return Link{}, errNilBinding
	case indexBinding:
		// No table to read: the dial tells, and fails fast.
		return Link{Index: int(b)}, invalidIndex(int(b))
	case *follow:
		m = b.m
		e, err = b.resolve()
	case *pin:
		m = b.m
		e, err = b.resolve()
	case *defaultRoute:
		m = b.m
		e, err = routeUsable(m, b, n)
	case *routeTo:
		m = b.m
		e, err = routeUsable(m, b, n)
	default:
		l, err := b.Link()
		return l, err
	}
	if err != nil {
		return Link{}, err
	}
	l := e.link
	switch {
	case l.Flags&net.FlagUp == 0:
		return l, &BindError{Index: l.Index, Name: l.Name, Err: errLinkDown}
	case l.Flags&net.FlagRunning == 0:
		return l, &BindError{Index: l.Index, Name: l.Name, Err: errNoCarrier}
	}
	for _, a := range m.load().addrs[l.Index] {
		if !a.canSource() {
			continue
		}
		if a.addr.Is4() && n.v4 {
			return l, nil
		}
		if a.addr.Is6() && n.v6 && (n.linkLocal || !a.addr.IsLinkLocalUnicast()) {
			return l, nil
		}
	}
	return l, &BindError{Index: l.Index, Name: l.Name, Err: noAddressError(n)}
}

// An attempt is one uplink of one dial: whether it was usable, whether it
// was tried, and its error. Each is written by one goroutine, and read once
// every attempt is over.
type attempt struct {
	b     Binding
	link  Link
	tried bool
	err   error
}

// dialUplinks is the body of every dial method of Uplinks: it dials
// through the usable uplinks with do, as u's Strategy has it.
func dialUplinks[C net.Conn](ctx context.Context, u *Uplinks, network, address string, n need, do func(context.Context, *Dialer, string, string) (C, error)) (C, error) {
	var zero C
	if err := u.check(); err != nil {
		return zero, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	if d, ok := u.deadline(ctx); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d)
		defer cancel()
	}
	if u.Strategy != Race || !isStream(network) {
		return fallback(ctx, u, network, address, n, do)
	}
	ups := make([]attempt, len(u.Bindings))
	var try []*attempt
	for i, b := range u.Bindings {
		a := &ups[i]
		a.b = b
		if a.link, a.err = usable(b, n); a.err == nil {
			try = append(try, a)
		}
	}
	if len(try) == 0 {
		return zero, newUplinksError(network, address, ups)
	}
	if c, ok := raceUplinks(ctx, u, network, address, try, do); ok {
		return c, nil
	}
	for _, a := range try {
		if !a.tried {
			a.err = cause(ctx)
		}
	}
	return zero, newUplinksError(network, address, ups)
}

// isStream reports whether network connects through the network: a UDP
// or raw IP socket's connect completes at once, so there is nothing to
// race, and Race dials it as Fallback does.
func isStream(network string) bool {
	return strings.HasPrefix(network, "tcp")
}

// cause is why ctx ended the dial.
func cause(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return context.DeadlineExceeded // expired, a moment before ctx says so
}

// check returns the error of an Uplinks that cannot dial.
func (u *Uplinks) check() error {
	switch {
	case u == nil:
		return &BindError{Err: errNoUplinks}
	case u.Index != 0 || u.Binding != nil:
		return &BindError{Err: errTemplateBinds}
	case len(u.Bindings) == 0:
		return &BindError{Err: errNoUplinks}
	}
	return nil
}

// deadline is when the whole dial must end, as net.Dialer computes it.
func (u *Uplinks) deadline(ctx context.Context) (time.Time, bool) {
	var d time.Time
	if u.Timeout != 0 {
		d = time.Now().Add(u.Timeout)
	}
	if !u.Deadline.IsZero() && (d.IsZero() || u.Deadline.Before(d)) {
		d = u.Deadline
	}
	if cd, ok := ctx.Deadline(); ok && !d.IsZero() && cd.Before(d) {
		return time.Time{}, false // ctx already ends first
	}
	return d, !d.IsZero()
}

// attemptDialer returns the Dialer of an attempt through b: the template,
// bound to b, with the deadline left to the dial's context. Give it back
// with putDialer once the attempt's dial returned: nothing keeps it.
func (u *Uplinks) attemptDialer(b Binding) *Dialer {
	d := attemptDialers.Get().(*Dialer)
	*d = u.Dialer
	d.Binding = b
	d.Timeout = 0
	d.Deadline = time.Time{}
	return d
}

func putDialer(d *Dialer) {
	*d = Dialer{} // drop the template's references
	attemptDialers.Put(d)
}

// attemptDialers saves a dial through Uplinks the allocation of its
// attempt's Dialer.
var attemptDialers = sync.Pool{New: func() any { return new(Dialer) }}

// expired reports whether ctx is done or past its deadline. A dial that
// timed out returns a moment before its context says it is done: the
// socket's deadline and the context's timer are two clocks.
func expired(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// minShare is the least time Fallback gives an uplink when the dial has a
// deadline, as net.Dialer gives each address.
const minShare = 2 * time.Second

// fallback dials through each usable uplink in turn until one connects.
// It records what happened to each uplink only once one fails: a dial
// whose first uplink connects pays for no error it does not return.
func fallback[C net.Conn](ctx context.Context, u *Uplinks, network, address string, n need, do func(context.Context, *Dialer, string, string) (C, error)) (C, error) {
	var zero C
	var ups []attempt
	for i, b := range u.Bindings {
		link, err := usable(b, n)
		tried := false
		if err == nil && expired(ctx) {
			err = cause(ctx)
		} else if err == nil {
			actx, cancel := share(ctx, u.Bindings[i+1:], n)
			tried = true
			var c C
			d := u.attemptDialer(b)
			c, err = do(actx, d, network, address)
			putDialer(d)
			cancel()
			if err == nil {
				return c, nil
			}
		}
		if ups == nil {
			ups = make([]attempt, len(u.Bindings))
			for j, b := range u.Bindings {
				ups[j].b = b
			}
		}
		ups[i] = attempt{b: b, link: link, tried: tried, err: err}
	}
	return zero, newUplinksError(network, address, ups)
}

// share returns the context of a Fallback attempt: when ctx has a
// deadline, an equal share of the time left among this uplink and the
// usable ones of rest, minShare at least.
func share(ctx context.Context, rest []Binding, n need) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}
	}
	k := 1
	for _, b := range rest {
		if _, err := usable(b, n); err == nil {
			k++
		}
	}
	left := time.Until(d)
	sh := max(left/time.Duration(k), minShare)
	if sh >= left {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, sh)
}

// A racer runs the attempts of Race.
type racer[C net.Conn] struct {
	ctx              context.Context // cancelled once one connected
	cancel           context.CancelFunc
	u                *Uplinks
	network, address string
	try              []*attempt
	do               func(context.Context, *Dialer, string, string) (C, error)
	delay            time.Duration
	wg               sync.WaitGroup // the attempts started by timers

	mu   sync.Mutex
	won  bool
	conn C
}

// raceUplinks dials through try[0] in the calling goroutine and starts each
// next attempt when the previous one failed or FallbackDelay passed. It
// returns once every attempt started is over, the losers closed.
func raceUplinks[C net.Conn](ctx context.Context, u *Uplinks, network, address string, try []*attempt, do func(context.Context, *Dialer, string, string) (C, error)) (C, bool) {
	r := &racer[C]{u: u, network: network, address: address, try: try, do: do, delay: u.FallbackDelay}
	if r.delay <= 0 {
		r.delay = defaultFallbackDelay
	}
	r.ctx, r.cancel = context.WithCancel(ctx)
	defer r.cancel()
	r.run(0)
	r.wg.Wait()
	return r.conn, r.won
}

// run dials through try[i], then try[i+1] and so on while they fail,
// starting the next one in another goroutine when the current one takes
// longer than the delay. Each attempt is started exactly once: by the
// timer, or by the goroutine whose attempt failed before it fired.
func (r *racer[C]) run(i int) {
	for ; i < len(r.try); i++ {
		if expired(r.ctx) {
			return // one connected, or the dial is out of time
		}
		var next *time.Timer
		if i+1 < len(r.try) {
			j := i + 1
			r.wg.Add(1)
			next = time.AfterFunc(r.delay, func() {
				defer r.wg.Done()
				r.run(j)
			})
		}
		connected := r.dial(r.try[i])
		if next == nil {
			return
		}
		if !next.Stop() {
			return // the next attempt runs already
		}
		r.wg.Done()
		if connected {
			return
		}
	}
}

// dial makes one attempt; it reports whether it connected.
func (r *racer[C]) dial(a *attempt) bool {
	a.tried = true
	d := r.u.attemptDialer(a.b)
	c, err := r.do(r.ctx, d, r.network, r.address)
	putDialer(d)
	if err != nil {
		a.err = err
		return false
	}
	r.mu.Lock()
	lost := r.won
	if !lost {
		r.won, r.conn = true, c
	}
	r.mu.Unlock()
	if lost {
		c.Close()
		return true
	}
	r.cancel() // abandon the others
	return true
}

// An UplinksError is the error of a dial through Uplinks that made no
// connection. It lists every uplink, in order, with the link it resolved
// to and why it failed. It unwraps to each uplink's error, so that
// errors.Is(err, syscall.ECONNREFUSED) holds when one was refused, and
// errors.As finds the *net.OpError of a tried one.
type UplinksError struct {
	Net     string // the network dialed, as in "tcp"
	Addr    string // the address dialed
	Uplinks []UplinkAttempt
}

// An UplinkAttempt is what happened to one uplink of a failed dial.
type UplinkAttempt struct {
	Binding Binding // as in Uplinks.Bindings
	Link    Link    // the link it resolved to, as far as known; zero if none
	Tried   bool    // a dial went through it
	// Err is the error of the dial when Tried; else why it was not tried:
	// the uplink was not usable (errors.Is finds syscall.ENETDOWN,
	// syscall.EADDRNOTAVAIL, or what its binding failed with), or the dial
	// ran out of time or was cancelled first (its context's cause).
	Err error
}

func newUplinksError(network, address string, ups []attempt) *UplinksError {
	e := &UplinksError{Net: network, Addr: address, Uplinks: make([]UplinkAttempt, len(ups))}
	for i, a := range ups {
		e.Uplinks[i] = UplinkAttempt{Binding: a.b, Link: a.link, Tried: a.tried, Err: a.err}
	}
	return e
}

func (e *UplinksError) Error() string {
	var sb strings.Builder
	sb.WriteString("ifbind: dial ")
	sb.WriteString(e.Net)
	if e.Addr != "" {
		sb.WriteString(" " + e.Addr)
	}
	sb.WriteString(": no uplink connected")
	for i, a := range e.Uplinks {
		sb.WriteString("; [" + strconv.Itoa(i+1) + "] ")
		if a.Binding == nil {
			sb.WriteString("nil binding")
		} else {
			sb.WriteString(a.Binding.String())
		}
		if a.Tried {
			sb.WriteString(": ")
		} else {
			sb.WriteString(": not tried: ")
		}
		if a.Err != nil {
			sb.WriteString(strings.TrimPrefix(a.Err.Error(), "ifbind: "))
		}
	}
	return sb.String()
}

// Unwrap returns the error of every uplink.
func (e *UplinksError) Unwrap() []error {
	errs := make([]error, 0, len(e.Uplinks))
	for _, a := range e.Uplinks {
		if a.Err != nil {
			errs = append(errs, a.Err)
		}
	}
	return errs
}

// Timeout reports whether the dial ran out of time: a tried uplink timed
// out, or the dial's deadline passed before one was tried. It makes an
// *UplinksError a net.Error.
func (e *UplinksError) Timeout() bool {
	for _, a := range e.Uplinks {
		var ne net.Error
		if errors.As(a.Err, &ne) && ne.Timeout() || errors.Is(a.Err, context.DeadlineExceeded) {
			return true
		}
	}
	return false
}

// Temporary is false: net.Error requires it, and it is deprecated.
func (e *UplinksError) Temporary() bool { return false }

// IndexBinding returns a Binding that binds every socket to the interface
// with index, as Dialer.Index does, so that a fixed index can sit in
// Uplinks.Bindings beside Follow and Pin. It needs no Monitor; without
// one, Uplinks cannot tell whether the link is up, and always tries it: a
// dial through a link set down fails fast, one through a link without
// carrier waits for its deadline. Its Link looks the index
// up with LinkByIndex, a system call. An index of 0 or less, or past 32
// bits, fails every socket (syscall.EINVAL). It is safe for concurrent use.
func IndexBinding(index int) Binding { return indexBinding(index) }

type indexBinding int

func (b indexBinding) target(si sockInfo) (target, error) {
	if err := invalidIndex(int(b)); err != nil {
		return target{}, err
	}
	return target{index: int(b), check: si.listen}, nil
}

func (b indexBinding) Link() (Link, error) {
	if err := invalidIndex(int(b)); err != nil {
		return Link{}, err
	}
	return LinkByIndex(int(b))
}

func (b indexBinding) String() string { return "index " + strconv.Itoa(int(b)) }

// The causes of uplinks that are not usable, and of Uplinks that cannot
// dial. Each unwraps to its errno.
var (
	errLinkDown         = fmt.Errorf("link down (%w)", syscall.ENETDOWN)
	errNoCarrier        = fmt.Errorf("no carrier (%w)", syscall.ENETDOWN)
	errNilBinding       = fmt.Errorf("nil binding (%w)", syscall.EINVAL)
	errTemplateBinds    = fmt.Errorf("the template Dialer of Uplinks has Index or Binding set: leave both unset and list the uplinks in Bindings (%w)", syscall.EINVAL)
	errNoUplinks        = fmt.Errorf("no uplinks: Uplinks.Bindings is empty (%w)", syscall.EINVAL)
	errUplinksNetDialer = fmt.Errorf("the NetDialer of Uplinks cannot fail over: use its DialContext (%w)", syscall.EINVAL)
	errNoIPv4           = fmt.Errorf("no IPv4 address (%w)", syscall.EADDRNOTAVAIL)
	errNoIPv6           = fmt.Errorf("no IPv6 address but link-local ones (%w)", syscall.EADDRNOTAVAIL)
	errNoAddress        = fmt.Errorf("no IPv4 address, and no IPv6 address but link-local ones (%w)", syscall.EADDRNOTAVAIL)
)

// noAddressError is the cause of an uplink with no address n can use.
func noAddressError(n need) error {
	switch {
	case n.v4 && n.v6:
		return errNoAddress
	case n.v4:
		return errNoIPv4
	case n.linkLocal:
		return fmt.Errorf("no IPv6 address (%w)", syscall.EADDRNOTAVAIL)
	}
	return errNoIPv6
}
