package ifbind

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// homeNetns returns a descriptor of the network namespace that threads are
// put back into after making a socket in another: that of the first thread
// that entered one, opened once and kept. It is called on a locked thread of
// a fresh goroutine, never on a caller's, which may be locked into another
// namespace on purpose. Unlocked threads all share that namespace unless
// some code left one elsewhere, which breaks the rule this package keeps.
var homeNetns = sync.OnceValues(func() (int, error) {
	fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cannot open the thread's own network namespace: %w", os.NewSyscallError("open", err))
	}
	// Make sure a thread can come back before any leaves: entering the
	// namespace the thread is in changes nothing, and needs what coming
	// back needs. A process in a user namespace that does not own its
	// network namespace (unshare -U alone) could enter one it made, and
	// never return.
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("a thread could not come back to the process's own network namespace: %w "+
			"(it needs CAP_SYS_ADMIN in the user namespace that owns that namespace: run as root, or in a user "+
			"namespace that owns the process's network namespace too, as unshare -Urn makes)", os.NewSyscallError("setns", err))
	}
	return fd, nil
})

// open opens the namespace r names, now, and checks that it is the one r
// wants.
func (r *nsRef) open() (int, error) {
	fd, err := unix.Open(r.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, r.openError(err)
	}
	if r.want == (nsID{}) {
		return fd, nil
	}
	id, err := fdID(fd)
	if err == nil && id == r.want {
		return fd, nil
	}
	unix.Close(fd)
	switch {
	case err != nil:
		return -1, &netnsError{netns: r.spec, err: os.NewSyscallError("fstat", err)}
	case r.monitor == r.spec:
		return -1, &netnsError{netns: r.spec, err: goneError{what: "it now names another namespace than the one the Monitor watches", err: syscall.ENOENT}}
	}
	return -1, &netnsError{netns: r.spec, err: fmt.Errorf("not the namespace of the Binding's Monitor, %s (%w)", r.monitor, syscall.EINVAL)}
}

// fdID returns the identity of the namespace fd refers to.
func fdID(fd int) (nsID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nsID{}, err
	}
	return nsID{dev: st.Dev, ino: st.Ino}, nil
}

// id returns the identity of the namespace r names now.
func (r *nsRef) id() (nsID, error) {
	fd, err := r.open()
	if err != nil {
		return nsID{}, err
	}
	defer unix.Close(fd)
	id, err := fdID(fd)
	if err != nil {
		return nsID{}, &netnsError{netns: r.spec, err: os.NewSyscallError("fstat", err)}
	}
	return id, nil
}

func (r *nsRef) openError(err error) error {
	switch err {
	case unix.ENOENT, unix.ESRCH:
		what := r.path + " does not exist"
		if n := r.name(); n != "" {
			what = "no namespace named " + n + " in " + netnsDir
		}
		return &netnsError{netns: r.spec, err: goneError{what: what, err: err}}
	case unix.EACCES, unix.EPERM:
		return &netnsError{netns: r.spec, err: fmt.Errorf("cannot open %s: %w (the /proc/PID/ns/net of another user's process needs the right to ptrace it)", r.path, err)}
	}
	return &netnsError{netns: r.spec, err: fmt.Errorf("cannot open %s: %w", r.path, os.NewSyscallError("open", err))}
}

func (r *nsRef) enterError(err error) error {
	switch err {
	case unix.EPERM:
		return &netnsError{netns: r.spec, err: fmt.Errorf("cannot enter it: %w (entering a network namespace needs CAP_SYS_ADMIN in the user namespace that owns it and in the caller's: run as root, or from inside a user namespace that owns it)", os.NewSyscallError("setns", err))}
	case unix.EINVAL:
		return &netnsError{netns: r.spec, err: fmt.Errorf("%s is not a network namespace: %w", r.path, os.NewSyscallError("setns", err))}
	}
	return &netnsError{netns: r.spec, err: fmt.Errorf("cannot enter it: %w", os.NewSyscallError("setns", err))}
}

// errOutside is the cause of the error of a socket that would be made
// outside the namespace: a second socket of one call (net retries a dial
// that connected to itself), made after the first one took the thread back
// home, or a socket made on another thread.
var errOutside = errors.New("a socket would be made outside the namespace (a second socket of one call, or one made on another thread)")

// runIn runs do with the calling thread in e's namespace until the binder's
// hook calls e.leave, which it does as soon as net has made the socket. It
// runs do on a goroutine of its own, locked to its thread: a thread that
// cannot be put back home is never unlocked, and dies with that goroutine
// instead of running other code in the wrong namespace. With e nil, it
// calls do.
func runIn[C any](e *nsEntry, do func() (C, error)) (C, error) {
	if e == nil {
		return do()
	}
	var zero C
	fd, err := e.ref.open()
	if err != nil {
		return zero, err
	}
	type result struct {
		c   C
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := homeNetns()
		if err != nil {
			err = &netnsError{netns: e.ref.spec, err: err}
		} else {
			if err = unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
				err = e.ref.enterError(err)
			}
		}
		unix.Close(fd)
		if err != nil {
			runtime.UnlockOSThread() // a failed setns leaves the thread where it was
			done <- result{zero, err}
			return
		}
		e.tid, e.home, e.in = unix.Gettid(), home, true
		c, err := do()
		if e.in {
			// No socket reached the hook: the call failed first, or
			// made none (a lookup).
			if lerr := e.leave(); lerr != nil {
				err = errors.Join(err, lerr)
			}
		}
		// A thread leave could not put back is still locked: it ends
		// with this goroutine.
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}

// leave puts the thread that entered e's namespace back home and unlocks
// it. The binder's hook calls it first thing, once net has made the socket
// in the namespace: binding, the caller's hook, connect and listen work on
// the socket whatever namespace the thread is in.
func (e *nsEntry) leave() error {
	if unix.Gettid() != e.tid || !e.in {
		return &netnsError{netns: e.ref.spec, err: errOutside}
	}
	e.in = false
	if err := unix.Setns(e.home, unix.CLONE_NEWNET); err != nil {
		return &netnsError{netns: e.ref.spec, err: fmt.Errorf("cannot put the thread back in its own namespace: %w", os.NewSyscallError("setns", err))}
	}
	runtime.UnlockOSThread()
	return nil
}

// netnsDialError is dialError for a socket of e's namespace: it looks the
// index up there.
func netnsDialError(r *nsRef, err error, index int) error {
	out, nerr := runIn(&nsEntry{ref: r}, func() (error, error) { return dialError(err, index), nil })
	if nerr != nil {
		return err
	}
	return out
}
