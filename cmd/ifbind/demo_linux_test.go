package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/race"
	"github.com/ifbind/ifbind/internal/testnet"
)

// isRealRoot reports whether the tests run as root of the initial user
// namespace, which can run a child as nobody; CI's second run, as nobody,
// is root only of the sandbox's user namespace.
func isRealRoot(t *testing.T) bool {
	t.Helper()
	uidMap, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		t.Fatalf("failed to read the uid map: %v", err)
	}
	return os.Getuid() == 0 && strings.Join(strings.Fields(string(uidMap)), " ") == "0 0 4294967295"
}

// procs returns the processes running bin.
func procs(bin string) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink("/proc/" + d.Name() + "/exe"); err == nil && strings.TrimSuffix(exe, " (deleted)") == bin {
			pids = append(pids, pid)
		}
	}
	return pids
}

// netnsOf returns the network namespace of pid, as "net:[inode]".
func netnsOf(pid int) string {
	ns, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/net")
	return ns
}

// holders returns the processes that are in the network namespace ns.
func holders(ns string) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if pid, err := strconv.Atoi(d.Name()); err == nil && netnsOf(pid) == ns {
			pids = append(pids, pid)
		}
	}
	return pids
}

// demoRun is a demo running in the background, its stdout watched.
type demoRun struct {
	cmd    *exec.Cmd
	out    strings.Builder
	racing chan struct{} // closed when the demo says it races
	done   chan struct{}
}

func startDemo(t *testing.T, cmd *exec.Cmd, startIn func(func() error) error) *demoRun {
	t.Helper()
	d := &demoRun{cmd: cmd, racing: make(chan struct{}), done: make(chan struct{})}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := startIn(cmd.Start); err != nil {
		t.Fatalf("failed to start the demo: %v", err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pipe)
		said := false
		for sc.Scan() {
			d.out.WriteString(sc.Text() + "\n")
			if !said && strings.HasPrefix(sc.Text(), "racing") {
				said = true
				close(d.racing)
			}
		}
	}()
	go func() { <-scanned; cmd.Wait(); close(d.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-d.done })
	select {
	case <-d.racing:
	case <-d.done:
		t.Fatalf("the demo ended before racing:\n%s", d.out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("the demo did not start racing:\n%s", d.out.String())
	}
	return d
}

func (d *demoRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("the demo did not end after the signal:\n%s", d.out.String())
	}
	return d.cmd.ProcessState.ExitCode()
}

func now(f func() error) error { return f() }

