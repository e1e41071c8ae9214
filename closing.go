package ifbind

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"
)

// PinClosing is Pin, and m also closes the sockets made through the
// Binding it returns as soon as it sees the pinned link deleted or moved to
// another namespace, or m stops. Calls blocked on them return at once; they
// and every later call fail with an error for which errors.Is(err,
// ErrLinkGone) holds (errors.Is(err, net.ErrClosed) once m stopped).
//
// That error needs types of ifbind's own: Dial, DialContext, Listen (and its
// Accept), ListenPacket and ListenICMP return wrappers that implement
// net.Conn, net.Listener or net.PacketConn (a datagram conn both; a TCP
// conn also CloseWrite, CloseRead, io.ReaderFrom and io.WriterTo), whose
// NetConn or NetListener method returns the conn or listener of net beneath.
// Close the wrapper: its Close drops the socket from m. A wrapper dropped
// without Close is closed by the garbage collector. DialTCP, DialUDP,
// DialIP, ListenUDP, NetDialer and NetListenConfig, which hand out net's
// types, fail with an error for which errors.Is(err, ErrUnsupported) holds.
// NewResolver treats the Binding as a Pin: a query's socket lives briefly.
//
// Index, Follow and Pin pay nothing for this; a socket made through
// PinClosing costs a few hundred nanoseconds more (see BENCHMARKS.md).
// Errors are those of Pin. The Binding is safe for concurrent use.
func (m *Monitor) PinClosing(spec string) (Binding, error) {
	b, err := m.Pin(spec)
	if err != nil {
		return nil, err
	}
	p := b.(*pin)
	return &closingPin{pin: p, g: &guard{p: p, socks: make(map[*sockRef]struct{})}}, nil
}

// A closingPin is a pin whose sockets its guard closes when the link goes.
// Its target is the pin's: the binder treats it as it treats a pin.
type closingPin struct {
	*pin
	g *guard
}

func (c *closingPin) String() string { return c.pin.String() + ", closing" }

// A guard holds the open sockets made through one closingPin, and closes
// them when the pinned link goes. The monitor holds the guards that have
// open sockets, and no others.
type guard struct {
	p *pin

	mu    sync.Mutex
	socks map[*sockRef]struct{} // nil once err is set
	err   error                 // why the sockets were closed; permanent
}

// A sockRef is one socket in a guard: the conn or listener beneath a
// wrapper, never a descriptor number, so that closing it after its owner did
// is harmless.
type sockRef struct{ c io.Closer }

// closingOf returns the guard of b when b is a closing pin, else nil.
func closingOf(b Binding) *guard {
	if c, ok := b.(*closingPin); ok {
		return c.g
	}
	return nil
}

// add starts tracking c, or closes it and returns the cause when the link is
// already gone.
func (g *guard) add(c io.Closer) (*sockRef, error) {
	r := &sockRef{c: c}
	m := g.p.m
	g.mu.Lock()
	if g.err != nil {
		err := g.err
		g.mu.Unlock()
		c.Close()
		return nil, err
	}
	if len(g.socks) == 0 {
		m.guardMu.Lock()
		if m.guards == nil {
			m.guards = make(map[*guard]struct{})
		}
		m.guards[g] = struct{}{}
		m.guardMu.Unlock()
	}
	g.socks[r] = struct{}{}
	g.mu.Unlock()
	// The monitor reaps the guards it holds after each change; one it held
	// no longer when the link went is checked here, against a table at
	// least as new.
	if _, err := g.p.resolve(); err != nil {
		g.fail(err)
		return nil, err
	}
	return r, nil
}

// drop stops tracking r; its owner closes it.
func (g *guard) drop(r *sockRef) {
	g.mu.Lock()
	if _, ok := g.socks[r]; ok {
		delete(g.socks, r)
		if len(g.socks) == 0 {
			m := g.p.m
			m.guardMu.Lock()
			delete(m.guards, g)
			m.guardMu.Unlock()
		}
	}
	g.mu.Unlock()
}

// fail records why the sockets of g are closed, and closes them, once.
func (g *guard) fail(err error) {
	g.mu.Lock()
	if g.err != nil {
		g.mu.Unlock()
		return
	}
	g.err = err
	socks := g.socks
	g.socks = nil
	m := g.p.m
	m.guardMu.Lock()
	delete(m.guards, g)
	m.guardMu.Unlock()
	g.mu.Unlock()
	for r := range socks {
		r.c.Close()
	}
}

