package ifbind

import (
	"container/heap"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The review of Race's concurrency (commit d2c5ad1): the tests of the
// defects it found failed there; the others are stress tests of what
// holds.

// A reviewRunner stands in for a racer in one clock entry, and counts what
// the clock did to it.
type reviewRunner struct {
	due, ran atomic.Int32
	done     chan struct{}
}

func (r *reviewRunner) runNext(int) {
	r.ran.Add(1)
	close(r.done)
}

type reviewDue struct{ *reviewRunner }

func (r reviewDue) due()          { r.reviewRunner.due.Add(1) }
func (r reviewDue) runNext(k int) { r.reviewRunner.runNext(k) }

// TestReviewClockStress adds and removes entries from many goroutines,
// with delays of a few microseconds, so that adds, Resets and fires
// interleave: every entry must start exactly once (due before remove can
// report it started) or be removed, and none may be left in a heap.
func TestReviewClockStress(t *testing.T) {
	var c clock
	const workers, per = 8, 400
	var wg sync.WaitGroup
	var lost, twice, early atomic.Int32
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			sh := c.pick()
			for range per {
				rr := &reviewRunner{done: make(chan struct{})}
				st := &raceStart{r: reviewDue{rr}, k: 1, shard: sh}
				c.add(st, time.Duration(1+rng.IntN(30))*time.Microsecond)
				for range rng.IntN(50) {
					runtime.Gosched()
				}
				if c.remove(st) {
					if rr.due.Load() != 0 {
						early.Add(1)
					}
					continue
				}
				if rr.due.Load() != 1 {
					early.Add(1) // remove saw it gone before due
				}
				select {
				case <-rr.done:
				case <-time.After(10 * time.Second):
					lost.Add(1)
				}
				if rr.ran.Load() != 1 {
					twice.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := lost.Load(); n != 0 {
		t.Errorf("%d entries found started never ran", n)
	}
	if n := twice.Load(); n != 0 {
		t.Errorf("%d entries ran more than once", n)
	}
	if n := early.Load(); n != 0 {
		t.Errorf("%d entries: due and remove disagree", n)
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		if len(sh.q) != 0 {
			t.Errorf("shard %d: %d entries left, want none", i, len(sh.q))
		}
		sh.mu.Unlock()
	}
}

// TestReviewClockPickWraps checks pick once its counter passes 1<<31: on
// a 32-bit platform int(uint32) is then negative, and so is the index
// (run with GOARCH=386; on 64-bit platforms it passes).
func TestReviewClockPickWraps(t *testing.T) {
	var c clock
	c.pick()
	c.last.Store(math.MaxInt32)
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("pick after 1<<31 racers: panic %v", p)
		}
	}()
	for range 4 {
		c.pick()
	}
}

// A reviewConn is a fake connection of a fake attempt; it counts itself
// open until closed.
type reviewConn struct {
	net.Conn
	open   *atomic.Int32
	closed atomic.Bool
}

func (c *reviewConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.open.Add(-1)
	}
	return nil
}

// reviewDial is a fake attempt's body for dialUplinks: it connects,
// fails, or waits for its context, as rng decides, and counts itself.
type reviewDial struct {
	active, open atomic.Int32
	tried        [5]atomic.Int32
	lateStarts   atomic.Int32 // attempts made on a context already done
	blackhole    bool         // attempts but the primary may wait for ctx
	mu           sync.Mutex
	rng          *rand.Rand
}

func (f *reviewDial) do(ctx context.Context, d *Dialer, _, _ string) (net.Conn, error) {
	f.active.Add(1)
	defer f.active.Add(-1)
	i := int(d.Binding.(indexBinding))
	f.tried[i].Add(1)
	// As net does before it connects: the Control hook, then the context.
	// A context done before the hook means the race was won before it
	// (the winner cancels after it won): the hook must refuse the socket.
	done := ctx.Err() != nil
	if h := d.ControlContext; h != nil {
		if err := h(ctx, "tcp4", "192.0.2.1:80", reviewRawConn{}); err != nil {
			return nil, err
		}
	}
	if done {
		f.lateStarts.Add(1)
		return nil, ctx.Err()
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	f.mu.Lock()
	mode, spin := f.rng.IntN(4), f.rng.IntN(200)
	f.mu.Unlock()
	for range spin {
		runtime.Gosched()
	}
	switch {
	case mode == 0:
		return nil, errors.New("refused")
	case mode == 1 && f.blackhole && i != 1:
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f.open.Add(1)
	return &reviewConn{open: &f.open}, nil
}

// TestReviewRaceStress runs many Race dials at once with a delay of 1µs
// through fake attempts (no socket: the primary's hook never runs, so
// only contexts abandon). Each dial must return with no attempt running,
// every loser closed, and each uplink tried at most once.
func TestReviewRaceStress(t *testing.T) {
	for _, addr := range []string{"uplinks.example:80", "192.0.2.1:80"} {
		u := &Uplinks{
			Bindings:      []Binding{IndexBinding(1), IndexBinding(2), IndexBinding(3), IndexBinding(4)},
			Strategy:      Race,
			FallbackDelay: time.Microsecond,
		}
		var wg sync.WaitGroup
		var bad atomic.Int32
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range 150 {
					f := &reviewDial{rng: rand.New(rand.NewPCG(uint64(w), uint64(k))), blackhole: addr[0] == 'u'}
					// Attempts that wait for their context end with the dial's.
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
					c, err := dialUplinks(ctx, u, "tcp", addr, needOf("tcp", addr), f.do)
					cancel()
					if n := f.active.Load(); n != 0 {
						t.Errorf("%s: %d attempts still running after the dial returned", addr, n)
						bad.Add(1)
					}
					want := int32(0)
					if err == nil {
						want = 1
						c.Close()
					} else if ue := (*UplinksError)(nil); !errors.As(err, &ue) {
						t.Errorf("%s: dial error %v, want an *UplinksError", addr, err)
					}
					if n := f.open.Load(); n != want && n != 0 {
						t.Errorf("%s: %d conns open after the dial returned (err %v)", addr, n, err)
						bad.Add(1)
					}
					for i := range f.tried {
						if n := f.tried[i].Load(); n > 1 {
							t.Errorf("%s: uplink %d tried %d times", addr, i, n)
							bad.Add(1)
						}
					}
					if bad.Load() > 5 {
						return
					}
				}
			}()
		}
		wg.Wait()
	}
}

