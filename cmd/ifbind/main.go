package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/ifbind/ifbind"
)

// Exit codes, for scripts. Keep them in step with usageText and the README.
const (
	exitOK          = 0
	exitHTTP        = 1 // get: HTTP status >= 400; demo: ifbind put a socket on the wrong NIC
	exitUsage       = 2
	exitInterface   = 3 // IFACE names no link, a socket cannot be bound to it, or it went away during a transfer
	exitNetwork     = 4 // resolution, connection, TLS or transfer failed, or timed out
	exitLocal       = 5 // a file cannot be read or written, a local port is taken; no namespace for the demo
	exitInterrupted = 130
)

const usageText = `ifbind keeps traffic on one network interface: every socket it makes is
bound to the interface by index (SO_BINDTOIFINDEX) before it connects or
binds, so no route, and no rename of an interface, can move it to another.

Usage:
  ifbind links [--json]                        the links: index, name, altnames, state, MAC, addresses
  ifbind get -i IFACE [flags] URL              fetch a URL (HTTP, HTTPS) through IFACE, like curl
  ifbind dial -i IFACE tcp|udp HOST:PORT       netcat: stdin to the socket, the socket to stdout
  ifbind listen -i IFACE tcp|udp [ADDR:]PORT   netcat -l: take one peer that comes through IFACE
  ifbind route [flags] DEST                    the interface ifbind would bind a socket to DEST to
  ifbind demo [flags]                          the rename race: binding by name against ifbind
  ifbind version                               the version of ifbind and of Go it was built with

IFACE is a name (eth0), an altname (enp0s31f6), an index (3) or a MAC
address (02:00:5e:10:00:01), or "default": each socket then binds to the
link of the default route of its family. Run 'ifbind COMMAND -h' (or
'ifbind help COMMAND') for a command's flags. Times are in seconds (2, 0.5)
or with a unit (500ms, 1m).

Examples:
  go run ./cmd/ifbind demo                     ten seconds, no root needed where user namespaces are allowed
  ifbind links
  ifbind get -i eth1 -o debian.iso https://cdimage.debian.org/...
  ifbind get -i wwan0 --dns-via-iface https://example.com/
  echo hello | ifbind dial -i 3 tcp 192.0.2.2:7
  ifbind listen -i eth1 udp 5353

Exit codes:
  0    success
  1    get: the server answered with an HTTP status of 400 or more (the body is
       still written, unless -f); demo: ifbind put a socket on the wrong NIC (a bug)
  2    usage: a bad command, flag or argument: a malformed URL or address, a
       port out of range, an unknown service name, a zone that is not IFACE;
       listen: an address this host does not have; get: a loopback or
       malformed nameserver, or a loopback proxy, which no packet sent
       through IFACE reaches
  3    interface: IFACE names no link, or a socket could not be bound to it;
       dial, listen: IFACE went away during the transfer
  4    network: name resolution, connection, TLS or transfer failed, or timed out
  5    local: a file could not be read or written, a local port is in use, get
       would write binary to a terminal; the demo found no namespace to run in
  130  interrupted (SIGINT or SIGTERM)
`

// A command is one of ifbind's commands.
type command func(args []string, stdin io.Reader, stdout, stderr io.Writer) int

