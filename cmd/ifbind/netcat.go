package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ifbind/ifbind"
)

const dialUsage = `Usage: ifbind dial -i IFACE tcp|udp HOST:PORT

Connects to HOST:PORT through IFACE, like nc, and copies stdin to the
socket and the socket to stdout. Over tcp, the end of stdin closes the
sending half of the connection, and ifbind exits once the peer has closed
its own too. Over udp, each read of stdin is sent as one datagram and,
once stdin ends, ifbind waits for answers until none came for --idle.
tcp4, tcp6, udp4 and udp6 pick one IP version. HOST is resolved by the
system's resolver; PORT is a number or a service name of /etc/services.
A link-local HOST needs no zone: it is IFACE's (fe80::2 is fe80::2%IFACE).

Limits, each settable: -w, 10s to resolve HOST and connect; --idle, 2s
of quiet after stdin ends (udp). No limit on the transfer.

Examples:
  printf 'GET / HTTP/1.0\r\n\r\n' | ifbind dial -i eth1 tcp 192.0.2.2:80
  echo ping | ifbind dial -i 3 udp '[2001:db8::2]:7'

Exit codes: 0 ok, 2 usage (a malformed address, a port out of range, an
unknown service name), 3 IFACE names no link or cannot be bound to, or
went away during the transfer, 4 network error (resolution, connection,
sending or receiving) or timeout, 5 stdin or stdout failed,
130 interrupted.
`

const listenUsage = `Usage: ifbind listen -i IFACE tcp|udp [ADDR:]PORT

Listens on [ADDR:]PORT through IFACE, like nc -l: only what arrives through
IFACE reaches the socket, even on a wildcard address, and other programs
may listen on the same port of other interfaces. A bare PORT (9000, as nc
-l 9000) is :9000, every address of IFACE. Over tcp it takes one
connection, copies it to stdout and stdin to it, and exits once the peer
has closed its sending half and stdin has ended (which closes ours). Over
udp the first sender becomes the peer: its datagrams go to stdout (others
are dropped) and stdin goes to it, until --idle passes without a datagram,
or a signal. A link-local ADDR needs no zone: it is IFACE's.

Limits, each settable: --idle (udp), none by default: it waits for a peer,
and for its datagrams, until interrupted.

Examples:
  ifbind listen -v -i eth1 tcp 8080 > upload.bin
  ifbind listen -i wg0 udp '[::]:5353'

Exit codes: 0 ok, 2 usage (a malformed address, a port out of range, an
unknown service name, a zone that is not IFACE, an address this host does
not have), 3 IFACE names no link or cannot be bound to, or went away,
4 network error, 5 the port is in use on IFACE, or stdin or stdout
failed, 130 interrupted.
`

type ncFlags struct {
	iface   ifaceFlags
	timeout time.Duration
	idle    time.Duration
	verbose bool
}

func cmdDial(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var f ncFlags
	fs := newFlags("dial", dialUsage, stdout, stderr)
	f.iface.register(fs, "dial through")
	fs.secondsVar(&f.timeout, "w", 10*time.Second, "give up resolving and connecting after `SECONDS` (0: never)")
	fs.aka("w", "connect-timeout")
	fs.secondsVar(&f.idle, "idle", 2*time.Second, "udp: after stdin ends, exit once no datagram came for `SECONDS`")
	fs.BoolVar(&f.verbose, "v", false, "tell on stderr which interface and addresses the connection uses")
	fs.aka("v", "verbose")
	network, addr, link, code, stop := ncArgs("dial", fs, args, &f, stderr)
	if stop {
		return code
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	d, err := f.iface.dialer(link)
	if err != nil {
		return fail(stderr, "dial", exitLocal, err)
	}
	defer f.iface.close()
	d.Timeout = f.timeout
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		var ne net.Error
		if ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() {
			err = fmt.Errorf("timed out connecting after %v (-w): %w", f.timeout, err)
		}
		return interrupted(ctx, stderr, "dial", fmt.Errorf("%s %s through %v: %w", network, addr, link, err))
	}
	defer c.Close()
	if f.verbose {
		fmt.Fprintf(stderr, "ifbind dial: connected %v -> %v through %v\n", c.LocalAddr(), c.RemoteAddr(), link)
	}
	return pipe(ctx, c, stdin, stdout, stderr, newSession("dial", network, addr, link, f.iface.netns), f.idle)
}

