package race

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
)

func TestMain(m *testing.M) { testnet.Main(m) }

func TestRunCountsAndCleansUp(t *testing.T) {
	testnet.Require(t)
	before := testnet.LinkNames(t, nil)
	const n = 3000
	var setup Setup
	res, err := Run(context.Background(), Config{Sockets: n, Prefix: "rt", Started: func(s Setup) { setup = s }})
	if err != nil {
		t.Fatalf("failed to race: %v", err)
	}
	t.Logf("%+v", res)
	if setup.Indexes[0] == 0 || setup.Indexes[1] == 0 || setup.Links != [2]string{"rt-a", "rt-b"} {
		t.Errorf("Started got %+v, want two links rt-a, rt-b with indexes", setup)
	}
	for _, tl := range []Tally{res.ByName, res.ByIndex} {
		if got := tl.Sockets + tl.Failed; got != n {
			t.Errorf("%s: %d sockets + %d failed = %d, want %d", tl.Method, tl.Sockets, tl.Failed, got, n)
		}
	}
	if res.ByIndex.Wrong != 0 || res.ByIndex.Failed != 0 {
		t.Errorf("ifbind: %d wrong, %d failed, want 0 and 0", res.ByIndex.Wrong, res.ByIndex.Failed)
	}
	if res.Renames == 0 {
		t.Errorf("no renames happened")
	}
	if res.Interrupted {
		t.Errorf("Interrupted set on a race that ran to its socket count")
	}
	if after := testnet.LinkNames(t, nil); !slices.Equal(after, before) {
		t.Errorf("links after the race %v, want %v as before", after, before)
	}
}

func TestRunStopsOnContext(t *testing.T) {
	testnet.Require(t)
	before := testnet.LinkNames(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	res, err := Run(ctx, Config{Started: func(Setup) {
		go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	}})
	if err != nil {
		t.Fatalf("failed to race: %v", err)
	}
	if !res.Interrupted {
		t.Errorf("Interrupted not set after ctx was canceled")
	}
	if after := testnet.LinkNames(t, nil); !slices.Equal(after, before) {
		t.Errorf("links after the race %v, want %v as before", after, before)
	}
}

func TestRunRefusesTakenNames(t *testing.T) {
	testnet.Require(t)
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "tk-a"}, PeerName: "tk-x"}); err != nil {
		t.Fatalf("failed to add veth: %v", err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName("tk-a"); err == nil {
			netlink.LinkDel(l)
		}
	})
	before := testnet.LinkNames(t, nil)
	_, err := Run(context.Background(), Config{Prefix: "tk", Sockets: 1})
	if err == nil {
		t.Fatalf("Run with a taken name succeeded, want an error")
	}
	if after := testnet.LinkNames(t, nil); !slices.Equal(after, before) {
		t.Errorf("links after the failed race %v, want %v as before", after, before)
	}
}

func BenchmarkRace(b *testing.B) {
	testnet.Require(b)
	var total Result
	for b.Loop() {
		res, err := Run(context.Background(), Config{Sockets: 1000})
		if err != nil {
			b.Fatal(err)
		}
		total.ByName.Sockets += res.ByName.Sockets
		total.ByName.Wrong += res.ByName.Wrong
	}
	b.ReportMetric(total.ByName.WrongPer100k(), "wrong/100k-by-name")
}
