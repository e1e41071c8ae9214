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
unknown service name), 3 IFACE names no link or cannot be bound to,
4 network error (resolution, connection, transfer) or timeout,
5 stdin or stdout failed, 130 interrupted.
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
unknown service name, a zone that is not IFACE), 3 IFACE names no link or
cannot be bound to, 4 network error, 5 the port is in use on IFACE, or
stdin or stdout failed, 130 interrupted.
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
	return pipe(ctx, c, stdin, stdout, stderr, "dial", f.idle)
}

func cmdListen(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var f ncFlags
	fs := newFlags("listen", listenUsage, stdout, stderr)
	f.iface.register(fs, "listen on")
	fs.secondsVar(&f.idle, "idle", 0, "udp: exit once no datagram came for `SECONDS` after the first (0: never)")
	fs.BoolVar(&f.verbose, "v", false, "tell on stderr where it listens and who connects")
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
			err = fmt.Errorf("%w (not an address of this host: ifbind links lists those of %s)", err, link.Name)
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
		return servePacket(ctx, pc, stdin, stdout, stderr, &f)
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
	return pipe(ctx, c, stdin, stdout, stderr, "listen", 0)
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
// was idle for idle.
func pipe(ctx context.Context, c net.Conn, stdin io.Reader, stdout, stderr io.Writer, cmd string, idle time.Duration) int {
	sent := make(chan error, 1)
	go func() {
		_, err := io.Copy(markedWriter{c}, stdin) // a writeError is the socket's
		if cw, ok := c.(interface{ CloseWrite() error }); ok && err == nil {
			err = cw.CloseWrite()
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
		_, err := io.Copy(markedWriter{stdout}, c)
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
	var we *writeError
	switch {
	case recvErr != nil && errors.As(recvErr, &we):
		return fail(stderr, cmd, exitLocal, we.err) // stdout
	case recvErr != nil:
		return fail(stderr, cmd, exitNetwork, recvErr)
	case sendErr != nil && errors.As(sendErr, &we):
		return exitOK // the peer closed before taking all of stdin
	case sendErr != nil:
		return fail(stderr, cmd, exitLocal, sendErr) // stdin
	}
	return exitOK
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
				return &writeError{err}
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
			return err
		}
	}
}

// servePacket answers the first sender of a datagram on pc: its datagrams
// to stdout, stdin to it, until f.idle passes without a datagram after the
// first, or ctx ends.
func servePacket(ctx context.Context, pc net.PacketConn, stdin io.Reader, stdout, stderr io.Writer, f *ncFlags) int {
	stopRead := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Unix(1, 0)) })
	defer stopRead()
	buf := make([]byte, 64<<10)
	var peer net.Addr
	for {
		if peer != nil && f.idle > 0 {
			pc.SetReadDeadline(time.Now().Add(f.idle))
		}
		n, from, err := pc.ReadFrom(buf)
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "ifbind listen: interrupted")
			return exitInterrupted
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return exitOK
		}
		if err != nil {
			return fail(stderr, "listen", exitNetwork, err)
		}
		if peer == nil {
			peer = from
			if f.verbose {
				fmt.Fprintf(stderr, "ifbind listen: peer %v\n", peer)
			}
			go func() {
				io.Copy(&packetWriter{pc, peer}, stdin)
			}()
		} else if from.String() != peer.String() {
			continue
		}
		if _, err := stdout.Write(buf[:n]); err != nil {
			return fail(stderr, "listen", exitLocal, err)
		}
	}
}

// A packetWriter sends each write as a datagram to addr.
type packetWriter struct {
	pc   net.PacketConn
	addr net.Addr
}

func (p *packetWriter) Write(b []byte) (int, error) { return p.pc.WriteTo(b, p.addr) }
