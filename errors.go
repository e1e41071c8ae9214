package ifbind

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"syscall"
)

// ErrUnsupported is returned, wrapped, by every dial and listen on a platform
// where the operating system offers no way to bind a socket to an interface
// by index. ifbind never hands out an unbound socket in its place.
// errors.Is(ErrUnsupported, errors.ErrUnsupported) holds.
var ErrUnsupported = fmt.Errorf("ifbind: binding a socket to an interface index is not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// errNoIndex is the cause of the error returned when a Dialer or
// ListenConfig has no interface to bind to (Index is 0). It unwraps to
// syscall.EINVAL.
var errNoIndex error = noIndexError{}

type noIndexError struct{}

func (noIndexError) Error() string { return "no interface to bind to: Index is 0" }
func (noIndexError) Unwrap() error { return syscall.EINVAL }

// A bindError reports that a socket could not be bound to an interface. It
// names the interface by index and, when one could be found, by the name the
// index had when the error was made. It unwraps to its cause, so that
// errors.Is(err, syscall.ENODEV) and the like hold.
type bindError struct {
	index int
	name  string // "" when the index named no interface, or was not looked up
	err   error
}

func (e *bindError) Error() string {
	if e.index == 0 {
		return "ifbind: " + e.err.Error()
	}
	s := "ifbind: interface " + strconv.Itoa(e.index)
	if e.name != "" {
		s += " (" + e.name + ")"
	}
	s += ": " + e.err.Error()
	if errors.Is(e.err, syscall.EPERM) {
		s += " (binding a socket that is already bound needs CAP_NET_RAW; " +
			"binding a fresh socket without it needs Linux 5.7 or newer)"
	}
	return s
}

func (e *bindError) Unwrap() error { return e.err }

// invalidIndex returns the error for an index that cannot name an interface,
// or nil for one that can.
func invalidIndex(index int) error {
	switch {
	case index == 0:
		return &bindError{index: 0, err: errNoIndex}
	case index < 0:
		return &bindError{index: index, err: fmt.Errorf("negative interface index (%w)", syscall.EINVAL)}
	}
	return nil
}
