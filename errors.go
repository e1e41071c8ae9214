package ifbind

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"syscall"
)

// ErrUnsupported is what errors.Is finds in the error of every operation the
// platform offers no way to do: a dial or a listen where the operating
// system cannot bind a socket to an interface by index (and a listen on
// windows, which binds only what a socket sends), a link monitor or alias
// lookup outside Linux, and a Multipath TCP connection anywhere (see
// Dialer). ifbind never hands out an unbound socket in its place. errors.Is(err, errors.ErrUnsupported) holds for the same errors.
var ErrUnsupported = fmt.Errorf("ifbind: not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)

// An unsupportedError says what the platform cannot do. It is ErrUnsupported
// for errors.Is, and is always wrapped in an error that has the "ifbind: "
// prefix.
type unsupportedError string

func (e unsupportedError) Error() string {
	return string(e) + " is not supported on " + runtime.GOOS
}

func (unsupportedError) Is(target error) bool {
	return target == ErrUnsupported || target == errors.ErrUnsupported
}

// errNoIndex is the cause of the error returned when a Dialer or
// ListenConfig has no interface to bind to (Index is 0). It unwraps to
// syscall.EINVAL.
var errNoIndex error = noIndexError{}

type noIndexError struct{}

func (noIndexError) Error() string { return "no interface to bind to: Index is 0" }
func (noIndexError) Unwrap() error { return syscall.EINVAL }

// ErrLinkGone is the cause of every binding made through a Binding from
// (*Monitor).Pin once the pinned link has been deleted: the socket is not
// made, even when another link now has the same index or name. It is also
// the cause of the errors of sockets that a (*Monitor).PinClosing binding
// closed when its link went. Test for it with errors.Is; such errors also
// satisfy errors.Is(err, syscall.ENODEV).
var ErrLinkGone = errors.New("ifbind: link gone")

// linkGoneError is the cause a pin reports once its link was deleted. It is
// both ErrLinkGone and ENODEV.
type linkGoneError struct{}

func (linkGoneError) Error() string {
	return "link gone: deleted or moved to another namespace since it was pinned (" + syscall.ENODEV.Error() + ")"
}

func (linkGoneError) Is(target error) bool {
	return target == ErrLinkGone || target == syscall.ENODEV
}

// errListenSendOnly is the cause of every listen where a binding chooses
// only the interface a socket sends through (windows).
var errListenSendOnly error = unsupportedError("listening on one interface (the binding would choose only where replies are sent)")

// errMultipathTCP is the cause of every TCP dial of a Dialer whose
// MultipathTCP reports true, and of every Multipath TCP socket a copy from
// NetDialer or NetListenConfig makes. It is ErrUnsupported for errors.Is.
// No sentinel of its own is exported: the only cause is the caller's
// setting, and the only fix is to change it.
var errMultipathTCP error = multipathTCPError{}

type multipathTCPError struct{}

func (multipathTCPError) Error() string {
	return "multipath TCP cannot be bound to one interface: its path manager opens " +
		"subflows through the endpoints of other interfaces; call SetMultipathTCP(false)"
}

func (multipathTCPError) Is(target error) bool {
	return target == ErrUnsupported || target == errors.ErrUnsupported
}

// errBothSet is the cause of the error of a Dialer or ListenConfig that has
// both Index and Binding set.
var errBothSet = fmt.Errorf("both Index and Binding are set: set one (%w)", syscall.EINVAL)

// A BindError reports that a socket could not be bound to an interface,
// or that a Dialer or ListenConfig has no interface it may bind to. It names
// the interface by index and, when one could be found, by the name the index
// had when the error was made. It unwraps to its cause, so that
// errors.Is(err, syscall.ENODEV), errors.Is(err, ErrLinkGone) and the like
// hold. Dial and listen errors carry it inside a *net.OpError: find it with
// errors.As.
type BindError struct {
	Index int    // the interface's index; 0 when none was chosen
	Name  string // the name it had, "" when unknown or when it named none
	Err   error  // the cause
}

func (e *BindError) Error() string {
	if e.Index == 0 && e.Name == "" {
		return "ifbind: " + e.Err.Error()
	}
	s := "ifbind: interface "
	switch {
	case e.Index == 0:
		// A name that resolved to no index, as a Follow binding has.
		s += e.Name
	default:
		s += strconv.Itoa(e.Index)
		if e.Name != "" {
			s += " (" + e.Name + ")"
		}
	}
	s += ": " + e.Err.Error()
	if errors.Is(e.Err, syscall.EPERM) {
		s += " (binding a socket that is already bound needs CAP_NET_RAW; " +
			"binding a fresh socket without it needs Linux 5.7 or newer)"
	}
	return s
}

func (e *BindError) Unwrap() error { return e.Err }

// invalidIndex returns the error for an index that cannot name an interface,
// or nil for one that can.
func invalidIndex(index int) error {
	switch {
	case index == 0:
		return &BindError{Index: 0, Err: errNoIndex}
	case index < 0:
		return &BindError{Index: index, Err: fmt.Errorf("negative interface index (%w)", syscall.EINVAL)}
	case index > math.MaxInt32:
		// The kernel takes a 32-bit index: a larger one would be cut
		// down to another interface's.
		return &BindError{Index: index, Err: fmt.Errorf("interface index out of range (%w)", syscall.EINVAL)}
	}
	return nil
}
