//go:build linux

package testnet

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// CheckLeaks fails t if, once t and its cleanups are done, goroutines that
// started during t still run, or file descriptors opened during t are still
// open. Call it first in a test, so that its check runs after every other
// cleanup; New and NewNS call it.
func CheckLeaks(t testing.TB) {
	t.Helper()
	checkingMu.Lock()
	already := checking[t]
	checking[t] = true
	checkingMu.Unlock()
	if already {
		return
	}
	ignore := goleak.IgnoreCurrent()
	before := openFDs()
	t.Cleanup(func() {
		checkingMu.Lock()
		delete(checking, t)
		checkingMu.Unlock()
		if err := goleak.Find(ignore); err != nil {
			t.Errorf("leaked goroutines: %v", err)
		}
		var leaked []string
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			leaked = leaked[:0]
			for fd, target := range openFDs() {
				if before[fd] != target {
					leaked = append(leaked, strconv.Itoa(fd)+" -> "+target)
				}
			}
			if len(leaked) == 0 || time.Now().After(deadline) {
				break
			}
		}
		if len(leaked) > 0 {
			sort.Strings(leaked)
			t.Errorf("leaked file descriptors: %s", strings.Join(leaked, ", "))
		}
	})
}

// checking holds the tests CheckLeaks already watches.
var (
	checkingMu sync.Mutex
	checking   = map[testing.TB]bool{}
)

// openFDs returns the process's open file descriptors and what they point
// to, leaving out the one that reads the list.
func openFDs() map[int]string {
	dir, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil
	}
	defer dir.Close()
	names, _ := dir.Readdirnames(-1)
	fds := make(map[int]string, len(names))
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || uintptr(fd) == dir.Fd() {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + name)
		if err != nil {
			continue // closed meanwhile
		}
		fds[fd] = target
	}
	return fds
}

// warmUp makes the runtime open what it keeps open for good (the network
// poller's descriptors), so that no test is blamed for them.
func warmUp() {
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
}

// findLeaks reports goroutines still running after every test.
func findLeaks() error {
	if err := goleak.Find(); err != nil {
		return fmt.Errorf("goroutines still running after the tests: %v", err)
	}
	return nil
}