// TestReviewRaceAttemptAfterWin checks that an attempt never starts once
// the race is won. run checks over() before it adds the next entry and
// makes the attempt's Dialer; a win in between makes attemptContext
// return a context already cancelled, and dial hands it to r.do all the
// same. net.Dialer.DialContext checks its context before each socket, but
// DialTCP (Uplinks.DialTCP) does not: it makes the socket, binds it and
// sends a SYN through the losing uplink before it looks at the context
// (see TestReviewDialTCPCancelledConnects).
func TestReviewRaceAttemptAfterWin(t *testing.T) {
	u := &Uplinks{
		Bindings:      []Binding{IndexBinding(1), IndexBinding(2), IndexBinding(3), IndexBinding(4)},
		Strategy:      Race,
		FallbackDelay: time.Microsecond,
	}
	var late atomic.Int32
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 300 {
				f := &reviewDial{rng: rand.New(rand.NewPCG(uint64(w), uint64(k)+7))}
				c, err := dialUplinks(context.Background(), u, "tcp", "192.0.2.1:80", needOf("tcp", "192.0.2.1:80"), f.do)
				if err == nil {
					c.Close()
				}
				late.Add(f.lateStarts.Load())
			}
		}()
	}
	wg.Wait()
	if n := late.Load(); n != 0 {
		t.Errorf("%d attempts started on a context the race's winner had already cancelled, want 0", n)
	}
}

// TestReviewRacePanicPoolsLiveRacer checks a dial whose primary panics
// (a caller's Control hook, or t.Fatal in one, which is runtime.Goexit),
// when the caller recovers, as net/http's server does per request.
// dialUplinks puts the racer back in its pool by a defer, so it is pooled
// with the primary's raceStart still in raceClock; putRacer then zeroes
// that entry in place (r nil, when zero, at 0). The next fire of the
// shard pops it and calls s.r.due() on a nil raceRunner: a panic on the
// timer's goroutine, which kills the process. The test takes the entry
// out before that can happen.
func TestReviewRacePanicPoolsLiveRacer(t *testing.T) {
	u := &Uplinks{
		Bindings:      []Binding{IndexBinding(1), IndexBinding(2)},
		Strategy:      Race,
		FallbackDelay: time.Hour, // the entry stays until the test looks
	}
	boom := func(context.Context, *Dialer, string, string) (net.Conn, error) {
		panic("a caller's hook panicked")
	}
	func() {
		defer func() { recover() }()
		dialUplinks(context.Background(), u, "tcp", "192.0.2.1:80", needOf("tcp", "192.0.2.1:80"), boom)
	}()
	stale := 0
	raceClock.pick() // the shards exist
	for i := range raceClock.shards {
		sh := &raceClock.shards[i]
		sh.mu.Lock()
		for j := 0; j < len(sh.q); {
			s := sh.q[j]
			if r, ok := s.r.(*racer); s.r == nil || ok && r.u == nil {
				heap.Remove(&sh.q, j)
				stale++
				continue
			}
			j++
		}
		heap.Init(&sh.q)
		sh.mu.Unlock()
	}
	if stale != 0 {
		t.Errorf("after a panic in the primary's dial: %d entries of a pooled racer left in raceClock, want 0", stale)
	}
}

// reviewRawConn is the RawConn of a fake attempt's socket: no descriptor
// (-1), so that a winner's shutdown of it fails with EBADF.
type reviewRawConn struct{}

func (reviewRawConn) Control(f func(fd uintptr)) error  { f(^uintptr(0)); return nil }
func (reviewRawConn) Read(func(fd uintptr) bool) error  { return nil }
func (reviewRawConn) Write(func(fd uintptr) bool) error { return nil }
