package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ifbind/ifbind"
)

const dialUsage = `Usage: ifbind dial -i IFACE tcp|udp HOST:PORT

Connects to HOST:PORT through IFACE, like nc, and copies stdin to the
socket and the socket to stdout. Over tcp, the end of stdin closes the
sending half of the connection, and ifbind exits once the peer has closed
its own too. Over udp, each read of stdin is sent as one datagram and, once stdin
ends, ifbind waits for answers until none came for -idle. tcp4, tcp6, udp4
and udp6 pick one IP version. HOST is resolved by the system's resolver.

Examples:
  printf 'GET / HTTP/1.0\r\n\r\n' | ifbind dial -i eth1 tcp 192.0.2.2:80
  echo ping | ifbind dial -i 3 udp '[2001:db8::2]:7'

Exit codes: 0 ok, 2 usage, 3 IFACE names no link or cannot be bound to,
4 network error (resolution, connection, transfer), 130 interrupted.
`

const listenUsage = `Usage: ifbind listen -i IFACE tcp|udp [ADDR]:PORT

Listens on [ADDR]:PORT through IFACE, like nc -l: only what arrives through
IFACE reaches the socket, even on a wildcard address, and other programs
may listen on the same port of other interfaces. Over tcp it takes one
connection, copies it to stdout and stdin to it, and exits once the peer
has closed its sending half and stdin has ended (which closes ours). Over udp the first sender
becomes the peer: its datagrams go to stdout (others are dropped) and stdin
goes to it, until -idle passes without a datagram, or a signal.

Examples:
  ifbind listen -v -i eth1 tcp :8080 > upload.bin
  ifbind listen -i wg0 udp '[::]:5353'

Exit codes: 0 ok, 2 usage, 3 IFACE names no link or cannot be bound to,
4 network error, 130 interrupted.
`

type ncFlags struct {
	iface   string
	timeout time.Duration
	idle    time.Duration
	verbose bool
}

func cmdDial(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var f ncFlags
	fs := newFlags("dial", dialUsage, stdout, stderr)
	fs.StringVar(&f.iface, "i", "", "the interface to dial through: `IFACE` is a name, altname, index or MAC, or default (the default route's link, per socket family) (required)")
	fs.DurationVar(&f.timeout, "w", 10*time.Second, "give up connecting after `DURATION`")
	fs.DurationVar(&f.idle, "idle", 2*time.Second, "udp: after stdin ends, exit once no datagram came for `DURATION`")
	fs.BoolVar(&f.verbose, "v", false, "tell on stderr which interface and addresses the connection uses")
	network, addr, link, code, stop := ncArgs("dial", fs, args, &f, stderr)
	if stop {
		return code
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	d, stopRoutes, err := dialerFor(link)
	if err != nil {
		return fail(stderr, "dial", exitLocal, err)
	}
	defer stopRoutes()
	d.Timeout = f.timeout
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return interrupted(ctx, stderr, "dial", err)
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
	fs.StringVar(&f.iface, "i", "", "the interface to listen on: `IFACE` is a name, altname, index or MAC, or default (the default route's link, per socket family) (required)")
	fs.DurationVar(&f.idle, "idle", 0, "udp: exit once no datagram came for `DURATION` after the first (0: never)")
	fs.BoolVar(&f.verbose, "v", false, "tell on stderr where it listens and who connects")
	network, addr, link, code, stop := ncArgs("listen", fs, args, &f, stderr)
	if stop {
		return code
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	lc, stopRoutes, err := listenConfigFor(link)
	if err != nil {
		return fail(stderr, "listen", exitLocal, err)
	}
	defer stopRoutes()
	if isUDP(network) {
		pc, err := lc.ListenPacket(ctx, network, addr)
		if err != nil {
			return fail(stderr, "listen", exitCode(err), err)
		}
		defer pc.Close()
		if f.verbose {
			fmt.Fprintf(stderr, "ifbind listen: listening on %v through %v\n", pc.LocalAddr(), link)
		}
		return servePacket(ctx, pc, stdin, stdout, stderr, &f)
	}
	ln, err := lc.Listen(ctx, network, addr)
	if err != nil {
		return fail(stderr, "listen", exitCode(err), err)
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

// ncArgs parses the arguments of dial and listen and looks IFACE up.
func ncArgs(cmd string, fs *flag.FlagSet, args []string, f *ncFlags, stderr io.Writer) (network, addr string, link ifbind.Link, code int, stop bool) {
	pos, code, stop := parseFlags(fs, args)
	if stop {
		return "", "", link, code, true
	}
	if f.iface == "" {
		return "", "", link, usageError(stderr, cmd, "-i IFACE is required"), true
	}
	if len(pos) != 2 {
		return "", "", link, usageError(stderr, cmd, "want a network (tcp or udp) and an address"), true
	}
	network, addr = pos[0], pos[1]
	switch network {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
	default:
		return "", "", link, usageError(stderr, cmd, fmt.Sprintf("network %q: want tcp or udp", network)), true
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", "", link, usageError(stderr, cmd, err.Error()), true
	}
	link, err := lookupIface(f.iface)
	if err != nil {
		return "", "", link, fail(stderr, cmd, exitInterface, err), true
	}
	return network, addr, link, 0, false
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
