package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
)

// build builds the command, as a static binary, into a directory that
// lives until t ends, and returns its path.
func build(t *testing.T) string {
	t.Helper()
	testnet.Require(t)
	gocmd, err := exec.LookPath("go")
	if err != nil {
		gocmd = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "ifbind")
	cmd := exec.Command(gocmd, "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("failed to build the command: %v\n%s", err, out)
	}
	return bin
}

// env is the environment the command runs with: this one, without proxies.
func env() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasSuffix(strings.ToLower(k), "_proxy") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// A result is what a run of the command did.
type result struct {
	stdout, stderr string
	code           int
}

// runBin runs bin with args and stdin to its end, in this process's network
// namespace, and returns what it did.
func runBin(t *testing.T, bin, stdin string, args ...string) result {
	t.Helper()
	return runBinEnv(t, bin, stdin, nil, args...)
}

// runBinEnv runs bin as runBin does, with the variables of extra (K=V)
// added to its environment.
func runBinEnv(t *testing.T, bin, stdin string, extra []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(env(), extra...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("failed to run ifbind %v: %v", args, err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// expect fails t unless r ended with code and its stdout is stdout.
func (r result) expect(t *testing.T, what string, code int, stdout string) {
	t.Helper()
	if r.code != code || r.stdout != stdout {
		t.Errorf("%s: got exit %d, stdout %q, want exit %d, stdout %q; stderr:\n%s", what, r.code, r.stdout, code, stdout, r.stderr)
	}
}

// A proc is the command running in the background.
type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer // read it once done is closed
	lines  chan string  // stderr, line by line
	stderr lockedBuffer // all of stderr so far, safe to read at any time
	done   chan struct{}
}

// A lockedBuffer is a buffer one goroutine writes while others read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start starts bin with args and stdin; its stderr is read line by line.
// It is killed when t ends, if still running.
func start(t *testing.T, cmd *exec.Cmd, stdin string) *proc {
	t.Helper()
	p := &proc{cmd: cmd, lines: make(chan string, 100), done: make(chan struct{})}
	cmd.Env = env()
	if cmd.Stdin == nil { // a caller may set its own, a pipe
		cmd.Stdin = strings.NewReader(stdin)
	}
	cmd.Stdout = &p.stdout
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("failed to start %v: %v", cmd.Args, err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer close(p.lines)
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			p.stderr.WriteString(sc.Text() + "\n")
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	// Wait closes the pipe: only once all of stderr was read.
	go func() { <-read; cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitLine waits for a line of stderr that contains s.
func (p *proc) waitLine(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("%v ended before saying %q; stderr: %s", p.cmd.Args, s, p.stderr.String())
			}
			if strings.Contains(line, s) {
				return
			}
		case <-timeout:
			t.Fatalf("%v did not say %q in time", p.cmd.Args, s)
		}
	}
}

// wait waits for p to end and returns its exit code.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("%v did not end", p.cmd.Args)
	}
	return p.cmd.ProcessState.ExitCode()
}

// addAltName gives the link an alternative name, for the time of t.
func addAltName(t *testing.T, index int, alt string) {
	t.Helper()
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		t.Fatalf("failed to find link %d: %v", index, err)
	}
	if err := netlink.LinkAddAltName(l, alt); err != nil {
		t.Fatalf("failed to add altname %s to link %d: %v", alt, index, err)
	}
	t.Cleanup(func() { netlink.LinkDelAltName(l, alt) })
}

// specs returns the four ways to name the link with index: name, altname
// (added for the time of t), index and MAC.
func itoa(i int) string { return strconv.Itoa(i) }

func specs(t *testing.T, index int, alt string) map[string]string {
	t.Helper()
	addAltName(t, index, alt)
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		t.Fatalf("failed to find link %d: %v", index, err)
	}
	return map[string]string{
		"name":    l.Attrs().Name,
		"altname": alt,
		"index":   strconv.Itoa(index),
		"mac":     l.Attrs().HardwareAddr.String(),
	}
}