// cause returns why the sockets of g were closed, or nil.
func (g *guard) cause() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// mapErr returns err, or, once the link is gone, the cause in its place
// (inside err's *net.OpError when it has one). io.EOF stays: the peer's end
// of stream arrived before the link went.
func (g *guard) mapErr(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	cause := g.cause()
	if cause == nil {
		return err
	}
	if oe, ok := err.(*net.OpError); ok {
		e := *oe
		e.Err = cause
		return &e
	}
	return cause
}

// reap closes the sockets of every guard whose pinned link the monitor's
// table no longer has. The monitor's goroutine calls it after each change
// it publishes.
func (m *Monitor) reap() {
	m.guardMu.Lock()
	if len(m.guards) == 0 {
		m.guardMu.Unlock()
		return
	}
	gs := make([]*guard, 0, len(m.guards))
	for g := range m.guards {
		gs = append(gs, g)
	}
	m.guardMu.Unlock()
	for _, g := range gs {
		if _, err := g.p.resolve(); err != nil {
			g.fail(err)
		}
	}
}

// tracked returns how many sockets the guards of m hold, for tests.
func (m *Monitor) tracked() (guards, socks int) {
	m.guardMu.Lock()
	gs := make([]*guard, 0, len(m.guards))
	for g := range m.guards {
		gs = append(gs, g)
	}
	m.guardMu.Unlock()
	for _, g := range gs {
		g.mu.Lock()
		socks += len(g.socks)
		g.mu.Unlock()
	}
	return len(gs), socks
}

// unwrappable returns the error of a method that cannot hand out a wrapper
// for a socket of g.
func (g *guard) unwrappable(method string) error {
	return &BindError{Index: g.p.index, Name: g.p.name, Err: closingUnsupported(method)}
}

// closingUnsupported is the cause of the error of a method that cannot
// hand out a wrapper. It is ErrUnsupported for errors.Is.
type closingUnsupported string

func (e closingUnsupported) Error() string {
	return string(e) + " cannot be used with a closing pin: its sockets could not report ErrLinkGone " +
		"(use Dial, DialContext, Listen, ListenPacket or ListenICMP)"
}

func (closingUnsupported) Is(target error) bool {
	return target == ErrUnsupported || target == errors.ErrUnsupported
}

// closingRefused returns the error of method for a closing pin, else nil.
func closingRefused(b Binding, op, network, method string) error {
	if g := closingOf(b); g != nil {
		return &net.OpError{Op: op, Net: network, Err: g.unwrappable(method)}
	}
	return nil
}

// A tracked is what the wrappers share: the guard, the socket's entry, and
// the cleanup that closes the socket when the wrapper is dropped unclosed.
type tracked struct {
	g       *guard
	r       *sockRef
	cleanup runtime.Cleanup
}

func (t *tracked) close(c io.Closer) error {
	t.cleanup.Stop()
	t.g.drop(t.r)
	return t.g.mapErr(c.Close())
}

// track registers c with g and arms the cleanup of w, its wrapper.
func track[W any](g *guard, w *W, t *tracked, c io.Closer) error {
	r, err := g.add(c)
	if err != nil {
		return err
	}
	t.g, t.r = g, r
	t.cleanup = runtime.AddCleanup(w, func(r *sockRef) {
		g.drop(r)
		r.c.Close()
	}, r)
	return nil
}

// wrapConn returns c, made by op ("dial" or "accept") on network, wrapped so
// that g closes it when the link goes; when the link is already gone, it
// closes c and returns the error.
func (g *guard) wrapConn(c net.Conn, op, network string) (net.Conn, error) {
	if pc, ok := c.(net.PacketConn); ok {
		w := &closingPacketConn{closingConn: closingConn{Conn: c}, pc: pc}
		if err := track(g, w, &w.tracked, c); err != nil {
			return nil, &net.OpError{Op: op, Net: network, Addr: c.RemoteAddr(), Err: err}
		}
		return w, nil
	}
	w := &closingConn{Conn: c}
	if err := track(g, w, &w.tracked, c); err != nil {
		return nil, &net.OpError{Op: op, Net: network, Addr: c.RemoteAddr(), Err: err}
	}
	return w, nil
}

