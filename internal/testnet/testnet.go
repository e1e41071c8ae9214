//go:build linux

// Package testnet builds real network topologies for ifbind's tests: network
// namespaces, veth pairs, addresses and small servers, all thrown away when
// the test ends.
//
// A test package calls Main from its TestMain. Main re-executes the test
// binary inside a network namespace of its own (and, when not root, inside a
// new user namespace too, as `unshare -rn` does), so that every thread of the
// tests lives in a namespace nobody else uses, without root where the kernel
// allows unprivileged user namespaces. Tests that need it call Require, the
// one place that decides whether such a test runs, skips or fails.
package testnet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/ifbind/ifbind/internal/sandbox"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// envSandbox is set in the re-executed test binary, to the kind of
// namespace it runs in.
const envSandbox = "IFBIND_TESTNET_SANDBOX"

// sandboxed tells whether this process runs in a network namespace made
// for it; noSandbox says why not. Both are set once, in Main.
var (
	sandboxed bool
	noSandbox error
)

// Main runs m inside a sandbox when it can, and exits with its code.
func Main(m *testing.M) {
	if os.Getenv(envSandbox) == "" {
		code, err := reexec()
		if err == nil {
			os.Exit(code)
		}
		noSandbox = err
	} else if err := loopbackUp(); err != nil {
		noSandbox = fmt.Errorf("failed to bring lo up in the sandbox: %v", err)
	} else {
		sandboxed = true
	}
	warmUp()
	code := m.Run()
	if code == 0 {
		if err := findLeaks(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// reexec runs this binary again with the same arguments inside new
// namespaces and returns its exit code, or an error when it could not start.
func reexec() (int, error) {
	cmd, err := sandbox.Start(envSandbox, os.Args[1:], func(cmd *exec.Cmd) {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	})
	if err != nil {
		return 0, fmt.Errorf("cannot make a network namespace for the tests (%v)", err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if code := ee.ExitCode(); code >= 0 {
			return code, nil
		}
		return 2, nil // killed by a signal; it said so on stderr
	}
	return 0, err
}

func loopbackUp() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	return netlink.LinkSetUp(lo)
}

// Require skips t unless the test runs in a network namespace of its own,
// where it may build topologies. Under CI (CI=true) it fails instead: there
// a skipped integration test is a hole in the proof.
//
// In a test (not a benchmark, whose fixtures may outlive it), Require also
// checks for leaks: see CheckLeaks.
func Require(t testing.TB) {
	t.Helper()
	if sandboxed {
		if tt, ok := t.(*testing.T); ok {
			CheckLeaks(tt)
		}
		return
	}
	msg := fmt.Sprintf("needs a network namespace of its own: %v; "+
		"run as root, or allow unprivileged user namespaces "+
		"(sysctl kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0)", noSandbox)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Sandboxed reports whether the tests run in a network namespace of their own.
func Sandboxed() bool { return sandboxed }

// A NS is a network namespace made by a test, held open by a file
// descriptor and destroyed when the test ends.
type NS struct {
	fd int
}

// NewNS makes a network namespace, with lo up, that lives until t ends.
func NewNS(t testing.TB) *NS {
	t.Helper()
	Require(t)
	CheckLeaks(t)
	fd, err := newNSFD()
	if err != nil {
		t.Fatalf("failed to make a network namespace: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &NS{fd: fd}
}

// newNSFD makes a network namespace with lo up and returns a descriptor
// that holds it open.
func newNSFD() (int, error) {
	return onThread(func() (int, error) {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return -1, fmt.Errorf("unshare: %v", err)
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		if err := loopbackUp(); err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	})
}

// FD returns the descriptor that holds the namespace open.
func (ns *NS) FD() int { return ns.fd }

// Do runs f on an OS thread inside ns. Sockets f creates stay in ns and may
// be used from any goroutine afterwards. f must not call t.Fatal.
func (ns *NS) Do(f func() error) error {
	_, err := onThread(func() (int, error) {
		if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
			return 0, fmt.Errorf("setns: %v", err)
		}
		return 0, f()
	})
	return err
}

// onThread runs f on a locked OS thread of a goroutine of its own, then puts
// the thread back into the network namespace it started in. A thread that
// cannot be put back is never unlocked, so that it dies with the goroutine
// instead of running other code in the wrong namespace.
func onThread(f func() (int, error)) (int, error) {
	type result struct {
		v   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{-1, err}
			return
		}
		defer unix.Close(orig)
		v, err := f()
		if serr := unix.Setns(orig, unix.CLONE_NEWNET); serr != nil {
			done <- result{v, errors.Join(err, fmt.Errorf("failed to restore the thread's namespace: %v", serr))}
			return // the thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		done <- result{v, err}
	}()
	r := <-done
	return r.v, r.err
}
