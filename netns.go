package ifbind

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrNetnsGone is what errors.Is finds in the error of every dial, listen or
// monitor whose network namespace is gone: its name was deleted (ip netns
// delete), the process whose /proc/PID/ns/net named it exited, the
// descriptor behind /proc/self/fd/N was closed, or the name now names
// another namespace than the one a Monitor watches. Such errors also unwrap
// to the errno the kernel gave (syscall.ENOENT, say).
var ErrNetnsGone = errors.New("ifbind: network namespace gone")

// netnsDir is where named network namespaces live, as ip-netns(8) makes
// them.
const netnsDir = "/run/netns/"

// An nsRef names the network namespace a socket is made in: the Netns of a
// Dialer or ListenConfig, or the namespace a Monitor made by NewMonitorAt
// watches.
type nsRef struct {
	spec string // as given: a name or a path
	path string // spec, or netnsDir+spec for a name

	// want, when not zero, is the identity the namespace must have: that
	// of the namespace a Monitor watches. monitor is that Monitor's spec,
	// for errors; a mismatch means that the name was re-pointed (gone)
	// when monitor == spec, and that the caller mixed two namespaces
	// otherwise.
	want    nsID
	monitor string
}

// An nsID is the identity of a namespace: the device and inode of its nsfs
// file, the same whichever path reaches it.
type nsID struct{ dev, ino uint64 }

// newNsRef parses netns, a name under /run/netns or a path.
func newNsRef(netns string) (*nsRef, error) {
	path := netns
	if !strings.ContainsRune(netns, '/') {
		if netns == "." || netns == ".." {
			return nil, &netnsError{netns: netns, err: fmt.Errorf("not a namespace name (%w)", syscall.EINVAL)}
		}
		path = netnsDir + netns
	}
	return &nsRef{spec: netns, path: path}, nil
}

// name returns the name of a namespace under /run/netns, "" for one given
// by another path.
func (r *nsRef) name() string {
	if n, ok := strings.CutPrefix(r.path, netnsDir); ok && !strings.ContainsRune(n, '/') {
		return n
	}
	return ""
}

// netnsBinding is what a Binding that names links of another namespace
// implements: the namespace its links are in.
type netnsBinding interface {
	netns() *nsRef
}

// netnsOf returns the namespace the sockets of a Dialer or ListenConfig with
// netns and b are made in, nil for the caller's. A Binding that does not
// name its namespace (one from NewMonitor) names links of the caller's: with
// netns set, that is an error.
func netnsOf(netns string, b Binding) (*nsRef, error) {
	var bns *nsRef
	if nb, ok := b.(netnsBinding); ok {
		bns = nb.netns()
	}
	if netns == "" {
		return bns, nil
	}
	if _, index := b.(indexBinding); b != nil && bns == nil && !index {
		// An IndexBinding names an index, read in netns as Index is.
		return nil, &netnsError{netns: netns, err: errBindingHere}
	}
	r, err := newNsRef(netns)
	if err != nil {
		return nil, err
	}
	if bns != nil {
		r.want, r.monitor = bns.want, bns.spec
	}
	return r, nil
}

// errBindingHere is the cause of the error of a Dialer or ListenConfig with
// Netns set and a Binding from a Monitor of the caller's own namespace.
var errBindingHere = fmt.Errorf("the Binding names links of the caller's namespace (its Monitor comes from NewMonitor; use NewMonitorAt) (%w)", syscall.EINVAL)

// errNetnsNetDialer is the cause of every dial and listen through the
// net.Dialer and net.ListenConfig that NetDialer and NetListenConfig return
// when the sockets are meant for another namespace: net would make them in
// the caller's.
var errNetnsNetDialer = fmt.Errorf("a plain net.Dialer or net.ListenConfig cannot make sockets in another network namespace; use the ifbind type's own methods (%w)", syscall.EINVAL)

// A netnsError reports that a socket could not be made in a network
// namespace. It names the namespace as it was given.
type netnsError struct {
	netns string
	err   error
}

func (e *netnsError) Error() string {
	return "ifbind: network namespace " + e.netns + ": " + e.err.Error()
}

func (e *netnsError) Unwrap() error { return e.err }

// goneError is the cause of an error for a namespace that is gone; it is
// ErrNetnsGone and unwraps to the errno beneath.
type goneError struct {
	what string
	err  error
}

func (e goneError) Error() string {
	return "gone: " + e.what + " (" + e.err.Error() + ")"
}

func (e goneError) Is(target error) bool { return target == ErrNetnsGone }
func (e goneError) Unwrap() error        { return e.err }

// An nsEntry is one call made in another namespace: the goroutine that
// makes the call enters the namespace, and the binder's hook takes it back
// out as soon as the socket exists. It is used by that one goroutine.
type nsEntry struct {
	ref  *nsRef
	in   bool // the thread is in ref's namespace, and locked
	tid  int  // the thread that entered
	home int  // a descriptor of the namespace to put it back in
}

// opError wraps err, an error of a call made in another namespace, in a
// *net.OpError unless net already did: errors raised before the socket
// existed (a namespace gone) are not.
func opError(op, network string, err error) error {
	var oe *net.OpError
	if err == nil || errors.As(err, &oe) {
		return err
	}
	return &net.OpError{Op: op, Net: network, Err: err}
}

// listenInNetns runs listen, a listen of bd's, in bd's namespace. Hot
// paths call it only when there is one: the closure costs an allocation.
func listenInNetns[C any](bd binder, network string, listen func() (C, error)) (C, error) {
	if bd.ns == nil {
		return listen()
	}
	c, err := runIn(bd.ns, listen)
	return c, opError("listen", network, err)
}

// inNetns reports whether d's sockets are made in another network
// namespace: Netns is set, or the Binding comes from NewMonitorAt.
func (d *Dialer) inNetns() bool {
	if d.Netns != "" {
		return true
	}
	nb, ok := d.Binding.(netnsBinding)
	return ok && nb.netns() != nil
}

// netnsEtc is where ip-netns(8) keeps the files a named namespace sees in
// place of those of /etc: /etc/netns/NAME/resolv.conf.
const netnsEtc = "/etc/netns"

// resolvConfOf returns the resolv.conf NewResolver reads for d: that of d's
// namespace under etc when the namespace has a name and the file exists, as
// ip netns exec does, else /etc/resolv.conf.
func resolvConfOf(d *Dialer, etc string) string {
	if d == nil {
		return resolvConf
	}
	r, _ := netnsOf(d.Netns, d.Binding)
	if r == nil || r.name() == "" {
		return resolvConf
	}
	p := filepath.Join(etc, r.name(), "resolv.conf")
	if _, err := os.Stat(p); err != nil {
		return resolvConf
	}
	return p
}