// wrapListener is wrapConn for a listener.
func (g *guard) wrapListener(ln net.Listener, network string) (net.Listener, error) {
	w := &closingListener{Listener: ln}
	if err := track(g, w, &w.tracked, ln); err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: ln.Addr(), Err: err}
	}
	return w, nil
}

// wrapPacketConn is wrapConn for a packet conn of ListenPacket.
func (g *guard) wrapPacketConn(pc net.PacketConn, network string) (net.PacketConn, error) {
	c, ok := pc.(net.Conn)
	if !ok {
		// Every UDP and IP conn of net is both; another kind would not
		// be closed on time, so it is refused.
		pc.Close()
		return nil, &net.OpError{Op: "listen", Net: network, Err: g.unwrappable(fmt.Sprintf("a packet conn of type %T", pc))}
	}
	w := &closingPacketConn{closingConn: closingConn{Conn: c}, pc: pc}
	if err := track(g, w, &w.tracked, pc); err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: pc.LocalAddr(), Err: err}
	}
	return w, nil
}

// A closingConn is a conn made through a closing pin.
type closingConn struct {
	net.Conn
	tracked
}

func (c *closingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	return n, c.g.mapErr(err)
}

func (c *closingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	return n, c.g.mapErr(err)
}

// Close closes the conn, and the monitor stops tracking it.
func (c *closingConn) Close() error { return c.close(c.Conn) }

func (c *closingConn) SetDeadline(t time.Time) error { return c.g.mapErr(c.Conn.SetDeadline(t)) }

func (c *closingConn) SetReadDeadline(t time.Time) error {
	return c.g.mapErr(c.Conn.SetReadDeadline(t))
}

func (c *closingConn) SetWriteDeadline(t time.Time) error {
	return c.g.mapErr(c.Conn.SetWriteDeadline(t))
}

// NetConn returns the conn beneath: a *net.TCPConn, *net.UDPConn or
// *net.IPConn. Close c, not it.
func (c *closingConn) NetConn() net.Conn { return c.Conn }

// ReadFrom and WriteTo let io.Copy reach the *net.TCPConn beneath, which
// splices and sends files without copying through user space.
func (c *closingConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		n, err := rf.ReadFrom(r)
		return n, c.g.mapErr(err)
	}
	return io.Copy(struct{ io.Writer }{c}, r)
}

func (c *closingConn) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := c.Conn.(io.WriterTo); ok {
		n, err := wt.WriteTo(w)
		return n, c.g.mapErr(err)
	}
	return io.Copy(w, struct{ io.Reader }{c})
}

// CloseWrite and CloseRead shut down one direction of the *net.TCPConn
// beneath, as its own methods do.
func (c *closingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return c.g.mapErr(cw.CloseWrite())
	}
	return &net.OpError{Op: "close", Net: c.Conn.LocalAddr().Network(), Err: errors.ErrUnsupported}
}

func (c *closingConn) CloseRead() error {
	if cr, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return c.g.mapErr(cr.CloseRead())
	}
	return &net.OpError{Op: "close", Net: c.Conn.LocalAddr().Network(), Err: errors.ErrUnsupported}
}

// A closingPacketConn is a datagram conn made through a closing pin: both a
// net.Conn and a net.PacketConn, as *net.UDPConn is.
type closingPacketConn struct {
	closingConn
	pc net.PacketConn
}

func (c *closingPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.pc.ReadFrom(b)
	return n, addr, c.g.mapErr(err)
}

func (c *closingPacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := c.pc.WriteTo(b, addr)
	return n, c.g.mapErr(err)
}

// A closingListener is a listener made through a closing pin; the conns it
// accepts are closing conns too.
type closingListener struct {
	net.Listener
	tracked
}

func (l *closingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, l.g.mapErr(err)
	}
	return l.g.wrapConn(c, "accept", c.LocalAddr().Network())
}

// Close closes the listener, and the monitor stops tracking it. Conns it
// accepted stay open.
func (l *closingListener) Close() error { return l.close(l.Listener) }

// NetListener returns the listener beneath, a *net.TCPListener. Close l,
// not it.
func (l *closingListener) NetListener() net.Listener { return l.Listener }