func cmdListen(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var f ncFlags
	fs := newFlags("listen", listenUsage, stdout, stderr)
	f.iface.register(fs, "listen on")
	fs.secondsVar(&f.idle, "idle", 0, "udp: exit once no datagram came for `SECONDS` after the first (0: never)")
	fs.BoolVar(&f.verbose, "v", false, "tell on stderr where it listens and who connects")
	fs.aka("v", "verbose")
	network, addr, link, code, stop := ncArgs("listen", fs, args, &f, stderr)
	if stop {
		return code
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	lc, err := f.iface.listenConfig(link)
	if err != nil {
		return fail(stderr, "listen", exitLocal, err)
	}
	defer f.iface.close()
	failed := func(err error) int {
		err = fmt.Errorf("%s %s through %v: %w", network, addr, link, err)
		switch {
		case errors.Is(err, syscall.EADDRINUSE):
			err = fmt.Errorf("%w (another socket has the port on %s, or on every interface)", err, link.Name)
		case errors.Is(err, syscall.EADDRNOTAVAIL):
			// A usage error: the address is wrong, not the network.
			err = fmt.Errorf("%w (not an address of this host: ifbind links lists those of %s)", err, link.Name)
			return fail(stderr, "listen", exitUsage, err)
		}
		return fail(stderr, "listen", exitCode(err), err)
	}
	if isUDP(network) {
		pc, err := lc.ListenPacket(ctx, network, addr)
		if err != nil {
			return failed(err)
		}
		defer pc.Close()
		if f.verbose {
			fmt.Fprintf(stderr, "ifbind listen: listening on %v through %v\n", pc.LocalAddr(), link)
		}
		return servePacket(ctx, pc, stdin, stdout, stderr, &f, newSession("listen", network, addr, link, f.iface.netns))
	}
	ln, err := lc.Listen(ctx, network, addr)
	if err != nil {
		return failed(err)
	}
	if f.verbose {
		fmt.Fprintf(stderr, "ifbind listen: listening on %v through %v\n", ln.Addr(), link)
	}
	stopAccept := context.AfterFunc(ctx, func() { ln.Close() })
	c, err := ln.Accept()
	stopAccept()
	ln.Close()
	if err != nil {
		return interrupted(ctx, stderr, "listen", err)
	}
	defer c.Close()
	if f.verbose {
		fmt.Fprintf(stderr, "ifbind listen: connection from %v\n", c.RemoteAddr())
	}
	return pipe(ctx, c, stdin, stdout, stderr, newSession("listen", network, addr, link, f.iface.netns), 0)
}

// interrupted reports err, and returns exitInterrupted when a signal ended
// ctx, or the exit code err deserves.
func interrupted(ctx context.Context, stderr io.Writer, cmd string, err error) int {
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "ifbind %s: interrupted\n", cmd)
		return exitInterrupted
	}
	return fail(stderr, cmd, exitCode(err), err)
}

