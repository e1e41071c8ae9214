package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ifbind/ifbind"
)

// A flagSet is a command's flags. A flag may have several names (-s and
// --silent); every flag takes one dash or two. Single-letter booleans
// combine, as in curl and nc: -fsS is -f -s -S.
type flagSet struct {
	*flag.FlagSet
	cmd            string
	usage          string
	stdout, stderr io.Writer
	alias          map[string]string   // another name -> the flag's first name
	names          map[string][]string // the flag's first name -> its other names
}

// newFlags returns the flag set of cmd, whose -h prints usage and then
// the flags.
func newFlags(cmd, usage string, stdout, stderr io.Writer) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(cmd, flag.ContinueOnError), cmd: cmd, usage: usage, stdout: stdout, stderr: stderr,
		alias: map[string]string{}, names: map[string][]string{}}
	fs.SetOutput(io.Discard) // errors are reported by parse, on one line
	fs.Usage = func() {}
	return fs
}

// aka gives the flag name other names, which set the same value.
func (fs *flagSet) aka(name string, others ...string) {
	f := fs.Lookup(name)
	for _, o := range others {
		fs.Var(f.Value, o, f.Usage)
		fs.alias[o] = name
	}
	fs.names[name] = append(fs.names[name], others...)
}

// printHelp prints the usage and the flags, each with its names, to stdout.
func (fs *flagSet) printHelp() {
	w := fs.stdout
	fmt.Fprint(w, fs.usage)
	any := false
	fs.VisitAll(func(*flag.Flag) { any = true })
	if any {
		fmt.Fprintln(w, "\nFlags:")
	}
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := fs.alias[f.Name]; ok {
			return
		}
		var names []string
		for _, n := range append([]string{f.Name}, fs.names[f.Name]...) {
			names = append(names, dashed(n))
		}
		slices.SortStableFunc(names, func(a, b string) int { return len(a) - len(b) }) // -m, --max-time
		arg, usage := flag.UnquoteUsage(f)
		line := "  " + strings.Join(names, ", ")
		if arg != "" {
			line += " " + arg
		}
		if f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "" {
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
	})
}

// dashed returns the flag name as typed: one dash for a single letter, two
// otherwise.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// parse parses args, allowing flags after the positional arguments too
// ("ifbind get URL -i eth0"), and returns the positional ones. "--" ends
// the flags. When parsing stops the command, it has printed why and code
// is its exit code: 0 after -h, 2 on a bad flag, said on one line.
func (fs *flagSet) parse(args []string) (pos []string, code int, stop bool) {
	args = fs.splitShort(args)
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.printHelp()
				return nil, exitOK, true
			}
			return nil, usageError(fs.stderr, fs.cmd, fs.explain(err)), true
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

// explain returns the message for an error of flag.Parse, with a
// suggestion for an unknown flag.
func (fs *flagSet) explain(err error) string {
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, "flag provided but not defined: -")
	if !ok {
		// "invalid value "x" for flag -max-time: ...", "flag needs an
		// argument: -i": the name as typed, -m or --max-time.
		for _, at := range []string{"for flag -", "for -", "argument: -"} {
			if i := strings.Index(msg, at); i >= 0 {
				head, rest := msg[:i+len(at)-1], msg[i+len(at):]
				n, tail, found := strings.Cut(rest, ":")
				if found {
					tail = ":" + tail
				}
				return head + dashed(n) + tail
			}
		}
		return msg
	}
	var names []string // the long ones: a single letter is close to every other
	fs.VisitAll(func(f *flag.Flag) {
		if len(f.Name) > 1 {
			names = append(names, f.Name)
		}
	})
	msg = "unknown flag " + dashed(name)
	s := suggest(name, names)
	if len(name) == 1 { // only the other case: -x for -X
		s = ""
		if other := strings.ToUpper(name); other != name && fs.Lookup(other) != nil {
			s = other
		} else if other := strings.ToLower(name); other != name && fs.Lookup(other) != nil {
			s = other
		}
	}
	if s != "" {
		msg += "; did you mean " + dashed(s) + "?"
	}
	return msg
}

// splitShort splits the combined single-letter booleans of args: -fsS
// becomes -f -s -S when each of f, s and S is one, and fsS no flag's name.
func (fs *flagSet) splitShort(args []string) []string {
	var out []string
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, isFlag := strings.CutPrefix(a, "-")
		if !isFlag || len(name) < 2 || strings.HasPrefix(name, "-") || strings.Contains(name, "=") || fs.Lookup(name) != nil {
			out = append(out, a)
			continue
		}
		split := true
		for _, c := range name {
			f := fs.Lookup(string(c))
			if f == nil {
				split = false
				break
			}
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
				split = false
				break
			}
		}
		if !split {
			out = append(out, a)
			continue
		}
		for _, c := range name {
			out = append(out, "-"+string(c))
		}
	}
	return out
}

// A seconds is a time flag: a number of seconds ("2", "0.5"), as curl
// takes, or a Go duration ("500ms", "1m30s").
type seconds time.Duration

func (s *seconds) String() string { return time.Duration(*s).String() }

