package main

import (
	"strings"
	"testing"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
)

// TestGetUplinks runs get -i with two interfaces: the first serves while
// it is up, the second once the first is set down, each strategy; -v names
// the one taken. Counted on each peer.
func TestGetUplinks(t *testing.T) {
	bin := build(t)
	tp := testnet.New(t)
	w := serveWeb(t, tp)
	tp.WaitReady(t)
	list := tp.A.LinkName + "," + tp.B.LinkName
	url := "http://192.0.2.2:8080/"
	hits := func() [2]int64 { return [2]int64{w.hits["a"].Load(), w.hits["b"].Load()} }

	for _, st := range []string{"fallback", "race"} {
		before := hits()
		r := runBin(t, bin, "", "get", "-v", "-i", list, "--strategy", st, url)
		r.expect(t, "get -i "+list+" --strategy "+st, 0, "a")
		if !strings.Contains(r.stderr, "through "+tp.A.LinkName+" (index ") {
			t.Errorf("%s: -v does not name %s: %q", st, tp.A.LinkName, r.stderr)
		}
		if h := hits(); h[0] != before[0]+1 || h[1] != before[1] {
			t.Errorf("%s: requests served by a, b: %d, %d; want 1, 0", st, h[0]-before[0], h[1]-before[1])
		}
	}

	a, err := netlink.LinkByIndex(tp.A.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetDown(a); err != nil {
		t.Fatal(err)
	}
	for _, st := range []string{"fallback", "race"} {
		before := hits()
		r := runBin(t, bin, "", "get", "-v", "-i", list, "--strategy", st, url)
		r.expect(t, "get with "+tp.A.LinkName+" down, --strategy "+st, 0, "b")
		if !strings.Contains(r.stderr, "through "+tp.B.LinkName+" (index ") {
			t.Errorf("%s: -v does not name %s: %q", st, tp.B.LinkName, r.stderr)
		}
		if h := hits(); h[0] != before[0] || h[1] != before[1]+1 {
			t.Errorf("%s: requests served by a, b: %d, %d; want 0, 1", st, h[0]-before[0], h[1]-before[1])
		}
	}

	// Both down: an outage, as through one interface (exit 4, not 3,
	// which says IFACE is wrong); the error names the list and each.
	b, err := netlink.LinkByIndex(tp.B.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetDown(b); err != nil {
		t.Fatal(err)
	}
	r := runBin(t, bin, "", "get", "-i", list, "--strategy", "Race", url)
	if r.code != exitNetwork || !strings.Contains(r.stderr, "through "+list+":") ||
		!strings.Contains(r.stderr, "[1] pin "+tp.A.LinkName) || !strings.Contains(r.stderr, "[2] pin "+tp.B.LinkName) {
		t.Errorf("both down: exit %d, stderr %q; want %d, naming %s and each", r.code, r.stderr, exitNetwork, list)
	}
	if err := netlink.LinkSetUp(b); err != nil {
		t.Fatal(err)
	}

	if r := runBin(t, bin, "", "get", "-i", list, "--strategy", "fastest", url); r.code != exitUsage || !strings.Contains(r.stderr, "want fallback or race") {
		t.Errorf("bad strategy: exit %d, stderr %q; want %d", r.code, r.stderr, exitUsage)
	}
	if r := runBin(t, bin, "", "get", "-i", "nosuch0,"+tp.B.LinkName, url); r.code != exitInterface || !strings.Contains(r.stderr, "nosuch0") {
		t.Errorf("a missing interface in the list: exit %d, stderr %q; want %d", r.code, r.stderr, exitInterface)
	}
}
