package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ifbind/ifbind/internal/race"
	"github.com/ifbind/ifbind/internal/sandbox"
)

// envDemoNS is set, in the demo's re-executed child, to the kind of
// namespace it runs in ("net" or "user+net"). Set by hand, it runs the race
// in the current network namespace, which must be a throwaway one.
const envDemoNS = "IFBIND_DEMO_NAMESPACE"

const demoUsage = `Usage: ifbind demo [-duration D] [-workers N] [-sockets N] [-json]

Shows in about ten seconds why ifbind binds sockets by interface index.
In a throwaway network namespace it makes two links (a veth pair, both
down), swaps their names in a loop, and meanwhile makes UDP sockets, each
meant for one of the two links, known by its index:
  by name: the index's name is looked up (if_indextoname, the ioctl
           SIOCGIFNAME) and the socket bound to that name (SO_BINDTODEVICE),
           the classic way;
  ifbind:  the socket is bound by index (ifbind.ListenConfig,
           SO_BINDTOIFINDEX).
Every socket's binding is then read back from the kernel (SO_BINDTOIFINDEX)
and compared with the link it was meant for. The demo reports, for each
method, how many sockets were bound, how many of those to the wrong link,
and how many binds failed.

It never touches this machine's own interfaces: it re-executes itself in a
new network namespace (as root), or in new user and network namespaces (as
anyone, where the kernel allows unprivileged user namespaces, as unshare -rn
does), and the namespace and its links vanish when it exits, on Ctrl-C too.

Examples:
  go run ./cmd/ifbind demo
  ifbind demo -duration 60s -workers 8
  ifbind demo -sockets 100000 -json     # wrong binds per 100,000 sockets, for scripts

Exit codes: 0 ok, 1 ifbind put a socket on the wrong link (a bug: please
report it), 2 usage, 5 no namespace could be made (the message says what
would allow one), 130 interrupted (the partial counts are still printed).
`

type demoFlags struct {
	duration time.Duration
	workers  int
	sockets  int64
	json     bool

	gomaxprocs [2]int // the runtime's own, and the one the race ran with
}

func cmdDemo(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var f demoFlags
	fs := newFlags("demo", demoUsage, stdout, stderr)
	fs.secondsVar(&f.duration, "duration", 8*time.Second, "race for `SECONDS` (0: no limit; with -sockets the default is no limit)")
	fs.IntVar(&f.workers, "workers", race.DefaultWorkers(), "make sockets with `N` goroutines per method")
	fs.Int64Var(&f.sockets, "sockets", 0, "stop each method after `N` attempts to make a socket, bound or failed (0: no limit)")
	fs.BoolVar(&f.json, "json", false, "print the result as JSON, and nothing else on stdout")
	pos, code, stop := fs.parse(args)
	if stop {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, "demo", "unexpected argument "+strconv.Quote(pos[0]))
	}
	durationSet := false
	fs.Visit(func(fl *flag.Flag) { durationSet = durationSet || fl.Name == "duration" })
	if f.sockets > 0 && !durationSet {
		f.duration = 0
	}
	switch {
	case f.workers < 1:
		return usageError(stderr, "demo", "-workers must be at least 1")
	case f.sockets < 0 || f.duration < 0:
		return usageError(stderr, "demo", "-sockets and -duration must not be negative")
	case f.sockets == 0 && f.duration == 0:
		return usageError(stderr, "demo", "-duration 0 needs -sockets: the race would never end")
	}
	if ns := os.Getenv(envDemoNS); ns != "" {
		return demoRace(&f, ns, stdout, stderr)
	}
	return demoReexec(args, stderr, func(cmd *exec.Cmd) { cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr })
}

// demoReexec runs the demo again in namespaces of its own, the command set
// up by setup, and returns its exit code. Signals are passed on to it.
func demoReexec(args []string, stderr io.Writer, setup func(*exec.Cmd)) int {
	// Catch the signals before the child exists, so that none is lost.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)

	cmd, err := sandbox.Start(envDemoNS, append([]string{"demo"}, args...), setup)
	if err != nil {
		fmt.Fprintf(stderr, noNamespaceText, err)
		return exitLocal
	}

	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var killTimer <-chan time.Time
	for {
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ee.ExitCode() < 0 {
					return exitInterrupted // killed by a signal
				}
				return ee.ExitCode()
			}
			if err != nil {
				return fail(stderr, "demo", exitLocal, err)
			}
			return exitOK
		case sig := <-sigs:
			// A Ctrl-C reaches the child too; a kill of this process
			// alone must be passed on. A second one, or a child that
			// does not stop in five seconds, ends it for good.
			if killTimer != nil {
				cmd.Process.Kill()
				continue
			}
			cmd.Process.Signal(sig)
			killTimer = time.After(5 * time.Second)
		case <-killTimer:
			cmd.Process.Kill()
		}
	}
}