// ncArgs parses the arguments of dial and listen, checks the address and
// looks IFACE up. A bare port is a listen's ":port".
func ncArgs(cmd string, fs *flagSet, args []string, f *ncFlags, stderr io.Writer) (network, addr string, link ifbind.Link, code int, stop bool) {
	pos, code, stop := fs.parse(args)
	if stop {
		return "", "", link, code, true
	}
	if len(pos) != 2 {
		return "", "", link, usageError(stderr, cmd, "want a network (tcp or udp) and an address"), true
	}
	network, addr = pos[0], pos[1]
	given := addr // for messages
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return "", "", link, usageError(stderr, cmd, fmt.Sprintf("network %q: want tcp or udp", network)), true
	}
	if cmd == "listen" && !strings.ContainsAny(addr, ":[]") {
		addr = ":" + addr // nc -l 9000
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", "", link, usageError(stderr, cmd, fmt.Sprintf("address %q: want HOST:PORT, [IPv6]:PORT or :PORT", given)), true
	}
	if msg := checkPort(network, port, cmd == "listen"); msg != "" {
		return "", "", link, usageError(stderr, cmd, fmt.Sprintf("address %q: %s", given, msg)), true
	}
	link, code, err = f.iface.lookup()
	if code == exitUsage {
		return "", "", link, usageError(stderr, cmd, err.Error()), true
	}
	if err != nil {
		return "", "", link, fail(stderr, cmd, code, err), true
	}
	host, msg := scope(host, link)
	if msg != "" {
		return "", "", link, usageError(stderr, cmd, fmt.Sprintf("address %q: %s", given, msg)), true
	}
	return network, net.JoinHostPort(host, port), link, 0, false
}