func TestDemo(t *testing.T) {
	bin := build(t)
	before := testnet.LinkNames(t, nil)
	ourNS := netnsOf(os.Getpid())
	leftovers := func(t *testing.T, what string) {
		t.Helper()
		if after := testnet.LinkNames(t, nil); !slices.Equal(after, before) {
			t.Errorf("%s: links after %v, want %v as before", what, after, before)
		}
		if p := procs(bin); len(p) > 0 {
			t.Errorf("%s: processes %v still run the demo", what, p)
		}
	}

	t.Run("json", func(t *testing.T) {
		const n = 2000
		r := runBin(t, bin, "", "demo", "-sockets", strconv.Itoa(n), "-json", "-workers", "2")
		if r.code != 0 {
			t.Fatalf("demo -json: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		var out demoJSON
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("failed to parse demo -json: %v\n%s", err, r.stdout)
		}
		if out.Namespace != "net" || out.Workers != 2 || len(out.Methods) != 2 || out.Renames == 0 || out.Interrupted {
			t.Fatalf("demo -json: got %+v, want namespace net, 2 workers, 2 methods, renames, not interrupted", out)
		}
		byName, ifb := out.Methods[0], out.Methods[1]
		if byName.Method != race.ByName || byName.Attempts != n || byName.Bound+byName.BindFailed != n {
			t.Errorf("by name: got %+v, want %d attempts, each bound or failed", byName, n)
		}
		if ifb.Method != race.ByIndex || ifb.Attempts != n || ifb.Bound != n || ifb.Wrong != 0 || ifb.BindFailed != 0 || ifb.WrongPer100kBound != 0 {
			t.Errorf("ifbind: got %+v, want %d attempts, all bound, none wrong, none failed", ifb, n)
		}
		// 2 workers per method and the renamer need 5 Ps: what the race
		// ran with is reported, and the runtime's own choice apart.
		if out.GOMAXPROCS < 5 || out.Machine.GOMAXPROCSDefault < 1 || out.Limits.AttemptsPerMethod != n {
			t.Errorf("demo -json: gomaxprocs %d (default %d), limits %+v, want at least 5, the default, and %d attempts per method",
				out.GOMAXPROCS, out.Machine.GOMAXPROCSDefault, out.Limits, n)
		}
		for _, key := range []string{`"attempts"`, `"bound"`, `"bind_failed"`, `"gomaxprocs_default"`, `"attempts_per_method"`} {
			if !strings.Contains(r.stdout, key) {
				t.Errorf("demo -json: no key %s in:\n%s", key, r.stdout)
			}
		}
		leftovers(t, "demo -json")
	})

	t.Run("text", func(t *testing.T) {
		r := runBin(t, bin, "", "demo", "-duration", "500ms")
		for _, want := range []string{"racing for 500ms", "by name", "ifbind", "wrong NIC", "Conclusion: by name", "race-a"} {
			if r.code != 0 || !strings.Contains(r.stdout, want) {
				t.Errorf("demo: exit %d, want 0 and %q in:\n%s%s", r.code, want, r.stdout, r.stderr)
			}
		}
		leftovers(t, "demo")
	})

	for _, tc := range []struct {
		name  string
		group bool // signal the process group, as a Ctrl-C does
		sig   syscall.Signal
	}{
		{"ctrl-c", true, syscall.SIGINT},
		{"sigterm to the parent", false, syscall.SIGTERM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, "demo", "-duration", "5m", "-workers", "1")
			cmd.Env = env()
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			d := startDemo(t, cmd, now)
			var child int
			for _, pid := range procs(bin) {
				if pid != cmd.Process.Pid {
					child = pid
				}
			}
			childNS := netnsOf(child)
			if child == 0 || childNS == "" || childNS == ourNS {
				t.Fatalf("found the demo's child %d in namespace %q (ours %q): want one in a namespace of its own", child, childNS, ourNS)
			}
			if tc.group {
				syscall.Kill(-cmd.Process.Pid, tc.sig)
			} else {
				cmd.Process.Signal(tc.sig)
			}
			if code := d.wait(t); code != exitInterrupted || !strings.Contains(d.out.String(), "(interrupted)") ||
				!strings.Contains(d.out.String(), "Conclusion:") {
				t.Errorf("demo after %v: exit %d, want %d and the partial counts in:\n%s", tc.sig, code, exitInterrupted, d.out.String())
			}
			leftovers(t, "demo after "+tc.name)
			if p := holders(childNS); len(p) > 0 {
				t.Errorf("processes %v still hold the demo's namespace %s", p, childNS)
			}
		})
	}

	t.Run("race in place cleans up", func(t *testing.T) {
		// The child's own cleanup, in a namespace the test can look into.
		ns := testnet.NewNS(t)
		inNS := testnet.LinkNames(t, ns)
		cmd := exec.Command(bin, "demo", "-duration", "5m", "-workers", "1")
		cmd.Env = append(env(), envDemoNS+"=net")
		d := startDemo(t, cmd, func(start func() error) error { return ns.Do(start) })
		if during := testnet.LinkNames(t, ns); len(during) != len(inNS)+2 {
			t.Errorf("links while racing %v, want the two race links besides %v", during, inNS)
		}
		cmd.Process.Signal(syscall.SIGINT)
		if code := d.wait(t); code != exitInterrupted {
			t.Errorf("demo race after SIGINT: exit %d, want %d", code, exitInterrupted)
		}
		if after := testnet.LinkNames(t, ns); !slices.Equal(after, inNS) {
			t.Errorf("links after the race %v, want %v as before", after, inNS)
		}
	})

	t.Run("unprivileged", func(t *testing.T) {
		cmd := exec.Command(bin, "demo", "-sockets", "500", "-workers", "1", "-json")
		cmd.Env = env()
		cmd.Dir = "/"
		if isRealRoot(t) {
			for dir := filepath.Dir(bin); dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
				if err := os.Chmod(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		} else {
			// The suite runs unprivileged already, as root of the
			// sandbox's user namespace only: run the demo as nobody of
			// a user namespace nested in it, with no capability, so
			// that it must make user and network namespaces itself.
			cmd.SysProcAttr = &syscall.SysProcAttr{
				Cloneflags:                 syscall.CLONE_NEWUSER,
				UidMappings:                []syscall.SysProcIDMap{{ContainerID: 65534, HostID: os.Getuid(), Size: 1}},
				GidMappings:                []syscall.SysProcIDMap{{ContainerID: 65534, HostID: os.Getgid(), Size: 1}},
				GidMappingsEnableSetgroups: false,
				Credential:                 &syscall.Credential{Uid: 65534, Gid: 65534, NoSetGroups: true},
			}
		}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("demo as nobody: %v\n%s", err, out)
		}
		var res demoJSON
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("failed to parse demo -json: %v\n%s", err, out)
		}
		if res.Namespace != "user+net" || res.Methods[1].Bound != 500 || res.Methods[1].Wrong != 0 {
			t.Errorf("demo as nobody: got %+v, want user+net namespaces and 500 ifbind sockets, none wrong", res)
		}
		leftovers(t, "demo as nobody")
	})

	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"demo", "-workers", "0"},
			{"demo", "-duration", "0"},
			{"demo", "-sockets", "-1"},
			{"demo", "extra"},
		} {
			if r := runBin(t, bin, "", args...); r.code != exitUsage {
				t.Errorf("%v: exit %d, want %d; stderr %s", args, r.code, exitUsage, r.stderr)
			}
		}
	})
}