const noNamespaceText = `ifbind demo: cannot make a throwaway network namespace to race in:
  %v
The demo never touches this machine's own interfaces: it needs a network
namespace of its own. Any of these makes one possible:
  - run it as root: sudo ifbind demo;
  - allow unprivileged user namespaces:
      sysctl -w kernel.unprivileged_userns_clone=1                  (Debian, older Ubuntu)
      sysctl -w user.max_user_namespaces=15000                      (if it is 0)
      sysctl -w kernel.apparmor_restrict_unprivileged_userns=0      (Ubuntu 23.10 and later)
  - in a container: give it CAP_SYS_ADMIN (docker run --cap-add SYS_ADMIN,
    or --privileged), or a seccomp profile that allows unshare and clone.
`

// demoRace runs the race in the current network namespace, which the
// demo made for it (ns says how), and prints what happened.
func demoRace(f *demoFlags, ns string, stdout, stderr io.Writer) int {
	// The renamer needs a P of its own, or it waits behind the workers.
	procs := runtime.GOMAXPROCS(0)
	if p := 2*f.workers + 1; procs < p {
		runtime.GOMAXPROCS(p)
	}
	f.gomaxprocs = [2]int{procs, runtime.GOMAXPROCS(0)}
	// Keep catching signals until the end: a Ctrl-C comes from the
	// terminal and, passed on, from the parent too.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-sigs
		cancel()
	}()

	cfg := race.Config{Workers: f.workers, Duration: f.duration, Sockets: f.sockets}
	if !f.json {
		cfg.Started = func(su race.Setup) { printSetup(stdout, su, f, ns) }
	}
	res, err := race.Run(ctx, cfg)
	if err != nil && res == nil {
		return fail(stderr, "demo", exitLocal, err)
	}
	if f.json {
		printJSON(stdout, res, f, ns)
	} else {
		printResult(stdout, res)
	}
	switch {
	case err != nil:
		return fail(stderr, "demo", exitLocal, err)
	case res.ByIndex.Wrong > 0 || res.ByIndex.Failed > 0:
		fmt.Fprintln(stderr, "ifbind demo: ifbind bound a socket to the wrong link, or failed to bind: this is a bug, please report it")
		return exitHTTP
	case res.Interrupted:
		return exitInterrupted
	}
	return exitOK
}

func printSetup(w io.Writer, su race.Setup, f *demoFlags, ns string) {
	where := "a new network namespace"
	if ns == "user+net" {
		where = "new user and network namespaces (no root needed)"
	}
	until := "for " + f.duration.String()
	switch {
	case f.sockets > 0 && f.duration > 0:
		until = fmt.Sprintf("until %s attempts per method, %s at most", group(f.sockets), f.duration)
	case f.sockets > 0:
		until = fmt.Sprintf("until %s attempts per method", group(f.sockets))
	}
	a, b := su.Links[0], su.Links[1]
	fmt.Fprintf(w, `ifbind demo: binding to a NIC by name or by index, while NICs are renamed
  where    %s, thrown away at the end
  links    %s (index %d) and %s (index %d): a %s pair, both down
  renamer  swaps their names in a loop, one rename at a time:
           %s -> %s, %s -> %s, %s -> %s
  workers  %d per method make UDP sockets, each meant for one link, and read back
           the link the kernel bound it to (SO_BINDTOIFINDEX)
    by name: index -> name (ioctl SIOCGIFNAME), then SO_BINDTODEVICE(name)
    ifbind:  ifbind.ListenConfig{Index: index}: SO_BINDTOIFINDEX(index)
racing %s...
`, where, a, su.Indexes[0], b, su.Indexes[1], su.Kind, a, su.Tmp, b, a, su.Tmp, b, f.workers, until)
}