// checkPort returns what is wrong with port, a number or a service name, or
// "". Port 0, any free port, is only for a listen.
func checkPort(network, port string, listen bool) string {
	if port == "" {
		return "no port"
	}
	if n, err := strconv.Atoi(port); err == nil || isDigits(port) {
		if err != nil || n > 65535 || n < 0 || n == 0 && !listen {
			return fmt.Sprintf("port %s is not from 1 to 65535", port)
		}
		return ""
	}
	if _, err := net.LookupPort(network, port); err != nil {
		return fmt.Sprintf("unknown service name %q (not in /etc/services)", port)
	}
	return ""
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// scope returns host with the zone of link when it is a link-local IPv6
// address, or what is wrong with the zone it has: a zone other than link
// would name another interface than -i.
func scope(host string, link ifbind.Link) (string, string) {
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is6() {
		return host, ""
	}
	zone := a.Zone()
	if zone == "" {
		if a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() {
			return a.WithZone(link.Name).String(), ""
		}
		return host, ""
	}
	if !a.IsLinkLocalUnicast() && !a.IsLinkLocalMulticast() {
		return host, fmt.Sprintf("zone %%%s on an address that is not link-local; drop it", zone)
	}
	if zone == link.Name || zone == strconv.Itoa(link.Index) || slices.Contains(link.Altnames, zone) {
		return a.WithZone(link.Name).String(), ""
	}
	return host, fmt.Sprintf("zone %%%s is not %v, the interface of -i; drop the zone, which -i sets", zone, link)
}

func isUDP(network string) bool { return network[:3] == "udp" }

// pipe copies stdin to c and c to stdout. Over tcp it returns once both
// are done: the peer closed its sending half, and stdin ended (which closes
// ours) or the peer went away. Over udp it returns once stdin ended and c
// was idle for idle. ss names the socket in errors.
func pipe(ctx context.Context, c net.Conn, stdin io.Reader, stdout, stderr io.Writer, ss *session, idle time.Duration) int {
	cmd := ss.cmd
	sent := make(chan error, 1)
	go func() {
		_, err := io.Copy(sockWriter{c}, localReader{stdin})
		if cw, ok := c.(interface{ CloseWrite() error }); ok && err == nil {
			if err = cw.CloseWrite(); err != nil {
				err = &sockError{"sending to", c.RemoteAddr(), err}
			}
		}
		sent <- err
	}()
	_, udp := c.(*net.UDPConn)
	received := make(chan error, 1)
	go func() {
		if udp {
			received <- copyDatagrams(stdout, c, sent, idle)
			return
		}
		_, err := io.Copy(localWriter{stdout}, sockReader{c})
		received <- err
	}()
	var recvErr, sendErr error
	recvDone, sendDone := false, udp
	sentHere := sent // over udp, copyDatagrams waits for stdin instead
	if udp {
		sentHere = nil
	}
	for !recvDone || !sendDone {
		select {
		case recvErr = <-received:
			recvDone = true
		case sendErr = <-sentHere:
			sendDone = true
		case <-ctx.Done():
			fmt.Fprintf(stderr, "ifbind %s: interrupted\n", cmd)
			return exitInterrupted
		}
		if recvErr != nil {
			break
		}
	}
	var se *sockError
	switch {
	case recvErr != nil:
		return ss.failed(stderr, recvErr)
	case sendErr != nil && errors.As(sendErr, &se) && !linkGone(se):
		return exitOK // the peer closed before taking all of stdin
	case sendErr != nil:
		return ss.failed(stderr, sendErr)
	}
	return exitOK
}

// A session is what the errors of a transfer name: the command, and the
// socket and its interface.
type session struct {
	cmd   string
	where string                // "udp 192.0.2.2:7 through eth1 (index 3)"
	gone  func() (string, bool) // whether the interface is gone, and its words
}

// newSession returns the session of cmd's socket to or on addr through
// link, in the namespace netns.
func newSession(cmd, network, addr string, link ifbind.Link, netns string) *session {
	return &session{
		cmd:   cmd,
		where: fmt.Sprintf("%s %s through %v", network, addr, link),
		gone: func() (string, bool) {
			_, err := lookupIfaceIn(netns, strconv.Itoa(link.Index))
			return link.String() + " is gone", errors.Is(err, syscall.ENODEV)
		},
	}
}

// failed reports err, a failure of the transfer, and returns its exit
// code: exitLocal for stdin or stdout, exitInterface for a socket whose
// interface went away (the kernel may say ENODEV, or ENETUNREACH once the
// routes went with it), exitNetwork for another socket error.
func (s *session) failed(stderr io.Writer, err error) int {
	var le *localError
	var se *sockError
	switch {
	case errors.As(err, &le):
		return fail(stderr, s.cmd, exitLocal, le)
	case errors.As(err, &se) && linkGone(se):
		return fail(stderr, s.cmd, exitInterface, fmt.Errorf("%s: %w", s.where, se))
	case errors.As(err, &se) && s.gone != nil:
		if why, gone := s.gone(); gone {
			return fail(stderr, s.cmd, exitInterface, fmt.Errorf("%s: %w (%s)", s.where, se, why))
		}
	}
	return fail(stderr, s.cmd, exitNetwork, fmt.Errorf("%s: %w", s.where, err))
}

// linkGone reports whether err is the interface's doing: it was deleted,
// or moved to another namespace.
func linkGone(err error) bool {
	return errors.Is(err, syscall.ENODEV) || errors.Is(err, ifbind.ErrLinkGone)
}

// A sockError is a failed read or write of the socket during a transfer.
type sockError struct {
	dir  string // "sending to", "receiving from"
	peer net.Addr
	err  error
}

// Error says the direction, the peer and the cause, without the
// *net.OpError's repetition of the addresses and of the system call.
func (e *sockError) Error() string {
	cause := e.err
	var oe *net.OpError
	if errors.As(cause, &oe) {
		cause = oe.Err
	}
	var se *os.SyscallError
	if errors.As(cause, &se) {
		cause = se.Err
	}
	return fmt.Sprintf("%s %v: %v", e.dir, e.peer, cause)
}

func (e *sockError) Unwrap() error { return e.err }

// A localError is a failed read of stdin or write of stdout.
type localError struct {
	what string // "reading stdin", "writing stdout"
	err  error
}

func (e *localError) Error() string { return e.what + ": " + e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// sockWriter, sockReader, localWriter and localReader mark the errors of
// what they wrap, which io.Copy returns unmarked. They hide the
// WriterTo and ReaderFrom of what they wrap, whose errors say "writeto"
// or "readfrom" around the error of the other side.
type (
	sockWriter  struct{ c net.Conn }
	sockReader  struct{ c net.Conn }
	localWriter struct{ w io.Writer }
	localReader struct{ r io.Reader }
)

func (w sockWriter) Write(p []byte) (int, error) {
	n, err := w.c.Write(p)
	if err != nil {
		err = &sockError{"sending to", w.c.RemoteAddr(), err}
	}
	return n, err
}

func (r sockReader) Read(p []byte) (int, error) {
	n, err := r.c.Read(p)
	if err != nil && err != io.EOF {
		err = &sockError{"receiving from", r.c.RemoteAddr(), err}
	}
	return n, err
}

func (w localWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	if err != nil {
		err = &localError{"writing stdout", err}
	}
	return n, err
}

func (r localReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = &localError{"reading stdin", err}
	}
	return n, err
}

// copyDatagrams copies datagrams from c to w until sent delivers (stdin
// ended, or failed), after which it stops once idle passes without one.
func copyDatagrams(w io.Writer, c net.Conn, sent <-chan error, idle time.Duration) error {
	buf := make([]byte, 64<<10)
	stdinDone := false
	for {
		if !stdinDone {
			select {
			case err := <-sent:
				if err != nil {
					return err
				}
				stdinDone = true
			default:
			}
		}
		if stdinDone {
			c.SetReadDeadline(time.Now().Add(idle))
		} else {
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		}
		n, err := c.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return &localError{"writing stdout", err}
			}
		}
		var ne net.Error
		switch {
		case err == nil:
		case errors.As(err, &ne) && ne.Timeout():
			if stdinDone {
				return nil
			}
		default:
			return &sockError{"receiving from", c.RemoteAddr(), err}
		}
	}
}