// commands returns the commands by name.
func commands() map[string]command {
	return map[string]command{
		"links":   cmdLinks,
		"get":     cmdGet,
		"dial":    cmdDial,
		"listen":  cmdListen,
		"demo":    cmdDemo,
		"route":   cmdRoute,
		"version": cmdVersion,
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	cmds := commands()
	switch name := args[0]; name {
	case "help":
		if len(args) == 1 {
			fmt.Fprint(stdout, usageText)
			return exitOK
		}
		if cmd, ok := cmds[args[1]]; ok { // ifbind help get
			return cmd([]string{"-h"}, stdin, stdout, stderr)
		}
		return unknownCommand(stderr, cmds, args[1])
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	case "-version", "--version":
		return cmdVersion(args[1:], stdin, stdout, stderr)
	default:
		cmd, ok := cmds[name]
		if ok {
			return cmd(args[1:], stdin, stdout, stderr)
		}
		return unknownCommand(stderr, cmds, name)
	}
}

// unknownCommand reports name, which is no command (or a flag before any
// command), on one line with a suggestion or the list of commands, and
// returns exitUsage.
func unknownCommand(stderr io.Writer, cmds map[string]command, name string) int {
	what := "command"
	if strings.HasPrefix(name, "-") {
		what = "flag" // before any command
	}
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	slices.Sort(names)
	msg := fmt.Sprintf("unknown %s %q", what, name)
	if s := suggest(strings.TrimLeft(name, "-"), names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	} else {
		msg += "; the commands are " + strings.Join(names, ", ") + " (ifbind -h)"
	}
	fmt.Fprintln(stderr, "ifbind: "+msg)
	return exitUsage
}

// cmdVersion prints the version of the module and of Go the binary was
// built with, from its build information.
func cmdVersion(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("version", "Usage: ifbind version\n\nPrints the version of ifbind, the commit it was built from and the Go release.\n", stdout, stderr)
	pos, code, stop := fs.parse(args)
	if stop {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, "version", fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	fmt.Fprintln(stdout, version())
	return exitOK
}

// version returns "ifbind VERSION [commit REV [DATE] [modified]] GO OS/ARCH".
func version() string {
	s := "ifbind (unknown)"
	goVersion := runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		s = "ifbind " + bi.Main.Version
		goVersion = bi.GoVersion
		var rev, at, modified string
		for _, kv := range bi.Settings {
			switch kv.Key {
			case "vcs.revision":
				rev = kv.Value
			case "vcs.time":
				at = kv.Value
			case "vcs.modified":
				if kv.Value == "true" {
					modified = " modified"
				}
			}
		}
		if rev != "" {
			s += " commit " + rev[:min(12, len(rev))]
			if at != "" {
				s += " " + at
			}
			s += modified
		}
	}
	return s + " " + goVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// suggest returns the one of names closest to word, or "" when none is
// close: within one edit (a letter added, dropped, changed, or two
// neighbours swapped) per three letters, at least one and at most two, or
// else the first name that word starts. A single letter is close to no
// name: one edit turns it into any other letter.
func suggest(word string, names []string) string {
	if len(word) < 2 {
		return ""
	}
	best, bestDist := "", min(2, max(1, len(word)/3))+1
	for _, n := range names {
		if d := typoDistance(word, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	if best != "" {
		return best
	}
	for _, n := range names {
		if strings.HasPrefix(n, word) {
			return n
		}
	}
	return ""
}

// typoDistance is the optimal string alignment distance between a and b:
// the number of letters added, dropped or changed, and of adjacent letters
// swapped, that turn a into b.
func typoDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// usageError prints msg, on one line with the hint to run -h, and returns
// exitUsage.
func usageError(stderr io.Writer, cmd, msg string) int {
	fmt.Fprintf(stderr, "ifbind %s: %s (ifbind %s -h for help)\n", cmd, msg, cmd)
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
	fmt.Fprintf(&b, "-i %s: %v", e.spec, e.err)
	if len(e.links) > 0 {
		b.WriteString("\nthe links here are:\n")
		writeTable(&b, e.links, "  ")
	}
	return strings.TrimRight(b.String(), "\n")
}

func (e *ifaceError) Unwrap() error { return e.err }

// exitCode tells which exit code err, a failure of a network operation,
// deserves: exitInterface when the interface is missing or the socket could
// not be bound to it, exitLocal when a local address is in use,
// exitNetwork otherwise.
func exitCode(err error) int {
	var ie *ifaceError
	var be *ifbind.BindError
	var se *os.SyscallError
	var ue *ifbind.UplinksError
	switch {
	case errors.As(err, &ue):
		// Uplinks that are down, without carrier or address, or whose
		// dial failed are an outage, as they are through one interface;
		// only uplinks that are all gone say IFACE is wrong.
		for _, a := range ue.Uplinks {
			if !errors.Is(a.Err, syscall.ENODEV) && !errors.Is(a.Err, ifbind.ErrLinkGone) {
				return exitNetwork
			}
		}
		return exitInterface
	case errors.As(err, &ie), errors.As(err, &be), errors.Is(err, ifbind.ErrNetnsGone), errors.Is(err, ifbind.ErrNoRoute):
		return exitInterface
	case errors.As(err, &se) && se.Syscall == "setns":
		return exitInterface // the namespace of --netns cannot be entered
	case errors.Is(err, syscall.EADDRINUSE):
		return exitLocal
	}
	return exitNetwork
}

// fail prints err for cmd and returns code.
func fail(stderr io.Writer, cmd string, code int, err error) int {
	fmt.Fprintf(stderr, "ifbind %s: %s\n", cmd, message(err))
	return code
}

// message returns the text of err without the "ifbind: " prefixes of the
// library's errors, which the command's own prefix makes redundant.
func message(err error) string {
	return strings.ReplaceAll(err.Error(), "ifbind: ", "")
}
