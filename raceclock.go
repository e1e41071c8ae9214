package ifbind

import (
	"container/heap"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// raceClock starts the next attempt of every race that is due.
var raceClock clock

// A clock runs each raceStart added to it once its time has come, from one
// runtime timer for all, set to the earliest. A timer per race would cost
// each dial more than the timer's own work: adding one wakes another
// thread (the runtime breaks the network poller's wait, or starts an idle
// P), so that it can fire it. Here a race whose primary connects in time
// only adds and removes an entry; the runtime timer is set only when an
// entry is earlier than it, and fires about once per delay while races
// keep coming. The entries are spread over shards, each with its lock and
// timer, so that dials on many CPUs do not queue on one lock.
type clock struct {
	once   sync.Once
	shards []clockShard
	last   atomic.Uint32 // the shard pick gave last
}

type clockShard struct {
	mu    sync.Mutex
	t     *time.Timer
	armed time.Time // when t fires; zero when it is not set
	q     startHeap
	_     [64]byte // keeps the shards' locks off each other's cache lines
}

// A raceStart is an entry of a clock: when r is to look for an uplink to
// dial through from Bindings[k] on.
type raceStart struct {
	when  time.Time
	r     raceRunner
	k     int
	shard *clockShard
	at    int // its place in its shard's heap; -1 once started or removed
}

// pick returns a shard of c, each in turn: one for each racer, which its
// entries keep, so that a racer reused on one CPU keeps one warm there.
func (c *clock) pick() *clockShard {
	c.once.Do(func() { c.shards = make([]clockShard, runtime.GOMAXPROCS(0)) })
	return &c.shards[c.last.Add(1)%uint32(len(c.shards))]
}

// A raceRunner is what a raceStart starts: a racer, or a test's stand-in.
type raceRunner interface {
	due()
	runNext(k int)
}

// add starts s.r.runNext(s.k) in a new goroutine after d, unless removed
// first. s.shard is the shard it goes in.
func (c *clock) add(s *raceStart, d time.Duration) {
	sh := s.shard
	s.when = time.Now().Add(d)
	sh.mu.Lock()
	heap.Push(&sh.q, s)
	if sh.armed.IsZero() || s.when.Before(sh.armed) {
		sh.arm(s.when)
	}
	sh.mu.Unlock()
}

// remove takes s out of its clock; it reports false when s started.
func (c *clock) remove(s *raceStart) bool {
	sh := s.shard
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.at < 0 {
		return false
	}
	heap.Remove(&sh.q, s.at) // the timer stays set: it fires for nothing
	return true
}

// arm sets sh's runtime timer to fire at when.
func (sh *clockShard) arm(when time.Time) {
	sh.armed = when
	if sh.t == nil {
		sh.t = time.AfterFunc(time.Until(when), sh.fire)
		return
	}
	sh.t.Reset(time.Until(when))
}

// fire starts every entry due, and sets the timer to the next one.
func (sh *clockShard) fire() {
	var due []*raceStart
	sh.mu.Lock()
	now := time.Now()
	for len(sh.q) > 0 && !sh.q[0].when.After(now) {
		s := heap.Pop(&sh.q).(*raceStart)
		s.r.due()
		due = append(due, s)
	}
	sh.armed = time.Time{}
	if len(sh.q) > 0 {
		sh.arm(sh.q[0].when)
	}
	sh.mu.Unlock()
	for _, s := range due {
		go s.r.runNext(s.k)
	}
}

// A startHeap is a min-heap of entries by when, for container/heap.
type startHeap []*raceStart

func (h startHeap) Len() int           { return len(h) }
func (h startHeap) Less(i, j int) bool { return h[i].when.Before(h[j].when) }
func (h startHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].at, h[j].at = i, j
}
func (h *startHeap) Push(x any) {
	s := x.(*raceStart)
	s.at = len(*h)
	*h = append(*h, s)
}
func (h *startHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.at = -1
	return s
}