func TestDemoNoNamespace(t *testing.T) {
	// Every mode refused: a child that cannot even start stands in for a
	// kernel that refuses the namespaces.
	refused := func(cmd *exec.Cmd) { cmd.Dir = "/nonexistent" }
	var stderr strings.Builder
	code := demoReexec([]string{"-duration", "1s"}, &stderr, refused)
	for _, want := range []string{"cannot make a throwaway network namespace", "no such file or directory",
		"sudo ifbind demo", "kernel.unprivileged_userns_clone=1", "kernel.apparmor_restrict_unprivileged_userns=0"} {
		if code != exitLocal || !strings.Contains(stderr.String(), want) {
			t.Errorf("demo without namespaces: exit %d, want %d and %q in:\n%s", code, exitLocal, want, stderr.String())
		}
	}
}

func TestGroup(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -12345: "-12,345"} {
		if got := group(n); got != want {
			t.Errorf("group(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestConclusion(t *testing.T) {
	res := &race.Result{
		ByName:  race.Tally{Method: race.ByName, Sockets: 200000, Wrong: 40, Failed: 1000},
		ByIndex: race.Tally{Method: race.ByIndex, Sockets: 250000},
	}
	got := conclusion(res)
	want := "Conclusion: by name, 40 of 200,000 sockets landed on the wrong NIC (20 per 100,000) and 1,000 binds failed, the name missing mid-rename; ifbind bound all 250,000 to the NIC meant."
	if got != want {
		t.Errorf("conclusion:\ngot  %s\nwant %s", got, want)
	}
	for _, line := range strings.Split(wrap(got, 78, "  "), "\n") {
		if len(line) > 78 {
			t.Errorf("wrapped line of %d bytes, want at most 78: %q", len(line), line)
		}
	}
}
