package ifbind

import (
	"errors"
	"net/netip"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestNeedOf checks which family of source address a dial needs, from its
// network and address.
func TestNeedOf(t *testing.T) {
	for _, tc := range []struct {
		network, address string
		want             need
	}{
		{"tcp", "192.0.2.2:80", need{v4: true, dst: netip.MustParseAddr("192.0.2.2")}},
		{"tcp", "[::ffff:192.0.2.2]:80", need{v4: true, dst: netip.MustParseAddr("192.0.2.2")}},
		{"tcp", "[2001:db8::2]:80", need{v6: true, dst: netip.MustParseAddr("2001:db8::2")}},
		{"tcp", "[fe80::2%eth0]:80", need{v6: true, linkLocal: true, dst: netip.MustParseAddr("fe80::2")}},
		{"tcp", "example.com:80", need{v4: true, v6: true}},
		{"tcp4", "example.com:80", need{v4: true}},
		{"udp6", "example.com:53", need{v6: true}},
		{"ip4:icmp", "192.0.2.2", need{v4: true, dst: netip.MustParseAddr("192.0.2.2")}},
		{"ip6:ipv6-icmp", "example.com", need{v6: true}},
		{"tcp", "not an address", need{v4: true, v6: true}},
	} {
		if got := needOf(tc.network, tc.address); got != tc.want {
			t.Errorf("needOf(%q, %q) = %+v, want %+v", tc.network, tc.address, got, tc.want)
		}
	}
}

// TestIndexBinding checks what an IndexBinding decides without a Monitor.
func TestIndexBinding(t *testing.T) {
	if got := IndexBinding(7).String(); got != "index 7" {
		t.Errorf("String() = %q, want %q", got, "index 7")
	}
	tg, err := IndexBinding(7).target(sockInfo{network: "tcp4"})
	if err != nil || tg.index != 7 || tg.check {
		t.Errorf("target of a dial = %+v, %v; want index 7, unchecked", tg, err)
	}
	if tg, _ := IndexBinding(7).target(sockInfo{network: "udp4", listen: true}); !tg.check {
		t.Errorf("target of a listen = %+v; want checked, as Index is", tg)
	}
	bad := []int{0, -1}
	if strconv.IntSize == 64 {
		wide := int64(1)<<32 + 1
		bad = append(bad, int(wide))
	}
	for _, index := range bad {
		if _, err := IndexBinding(index).target(sockInfo{network: "tcp"}); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("IndexBinding(%d): got %v, want EINVAL", index, err)
		}
		if _, err := usable(IndexBinding(index), need{v4: true}); !errors.Is(err, syscall.EINVAL) {
			t.Errorf("usable(IndexBinding(%d)): got %v, want EINVAL", index, err)
		}
	}
	if l, err := usable(IndexBinding(7), need{v4: true}); err != nil || l.Index != 7 {
		t.Errorf("usable(IndexBinding(7)) = %v, %v; want index 7, usable (no table to say otherwise)", l, err)
	}
	if got := Race.String() + " " + Fallback.String() + " " + Strategy(9).String(); got != "race fallback Strategy(9)" {
		t.Errorf("strategies print as %q", got)
	}
}

func TestNilUplinks(t *testing.T) {
	var u *Uplinks
	c, err := u.DialContext(t.Context(), "tcp", "192.0.2.1:80")
	var be *BindError
	if c != nil || !errors.As(err, &be) || !errors.Is(err, syscall.EINVAL) {
		t.Errorf("(*Uplinks)(nil).DialContext: got %v, %v, want a *BindError, EINVAL", c, err)
	}
}

// starts records the raceStarts a clock started, in place of a racer.
type starts chan int

func (s starts) due()          {}
func (s starts) runNext(k int) { s <- k }

// TestRaceClock checks the one timer of every race: each entry starts
// once, however the entries are ordered, an entry removed in time never
// starts, and remove reports false for one that started.
func TestRaceClock(t *testing.T) {
	var c clock
	s := make(starts, 8)
	sh := c.pick()
	entry := func(k int, d time.Duration) *raceStart {
		st := &raceStart{r: s, k: k, shard: sh}
		c.add(st, d)
		return st
	}
	late := entry(9, time.Hour)
	gone := entry(8, time.Millisecond) // the earliest, removed
	if !c.remove(gone) {
		t.Fatal("remove of an entry not due: false, want true")
	}
	var sts []*raceStart
	for k, d := range []time.Duration{30, 10, 20} {
		sts = append(sts, entry(k, d*time.Millisecond))
	}
	got := map[int]bool{}
	for range 3 {
		got[<-s] = true
	}
	if len(got) != 3 || !got[0] || !got[1] || !got[2] {
		t.Errorf("started %v, want 0, 1 and 2", got)
	}
	for k, st := range sts {
		if c.remove(st) {
			t.Errorf("remove of entry %d after it started: true, want false", k)
		}
	}
	if !c.remove(late) {
		t.Error("remove of the entry due in an hour: false, want true")
	}
	select {
	case k := <-s:
		t.Errorf("entry %d started, want none more", k)
	case <-time.After(20 * time.Millisecond):
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.q) != 0 {
		t.Errorf("%d entries left, want none", len(sh.q))
	}
}
