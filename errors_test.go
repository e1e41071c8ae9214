package ifbind

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestBindErrorMessages(t *testing.T) {
	for _, tc := range []struct {
		err  *BindError
		want string
		is   error
	}{
		{invalidIndex(0).(*BindError), "ifbind: no interface to bind to: Index is 0", syscall.EINVAL},
		{invalidIndex(-3).(*BindError), "ifbind: interface -3: negative interface index (invalid argument)", syscall.EINVAL},
		{&BindError{Index: 7, Err: syscall.ENODEV}, "ifbind: interface 7: no such device", syscall.ENODEV},
		{&BindError{Index: 7, Name: "wan0", Err: os.NewSyscallError("setsockopt", syscall.EPERM)},
			"ifbind: interface 7 (wan0): setsockopt: operation not permitted (binding a socket that is already bound needs CAP_NET_RAW; binding a fresh socket without it needs Linux 5.7 or newer)",
			syscall.EPERM},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
		if !errors.Is(tc.err, tc.is) {
			t.Errorf("%v: errors.Is(err, %v) is false, want true", tc.err, tc.is)
		}
	}
	if invalidIndex(1) != nil {
		t.Errorf("invalidIndex(1) = %v, want nil", invalidIndex(1))
	}
}

func TestErrUnsupported(t *testing.T) {
	if !errors.Is(ErrUnsupported, errors.ErrUnsupported) {
		t.Errorf("errors.Is(ErrUnsupported, errors.ErrUnsupported) is false")
	}
	if !strings.HasPrefix(ErrUnsupported.Error(), "ifbind: ") {
		t.Errorf("got %q, want the ifbind: prefix", ErrUnsupported)
	}
}

// TestUnsetIndexCreatesNoSocket needs no privilege: a Dialer or ListenConfig
// without an interface fails before any socket exists, with one *net.OpError.
func TestUnsetIndexCreatesNoSocket(t *testing.T) {
	ctx := context.Background()
	var d Dialer
	ran := false
	d.Control = func(string, string, syscall.RawConn) error { ran = true; return nil }
	var lc ListenConfig
	lc.Control = d.Control
	for name, err := range map[string]error{
		"Dial":         errOf(d.Dial("tcp", "127.0.0.1:1")),
		"DialContext":  errOf(d.DialContext(ctx, "udp", "127.0.0.1:1")),
		"Listen":       errOf(lc.Listen(ctx, "tcp", "127.0.0.1:0")),
		"ListenPacket": errOf(lc.ListenPacket(ctx, "udp", "127.0.0.1:0")),
	} {
		var oe *net.OpError
		if !errors.As(err, &oe) || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s: got %v, want a *net.OpError around EINVAL", name, err)
			continue
		}
		var inner *net.OpError
		if errors.As(oe.Err, &inner) {
			t.Errorf("%s: got %v, double-wrapped", name, err)
		}
	}
	if ran {
		t.Errorf("the caller's Control ran, want no socket made")
	}
}

func errOf[T any](_ T, err error) error { return err }

// TestNetDialerIsACopy checks that NetDialer and NetListenConfig leave the
// originals alone, so that a Dialer may be reused and changed.
func TestNetDialerIsACopy(t *testing.T) {
	d := &Dialer{Index: 3}
	nd := d.NetDialer()
	if d.ControlContext != nil || d.Control != nil {
		t.Errorf("NetDialer changed the Dialer's hooks")
	}
	if nd.ControlContext == nil || nd.Control != nil {
		t.Errorf("NetDialer: got ControlContext set %v, Control set %v; want only ControlContext", nd.ControlContext != nil, nd.Control != nil)
	}
	lc := &ListenConfig{Index: 3}
	if nlc := lc.NetListenConfig(); nlc.Control == nil || lc.Control != nil {
		t.Errorf("NetListenConfig: got copy's Control set %v, original's set %v", nlc.Control != nil, lc.Control != nil)
	}
}

func TestLinkString(t *testing.T) {
	if got, want := (Link{Index: 2, Name: "eth0"}).String(), "eth0 (index 2)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestUnsupportedError(t *testing.T) {
	err := &BindError{Index: 3, Err: unsupportedError("binding a socket to an interface")}
	for _, target := range []error{ErrUnsupported, errors.ErrUnsupported} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(%v, %v) is false, want true", err, target)
		}
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "ifbind: interface 3: binding a socket to an interface is not supported on ") || strings.Count(msg, "ifbind:") != 1 {
		t.Errorf("got %q, want one ifbind: prefix and the interface", msg)
	}
}

// TestIndexOutOfRange: the kernel takes a 32-bit index, so a larger one
// would be cut down to another interface's. It is refused before any
// socket exists.
func TestIndexOutOfRange(t *testing.T) {
	if strconv.IntSize < 64 {
		t.Skip("int is 32 bits: no index out of range")
	}
	wide := int64(1)<<32 + 1
	big := int(wide) // would be cut to 1, the loopback
	ctx := context.Background()
	d := &Dialer{Index: big}
	lc := &ListenConfig{Index: big}
	for name, err := range map[string]error{
		"Dial":         errOf(d.Dial("udp", "127.0.0.1:9")),
		"NetDialer":    errOf(d.NetDialer().Dial("udp", "127.0.0.1:9")),
		"ListenPacket": errOf(lc.ListenPacket(ctx, "udp", "127.0.0.1:0")),
		"BindRawConn":  BindRawConn(nil, big),
	} {
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s with index %d: got %v, want EINVAL", name, big, err)
		}
	}
}

// TestCopiesPassUnixThrough: NetDialer and NetListenConfig of a Dialer or
// ListenConfig without an interface still serve Unix domain sockets, as the
// Dialer and ListenConfig do.
func TestCopiesPassUnixThrough(t *testing.T) {
	path := t.TempDir() + "/s"
	ln, err := (&ListenConfig{}).NetListenConfig().Listen(context.Background(), "unix", path)
	if err != nil {
		t.Fatalf("NetListenConfig: failed to listen on %s: %v", path, err)
	}
	defer ln.Close()
	c, err := (&Dialer{}).NetDialer().Dial("unix", path)
	if err != nil {
		t.Fatalf("NetDialer: failed to dial %s: %v", path, err)
	}
	c.Close()
	if _, err := (&Dialer{}).NetDialer().Dial("tcp", "127.0.0.1:9"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("NetDialer without an interface, tcp: got %v, want EINVAL", err)
	}
}