func printResult(w io.Writer, res *race.Result) {
	fmt.Fprintln(w)
	rows := [][]string{{"method", "sockets bound", "wrong NIC", "per 100,000", "bind failed"}}
	for _, t := range []race.Tally{res.ByName, res.ByIndex} {
		name := "by name"
		if t.Method == race.ByIndex {
			name = "ifbind"
		}
		failed := group(t.Failed)
		if tries := t.Sockets + t.Failed; t.Failed > 0 {
			failed += fmt.Sprintf(" (%.0f%%)", float64(t.Failed)*100/float64(tries))
		}
		rows = append(rows, []string{name, group(t.Sockets), group(t.Wrong),
			strconv.FormatFloat(t.WrongPer100k(), 'f', 1, 64), failed})
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, r := range rows {
		line := "  " + r[0] + strings.Repeat(" ", widths[0]-len(r[0]))
		for i := 1; i < len(r); i++ {
			line += "   " + strings.Repeat(" ", widths[i]-len(r[i])) + r[i]
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "\n  %s renames in %.1fs", group(res.Renames), res.Elapsed.Seconds())
	if res.Interrupted {
		fmt.Fprint(w, " (interrupted)")
	}
	fmt.Fprintf(w, "; links deleted, namespace gone on exit.\n\n%s\n", wrap(conclusion(res), 78, "  "))
}

// conclusion is the line a reader takes away.
func conclusion(res *race.Result) string {
	n, i := res.ByName, res.ByIndex
	s := fmt.Sprintf("Conclusion: by name, %s of %s sockets landed on the wrong NIC (%.0f per 100,000)",
		group(n.Wrong), group(n.Sockets), n.WrongPer100k())
	if n.Wrong == 0 {
		s = fmt.Sprintf("Conclusion: by name, none of %s sockets landed on the wrong NIC this time (run longer, or with more -workers)",
			group(n.Sockets))
	}
	if n.Failed > 0 {
		s += fmt.Sprintf(" and %s binds failed, the name missing mid-rename", group(n.Failed))
	}
	if i.Wrong == 0 && i.Failed == 0 {
		return s + fmt.Sprintf("; ifbind bound all %s to the NIC meant.", group(i.Sockets))
	}
	return s + fmt.Sprintf("; ifbind put %s on the wrong NIC and failed %s binds: a bug.", group(i.Wrong), group(i.Failed))
}

// wrap breaks s into lines of at most width bytes where it can, the lines
// after the first indented.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	line := 0
	for i, word := range strings.Fields(s) {
		if i > 0 && line+1+len(word) > width {
			b.WriteString("\n" + indent)
			line = len(indent)
		} else if i > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(word)
		line += len(word)
	}
	return b.String()
}

// demoJSON is the output of demo -json.
type demoJSON struct {
	Namespace   string       `json:"namespace"` // "net" or "user+net"
	LinkKind    string       `json:"link_kind"`
	Links       [2]string    `json:"links"`
	Indexes     [2]int       `json:"indexes"`
	Workers     int          `json:"workers"`    // per method
	GOMAXPROCS  int          `json:"gomaxprocs"` // what the race ran with
	Seconds     float64      `json:"seconds"`
	Renames     int64        `json:"renames"`
	Interrupted bool         `json:"interrupted"`
	Methods     []methodJSON `json:"methods"`
	Machine     machineJSON  `json:"machine"`
	Limits      limitsJSON   `json:"limits"`
}

// methodJSON counts one method's attempts: each ends bound (to the link
// meant, or a wrong one) or failed.
type methodJSON struct {
	Method            string  `json:"method"`
	Attempts          int64   `json:"attempts"`    // bound + bind_failed
	Bound             int64   `json:"bound"`       // sockets made and bound
	Wrong             int64   `json:"wrong"`       // of the bound, to another link than meant
	BindFailed        int64   `json:"bind_failed"` // attempts whose binding failed: no socket
	WrongPer100kBound float64 `json:"wrong_per_100k_bound"`
}

type machineJSON struct {
	CPUs int `json:"cpus"`
	// GOMAXPROCSDefault is the runtime's choice, which the demo raises
	// so that the renamer has a P of its own; gomaxprocs is what it used.
	GOMAXPROCSDefault int    `json:"gomaxprocs_default"`
	Kernel            string `json:"kernel"`
	Go                string `json:"go"`
}

type limitsJSON struct {
	DurationSeconds   float64 `json:"duration_seconds"`    // 0: none
	AttemptsPerMethod int64   `json:"attempts_per_method"` // -sockets; 0: none
}

func printJSON(w io.Writer, res *race.Result, f *demoFlags, ns string) {
	out := demoJSON{
		Namespace: ns, LinkKind: res.Setup.Kind, Links: res.Setup.Links, Indexes: res.Setup.Indexes,
		Workers: f.workers, GOMAXPROCS: f.gomaxprocs[1], Seconds: res.Elapsed.Seconds(), Renames: res.Renames,
		Interrupted: res.Interrupted,
		Limits:      limitsJSON{DurationSeconds: f.duration.Seconds(), AttemptsPerMethod: f.sockets},
		Machine:     machineJSON{CPUs: runtime.NumCPU(), GOMAXPROCSDefault: f.gomaxprocs[0], Kernel: kernelRelease(), Go: runtime.Version()},
	}
	for _, t := range []race.Tally{res.ByName, res.ByIndex} {
		out.Methods = append(out.Methods, methodJSON{Method: t.Method, Attempts: t.Sockets + t.Failed,
			Bound: t.Sockets, Wrong: t.Wrong, BindFailed: t.Failed, WrongPer100kBound: t.WrongPer100k()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}

func kernelRelease() string {
	var u syscall.Utsname
	if syscall.Uname(&u) != nil {
		return ""
	}
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
