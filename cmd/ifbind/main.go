package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/ifbind/ifbind"
)

// Exit codes, for scripts. Keep them in step with usageText.
const (
	exitOK          = 0
	exitHTTP        = 1 // get: HTTP status >= 400; demo: ifbind put a socket on the wrong NIC
	exitUsage       = 2
	exitInterface   = 3 // IFACE names no link, or a socket cannot be bound to it
	exitNetwork     = 4 // resolution, connection, TLS or transfer failed
	exitLocal       = 5 // a file cannot be read or written; no namespace for the demo
	exitInterrupted = 130
)

const usageText = `ifbind keeps traffic on one network interface: every socket it makes is
bound to the interface by index (SO_BINDTOIFINDEX) before it connects or
binds, so no route, and no rename of an interface, can move it to another.

Usage:
  ifbind links [--json]                        the links: index, name, altnames, state, MAC, addresses
  ifbind get -i IFACE [flags] URL              fetch a URL (HTTP, HTTPS) through IFACE
  ifbind dial -i IFACE tcp|udp HOST:PORT       netcat: stdin to the socket, the socket to stdout
  ifbind listen -i IFACE tcp|udp [ADDR]:PORT   netcat -l: take one peer that comes through IFACE
  ifbind route [flags] DEST                    the interface ifbind would bind a socket to DEST to
  ifbind demo [flags]                          the rename race: binding by name against ifbind

IFACE is a name (eth0), an altname (enp0s31f6), an index (3) or a MAC
address (02:00:5e:10:00:01), or "default": each socket then binds to the
link of the default route of its family. Run 'ifbind COMMAND -h' for a
command's flags.

Examples:
  go run ./cmd/ifbind demo                     ten seconds, no root needed where user namespaces are allowed
  ifbind links
  ifbind get -i eth1 -o debian.iso https://cdimage.debian.org/...
  ifbind get -i wwan0 --dns-via-iface https://example.com/
  echo hello | ifbind dial -i 3 tcp 192.0.2.2:7
  ifbind listen -i eth1 udp :5353

Exit codes:
  0    success
  1    get: the server answered with an HTTP status of 400 or more (the body is
       still written); demo: ifbind put a socket on the wrong NIC (a bug)
  2    usage: a bad command, flag or argument (get: a loopback nameserver,
       which no packet sent through IFACE reaches)
  3    interface: IFACE names no link, or a socket could not be bound to it
  4    network: name resolution, connection, TLS or transfer failed
  5    local: a file could not be read or written; the demo found no namespace to run in
  130  interrupted (SIGINT or SIGTERM)
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	cmds := map[string]func([]string, io.Reader, io.Writer, io.Writer) int{
		"links":  cmdLinks,
		"get":    cmdGet,
		"dial":   cmdDial,
		"listen": cmdListen,
		"demo":   cmdDemo,
		"route":  cmdRoute,
	}
	switch name := args[0]; name {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	default:
		cmd, ok := cmds[name]
		if !ok {
			fmt.Fprintf(stderr, "ifbind: unknown command %q\n\n%s", name, usageText)
			return exitUsage
		}
		return cmd(args[1:], stdin, stdout, stderr)
	}
}

// newFlags returns a flag set for a command whose usage, printed by -h,
// is usage followed by the flags.
func newFlags(name, usage string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fs.SetOutput(stdout)
		fmt.Fprint(stdout, usage)
		fmt.Fprintln(stdout, "\nFlags:")
		fs.PrintDefaults()
		fs.SetOutput(stderr)
	}
	return fs
}

// parseFlags parses args with fs, allowing flags after the positional
// arguments too ("ifbind get URL -i eth0"), and returns the positional
// ones. "--" ends the flags. The exit code is set when parsing stops the
// command: 0 after -h, 2 on a bad flag.
func parseFlags(fs *flag.FlagSet, args []string) (pos []string, code int, stop bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, true
			}
			return nil, exitUsage, true
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, 0, false
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), 0, false
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// usageError prints msg and the hint to run -h, and returns exitUsage.
func usageError(stderr io.Writer, cmd, msg string) int {
	fmt.Fprintf(stderr, "ifbind %s: %s\nRun 'ifbind %s -h' for usage.\n", cmd, msg, cmd)
	return exitUsage
}

// An ifaceError is a failed lookup of IFACE, which lists the links there
// are.
type ifaceError struct {
	spec  string
	err   error
	links []linkInfo
}

func (e *ifaceError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "no interface %q: %v", e.spec, e.err)
	if len(e.links) > 0 {
		b.WriteString("\nthe links here are:\n")
		writeTable(&b, e.links, "  ")
	}
	return strings.TrimRight(b.String(), "\n")
}

func (e *ifaceError) Unwrap() error { return e.err }

// exitCode tells which exit code err, a failure of a network operation,
// deserves: exitInterface when the interface is missing or the socket could
// not be bound to it, exitNetwork otherwise.
func exitCode(err error) int {
	var ie *ifaceError
	if errors.As(err, &ie) || errors.Is(err, syscall.ENODEV) || errors.Is(err, ifbind.ErrNoRoute) {
		return exitInterface
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		switch se.Syscall {
		case "setsockopt", "getsockopt", "ioctl":
			return exitInterface
		}
	}
	return exitNetwork
}

// fail prints err for cmd and returns code.
func fail(stderr io.Writer, cmd string, code int, err error) int {
	fmt.Fprintf(stderr, "ifbind %s: %v\n", cmd, err)
	return code
}
