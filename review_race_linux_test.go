package ifbind

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestReviewDialTCPCancelledConnects shows what an attempt started on a
// context already cancelled does (see TestReviewRaceAttemptAfterWin):
// Dialer.DialTCP makes the socket and connects it before net looks at the
// context, so a SYN leaves and, on loopback, the handshake completes. It
// passes: it is the evidence that such an attempt is not free.
func TestReviewDialTCPCancelledConnects(t *testing.T) {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d := &Dialer{Index: lo.Index}
	c, err := d.DialTCP(ctx, "tcp4", netip.AddrPort{}, ln.Addr().(*net.TCPAddr).AddrPort())
	if err == nil {
		c.Close()
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("DialTCP on a cancelled context: %v, want context.Canceled", err)
	}
	ln.SetDeadline(time.Now().Add(2 * time.Second))
	if a, err := ln.Accept(); err == nil {
		a.Close()
		t.Log("a DialTCP on a context cancelled before it started completed a handshake")
	} else {
		t.Errorf("no connection reached the listener (%v): net checks the context first now; TestReviewRaceAttemptAfterWin then costs nothing", err)
	}
}

// TestReviewAbandonSocketStallsConnect shows abandonSocket stalling the
// connect it means to stop. When its shutdown(SHUT_RDWR) lands once the
// socket is ESTABLISHED, it sends a FIN; with a quick peer (here one that
// closes at once, on the Internet any peer that answers a FIN while the
// dialing goroutine waits to run) the socket reaches CLOSE with no error
// before net's connect looks at it. net then reads SO_ERROR 0, takes
// the wakeup for a spurious one (getpeername fails: ENOTCONN), and waits
// again for an event that never comes: until the dial's deadline, and
// without one, forever. Race's primary dials on the caller's context, and
// DialContext waits for it. shutdown(SHUT_RD) disconnects a SYN-SENT
// socket the same way and leaves an established one alone (no FIN), so
// that net's connect returns it and the primary closes it as a loser.
func TestReviewAbandonSocketStallsConnect(t *testing.T) {
	ln := acceptAndClose(t)
	stalled := 0
	for i := 0; i < 400 && stalled < 3; i++ {
		done := make(chan struct{})
		d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			spin := i % 300
			go func() {
				defer close(done)
				for range spin {
					runtime.Gosched()
				}
				abandonSocket(c)
			}()
			return nil
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		c, err := d.DialContext(ctx, "tcp4", ln.Addr().String())
		cancel()
		<-done
		if c != nil {
			c.Close()
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			stalled++
			t.Errorf("dial %d: %v: an abandoned connect ended only by its deadline, want ECONNRESET or a conn", i, err)
		}
	}
}

// TestReviewRaceLoopback races real sockets through three uplinks that
// are all loopback, with a delay of 1µs, from several goroutines: the
// primary's hook records its socket, and winners shut it down
// (abandonSocket) while it connects, is about to, or has connected. A
// race on loopback takes microseconds: a dial that lasts its whole
// Timeout was held by a primary whose connect abandonSocket stalled (see
// TestReviewAbandonSocketStallsConnect); without a Timeout it never
// returns.
func TestReviewRaceLoopback(t *testing.T) {
	ln := acceptAndClose(t)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	const timeout = time.Second
	u := &Uplinks{
		Dialer:        Dialer{Dialer: net.Dialer{Timeout: timeout}},
		Bindings:      []Binding{IndexBinding(lo.Index), IndexBinding(lo.Index), IndexBinding(lo.Index)},
		Strategy:      Race,
		FallbackDelay: time.Microsecond,
	}
	addr := ln.Addr().String()
	var held atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				if held.Load() >= 3 {
					return
				}
				t0 := time.Now()
				c, err := u.DialContext(context.Background(), "tcp4", addr)
				if el := time.Since(t0); el >= timeout {
					held.Add(1)
					t.Errorf("a race on loopback lasted its whole Timeout (%v, err %v): its primary's connect was stalled", el, err)
				}
				if err == nil {
					c.Close()
				}
			}
		}()
	}
	wg.Wait()
}