func (s *seconds) Set(v string) error {
	if f, err := strconv.ParseFloat(v, 64); err == nil && !strings.ContainsAny(v, "xXpP") {
		ns := f * float64(time.Second)
		if !(ns >= 0 && ns < 1<<63) { // NaN too
			return errors.New("want a number of seconds from 0")
		}
		*s = seconds(ns)
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return errors.New("want seconds (2, 0.5) or a duration (500ms, 1m)")
	}
	*s = seconds(d)
	return nil
}

// secondsVar defines a time flag.
func (fs *flagSet) secondsVar(p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var((*seconds)(p), name, usage)
}

// A list is a flag that may be given many times, each value kept.
type list []string

func (l *list) String() string     { return strings.Join(*l, ", ") }
func (l *list) Set(v string) error { *l = append(*l, v); return nil }

// ifaceFlags are the flags that choose the interface a command's sockets
// are bound to. Every command that makes sockets defines them with
// register and turns them into a link with lookup: a new way to choose
// (a namespace, a list of interfaces) is a field here.
type ifaceFlags struct {
	spec    string // -i
	netns   string // --netns
	exclude string // --exclude, with -i default
	kinds   string // --exclude-kinds, with -i default
	lists   bool   // -i may list several interfaces (get, through ifbind.Uplinks)
	stop    func() // stops the monitor of -i default
}

// register defines the flags on fs; verb says what the interface is for.
func (f *ifaceFlags) register(fs *flagSet, verb string) {
	what := "a name, altname, index or MAC, or default (the link of the default route, per socket family)"
	if f.lists {
		what += "; or a comma-separated list of them, the preferred first (see --strategy)"
	}
	fs.StringVar(&f.spec, "i", "", "the interface to "+verb+": `IFACE` is "+what+" (required)")
	fs.aka("i", "interface")
	fs.StringVar(&f.netns, "netns", "", netnsUsage)
	fs.StringVar(&f.exclude, "exclude", "", "with -i default: never bind to these links, a comma-separated `LIST` of IFACEs (a VPN's tun0)")
	fs.StringVar(&f.kinds, "exclude-kinds", "", "with -i default: never bind to links of these kinds, a comma-separated `LIST` such as tun,wireguard (ifbind links --json shows each link's type)")
}

// lookup returns the link the flags name. A missing -i is a usage error
// (code exitUsage), a spec that names no link an *ifaceError.
func (f *ifaceFlags) lookup() (link ifbind.Link, code int, err error) {
	if f.spec == "" {
		return link, exitUsage, errors.New("-i IFACE is required")
	}
	if !f.lists && strings.Contains(f.spec, ",") {
		return link, exitUsage, fmt.Errorf("-i %s: this command takes one IFACE", f.spec)
	}
	if f.spec == defaultIface {
		return ifbind.Link{Name: defaultIface}, exitOK, nil
	}
	if f.exclude != "" || f.kinds != "" {
		return link, exitUsage, errors.New("--exclude and --exclude-kinds go with -i default")
	}
	// A list (-i eth0,wwan0) names its first link; each must exist.
	for i, spec := range strings.Split(f.spec, ",") {
		if spec == defaultIface {
			return link, exitUsage, fmt.Errorf("-i %s: default cannot be part of a list", f.spec)
		}
		l, err := lookupIfaceIn(f.netns, spec)
		if err != nil {
			return link, exitInterface, err
		}
		if i == 0 {
			link = l
		}
	}
	return link, exitOK, nil
}

// dialer returns a Dialer whose sockets go where the flags say, through
// link, which lookup returned: for -i default, through the link of the
// default route of each socket's family. close releases what it holds.
func (f *ifaceFlags) dialer(link ifbind.Link) (*ifbind.Dialer, error) {
	if isDefault(link) {
		b, err := f.routeBinding()
		if err != nil {
			return nil, err
		}
		return &ifbind.Dialer{Binding: b}, nil // b carries the namespace
	}
	return &ifbind.Dialer{Index: link.Index, Netns: f.netns}, nil
}

// listenConfig is dialer for a ListenConfig. With -i default, a dual-stack
// listener is an IPv6 socket: it follows the IPv6 default.
func (f *ifaceFlags) listenConfig(link ifbind.Link) (*ifbind.ListenConfig, error) {
	if isDefault(link) {
		b, err := f.routeBinding()
		if err != nil {
			return nil, err
		}
		return &ifbind.ListenConfig{Binding: b}, nil
	}
	return &ifbind.ListenConfig{Index: link.Index, Netns: f.netns}, nil
}

func (f *ifaceFlags) routeBinding() (ifbind.Binding, error) {
	rf := ifbind.RouteFilter{Exclude: split(f.exclude), ExcludeKinds: split(f.kinds)}
	b, stop, err := routeBinding(f.netns, rf)
	if err != nil {
		return nil, err
	}
	f.stop = stop
	return b, nil
}

// close releases what dialer or listenConfig holds.
func (f *ifaceFlags) close() {
	if f.stop != nil {
		f.stop()
	}
}

// isDefault reports whether link is the one lookup returns for -i default.
func isDefault(link ifbind.Link) bool { return link.Index == 0 && link.Name == defaultIface }