// servePacket answers the first sender of a datagram on pc: its datagrams
// to stdout, stdin to it, until f.idle passes without a datagram after the
// first, a transfer fails, or ctx ends. ss names pc in errors.
func servePacket(ctx context.Context, pc net.PacketConn, stdin io.Reader, stdout, stderr io.Writer, f *ncFlags, ss *session) int {
	stopRead := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Unix(1, 0)) })
	defer stopRead()
	buf := make([]byte, 64<<10)
	var peer net.Addr
	sendErr := make(chan error, 1) // stdin to the peer failed
	for {
		if peer != nil && f.idle > 0 {
			pc.SetReadDeadline(time.Now().Add(f.idle))
		}
		n, from, err := pc.ReadFrom(buf)
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "ifbind listen: interrupted")
			return exitInterrupted
		}
		select {
		case err := <-sendErr:
			return ss.failed(stderr, err)
		default:
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return exitOK
		}
		if err != nil {
			return ss.failed(stderr, &sockError{"receiving from", peerOr(peer), err})
		}
		if peer == nil {
			peer = from
			if f.verbose {
				fmt.Fprintf(stderr, "ifbind listen: peer %v\n", peer)
			}
			go func() {
				if _, err := io.Copy(&packetWriter{pc, peer}, localReader{stdin}); err != nil {
					sendErr <- err
					pc.SetReadDeadline(time.Unix(1, 0)) // wake the loop to report it
				}
			}()
		} else if from.String() != peer.String() {
			continue
		}
		if _, err := stdout.Write(buf[:n]); err != nil {
			return ss.failed(stderr, &localError{"writing stdout", err})
		}
	}
}

// peerOr returns peer, or an address that says there is none yet.
func peerOr(peer net.Addr) net.Addr {
	if peer == nil {
		return noPeer{}
	}
	return peer
}

type noPeer struct{}

func (noPeer) Network() string { return "" }
func (noPeer) String() string  { return "any peer" }

// A packetWriter sends each write as a datagram to addr.
type packetWriter struct {
	pc   net.PacketConn
	addr net.Addr
}

func (p *packetWriter) Write(b []byte) (int, error) {
	n, err := p.pc.WriteTo(b, p.addr)
	if err != nil {
		err = &sockError{"sending to", p.addr, err}
	}
	return n, err
}
