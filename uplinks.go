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
	"sync/atomic"
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
	// uplink before it dials through the next as well. 0 means 300 ms; a
	// negative value disables the race, as in net.Dialer: the next uplink
	// is dialed only once the previous one failed, and may have all the
	// time left. Fallback ignores it. It hides the template's own
	// FallbackDelay (u.Dialer.FallbackDelay), which is net.Dialer's: the
	// delay between the IPv6 and IPv4 addresses of a name within one
	// uplink.
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
	b       Binding
	link    Link
	checked bool // link and err say whether it is usable (Race)
	tried   bool
	err     error
	start   raceStart // what starts Race's search for a usable uplink from this one
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
	r := racers.Get().(*racer)
	r.u, r.network, r.address, r.do = u, network, address, connDial(do)
	r.delay = u.FallbackDelay
	if r.delay == 0 {
		r.delay = defaultFallbackDelay
	}
	r.bySocket = abandonBySocket && n.dst.IsValid()
	r.n = n
	r.ctl, r.ctlCtx = u.Control, u.ControlContext
	c, ok := raceUplinks(ctx, r)
	defer putRacer(r)
	if ok {
		return c.(C), nil
	}
	// Each uplink the race did not reach was not usable, or the dial ran
	// out of time first.
	ups := r.records()
	for i := range ups {
		if a := &ups[i]; !a.checked {
			if a.link, a.err = usable(a.b, n); a.err == nil {
				a.err = cause(ctx)
			}
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
//
// Abandoning the attempts that lose costs the one that wins: net watches
// the context of a connect that can be cancelled from a goroutine of its
// own, and a timer per dial wakes another thread to serve it. A healthy
// primary pays neither. It dials on the dial's own context, and when
// another attempt wins, the winner shuts the primary's socket down (see
// abandonSocket), which the primary's Control hook recorded; the
// attempts after it, which start only once the primary is slow or has
// failed, dial on a context that the winner cancels. The start of the
// next attempt waits on raceClock, whose one runtime timer serves every
// race. A dial to a name, whose attempts resolve it first and may make
// several sockets, cancels every attempt through its context, the
// primary's included; so does one where sockets cannot be shut down.
//
// What a healthy primary's dial touches is kept small: the records of
// the uplinks, which only an error reports, are made by the first
// attempt that fails or uplink found unusable (see records).
type racer struct {
	ctx              context.Context // the dial's; the primary's, when bySocket
	u                *Uplinks
	network, address string
	do               func(context.Context, *Dialer, string, string) (net.Conn, error)
	n                need
	delay            time.Duration
	bySocket         bool // the primary is abandoned through its socket

	// hook and lateHook are r.control and r.controlLate, made once for
	// the life of r; ctl and ctlCtx are the template's hooks, which they
	// run first.
	hook     ctlContextFunc
	lateHook ctlContextFunc
	ctl      ctlFunc
	ctlCtx   ctlContextFunc

	shard  *clockShard // where its raceStarts go, for the life of r
	start0 raceStart   // the primary's: it starts the attempts after it

	wg sync.WaitGroup // the attempts raceClock started

	state atomic.Int32    // raceOpen, raceSock or raceWon
	sock  syscall.RawConn // the primary's socket, once state is raceSock
	conn  net.Conn        // the winner's, once state is raceWon

	hasActx atomic.Bool // actx was made
	mu      sync.Mutex
	actx    context.Context    // the attempts' but the primary's, once one needs it
	acancel context.CancelFunc // cancels actx
	ups     []attempt          // see records

	// callerStart is the raceStart the caller's goroutine added last and
	// has not removed yet, for abort; leaked is set by abort.
	callerStart *raceStart
	leaked      bool
}

// The states of a race.
const (
	raceOpen = iota // no attempt connected; the primary recorded no socket
	raceSock        // the primary recorded its socket
	raceWon         // an attempt connected
)

// racers saves a dial through Race the allocation of its racer.
var racers = sync.Pool{New: func() any {
	r := &racer{shard: raceClock.pick()}
	r.hook, r.lateHook = r.control, r.controlLate
	return r
}}

// putRacer gives r back to racers once its dial is over: every attempt
// returned, and no raceStart of r is in raceClock.
func putRacer(r *racer) {
	if r.leaked {
		return
	}
	*r = racer{hook: r.hook, lateHook: r.lateHook, shard: r.shard} // drop the dial's references
	racers.Put(r)
}

// connDial returns do as a function that returns a net.Conn: itself for
// DialContext's, which returns one already.
func connDial[C net.Conn](do func(context.Context, *Dialer, string, string) (C, error)) func(context.Context, *Dialer, string, string) (net.Conn, error) {
	if f, ok := any(do).(func(context.Context, *Dialer, string, string) (net.Conn, error)); ok {
		return f
	}
	return func(ctx context.Context, d *Dialer, network, address string) (net.Conn, error) {
		c, err := do(ctx, d, network, address)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
}

// records returns the record of each uplink, made by the first caller.
// Each record is written by the one goroutine whose turn its uplink is
// (see run), and read once the race is over.
func (r *racer) records() []attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ups == nil {
		r.ups = make([]attempt, len(r.u.Bindings))
		for i, b := range r.u.Bindings {
			r.ups[i].b = b
		}
	}
	return r.ups
}

// raceUplinks dials through the usable uplinks of r.u as Race has it:
// through the first in the calling goroutine, and through each next one
// when the previous one failed or FallbackDelay passed. It returns once
// every attempt started is over, the losers closed; when none connected,
// r.records tells what happened to each uplink reached.
func raceUplinks(ctx context.Context, r *racer) (net.Conn, bool) {
	r.ctx = ctx
	over := false
	defer func() {
		if !over {
			r.abort()
		}
	}()
	r.run(0, true)
	over = true
	r.wg.Wait()
	if r.acancel != nil {
		r.acancel()
	}
	return r.conn, r.state.Load() == raceWon
}

// abort ends the race of a caller whose own Control hook panicked, or
// called runtime.Goexit, in an attempt the caller made: no attempt may
// connect after it, the next one is not started, and abort waits for
// those that run, closing a conn one made. r is then left to the garbage
// collector rather than pooled: the path is rare, and a dial cut short
// in the middle of net's code is not worth proving done with r.
func (r *racer) abort() {
	r.state.Swap(raceWon)
	if r.hasActx.Load() {
		r.mu.Lock()
		cancel := r.acancel
		r.mu.Unlock()
		cancel()
	}
	if st := r.callerStart; st != nil {
		raceClock.remove(st)
	}
	r.wg.Wait()
	if r.conn != nil {
		r.conn.Close()
	}
	r.leaked = true
}

// run dials through the first usable uplink from Bindings[i], then the
// next usable one and so on while they fail, starting the next one in
// another goroutine when the current one takes longer than the delay.
// Each uplink is looked at, and its attempt started, exactly once: by
// raceClock, or by the goroutine whose attempt failed before that was due.
// Whether an uplink is usable is read when its turn comes, so that a
// healthy primary's dial reads only its own.
func (r *racer) run(i int, primary bool) {
	caller := primary
	n := len(r.u.Bindings)
	for ; ; i++ {
		var link Link
		if i, link = r.next(i); i < 0 || r.over() {
			return
		}
		var st *raceStart
		if i+1 < n && r.delay > 0 {
			if primary {
				st = &r.start0
			} else {
				st = &r.records()[i+1].start
			}
			st.r, st.k, st.shard = r, i+1, r.shard
			raceClock.add(st, r.delay)
			if caller {
				r.callerStart = st
			}
		}
		connected := r.dial(i, link, primary)
		primary = false
		if st == nil {
			if connected || r.delay > 0 {
				return
			}
			continue // no fallback delay: the next starts when this one failed
		}
		removed := raceClock.remove(st)
		if caller {
			r.callerStart = nil
		}
		if !removed {
			return // the search from i+1 runs already
		}
		if connected {
			return
		}
	}
}

// next returns the place of the first usable uplink from Bindings[i] and
// its link, or -1 when none is. It records why each one it passed is not.
func (r *racer) next(i int) (int, Link) {
	for ; i < len(r.u.Bindings); i++ {
		link, err := usable(r.u.Bindings[i], r.n)
		if err == nil {
			return i, link
		}
		a := &r.records()[i]
		a.checked, a.link, a.err = true, link, err
	}
	return -1, Link{}
}

// due tells r that raceClock found one of its raceStarts due, and will
// run runNext: raceUplinks then waits for it. raceClock calls it before
// remove can see the raceStart gone.
func (r *racer) due() { r.wg.Add(1) }

// runNext runs the attempts from Bindings[k] once raceClock found it due.
func (r *racer) runNext(k int) {
	defer r.wg.Done()
	r.run(k, false)
}

// over reports whether no attempt may start: one connected, or the dial
// is out of time.
func (r *racer) over() bool {
	return r.state.Load() == raceWon || expired(r.ctx)
}

// attemptContext returns the context of the attempts but the primary's,
// made by the first that needs it: cancelled once one connected.
func (r *racer) attemptContext() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.actx == nil {
		r.actx, r.acancel = context.WithCancel(r.ctx)
		r.hasActx.Store(true)
		if r.state.Load() == raceWon {
			r.acancel()
		}
	}
	return r.actx
}

// control is the hook of the primary's Dialer, as r.hook: it runs after
// the binding and the caller's own hook, as near the connect as a hook
// can be, and records the socket, or refuses to connect it once another
// attempt won.
func (r *racer) control(ctx context.Context, network, address string, c syscall.RawConn) error {
	if r.ctlCtx != nil {
		// The hook may wait on its context: it sees the dial's, which
		// ends too when another attempt wins.
		hctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(r.attemptContext(), cancel)
		defer cancel()
		defer stop()
		ctx = hctx
	}
	if err := r.callerHook(ctx, network, address, c); err != nil {
		return err
	}
	// The one socket of a dial to an address is written while no winner
	// may read it, and published by the state.
	if r.state.Load() != raceOpen {
		return errAbandoned
	}
	r.sock = c
	if !r.state.CompareAndSwap(raceOpen, raceSock) {
		return errAbandoned
	}
	return nil
}

// controlLate is the hook of the attempts after the primary, as
// r.lateHook: after the binding and the caller's hook, it refuses to
// connect a socket once another attempt won. (Their context is cancelled
// then too, but DialTCP makes and connects a socket on a context already
// done.)
func (r *racer) controlLate(ctx context.Context, network, address string, c syscall.RawConn) error {
	err := r.callerHook(ctx, network, address, c)
	if err == nil && r.state.Load() == raceWon {
		err = errAbandoned
	}
	return err
}

// callerHook runs the template's own hook, as a Dialer's binder would.
func (r *racer) callerHook(ctx context.Context, network, address string, c syscall.RawConn) error {
	switch {
	case r.ctlCtx != nil:
		return r.ctlCtx(ctx, network, address, c)
	case r.ctl != nil:
		return r.ctl(network, address, c)
	}
	return nil
}

// dial makes the attempt through Bindings[i], which resolved to link; it
// reports whether it connected. The primary is the first attempt, made
// by the caller.
func (r *racer) dial(i int, link Link, primary bool) bool {
	d := r.u.attemptDialer(r.u.Bindings[i])
	ctx := r.ctx
	if primary && r.bySocket {
		d.Control, d.ControlContext = nil, r.hook
	} else {
		if ctx = r.attemptContext(); ctx.Err() != nil {
			// Won since run looked: DialTCP would still make the socket.
			putDialer(d)
			return false
		}
		// Only a dial to an address gets r's hook: it makes its one
		// socket before its dial returns. For a name, net may still make
		// one on a goroutine of its own after that (its other family),
		// when r may serve another dial; there the context suffices, since
		// net looks at it before each socket.
		if r.bySocket {
			d.Control, d.ControlContext = nil, r.lateHook
		}
	}
	c, err := r.do(ctx, d, r.network, r.address)
	putDialer(d)
	if err != nil {
		a := &r.records()[i]
		a.checked, a.tried, a.link, a.err = true, true, link, err
		return false
	}
	was := r.state.Swap(raceWon)
	if was == raceWon {
		c.Close() // lost
		return true
	}
	r.conn = c
	// Abandon the others: those started later through their context,
	// the primary through its socket.
	if r.hasActx.Load() {
		r.mu.Lock()
		cancel := r.acancel
		r.mu.Unlock()
		cancel()
	}
	if was == raceSock && !primary {
		abandonSocket(r.sock)
	}
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
		if b, ok := a.b.(indexBinding); ok && a.link.Name == "" && invalidIndex(int(b)) == nil {
			// No table names it: ask the kernel, now that a dial failed.
			if l, err := LinkByIndex(int(b)); err == nil {
				a.link = l
			}
		}
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
		switch _, index := a.Binding.(indexBinding); {
		case a.Binding == nil:
			sb.WriteString("nil binding")
		case index && a.Link.Name != "":
			sb.WriteString(a.Binding.String() + " (" + a.Link.Name + ")")
		default:
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
	errAbandoned        = fmt.Errorf("another uplink connected first (%w)", syscall.ECANCELED)
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
