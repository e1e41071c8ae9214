package ifbind

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// linkSpecCases reads testdata/linkspecs.txt: a spec, a tab, and what it
// parses to.
func linkSpecCases(tb testing.TB) [][2]string {
	tb.Helper()
	f, err := os.Open("testdata/linkspecs.txt")
	if err != nil {
		tb.Fatalf("failed to open the cases: %v", err)
	}
	defer f.Close()
	var cases [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		spec, want, ok := strings.Cut(line, "\t")
		if !ok {
			tb.Fatalf("bad case line %q", line)
		}
		cases = append(cases, [2]string{spec, want})
	}
	return cases
}

func describeSpec(spec string) string {
	kind, index, mac, err := parseLinkSpec(spec)
	switch {
	case err != nil:
		return "error"
	case kind == specIndex:
		return fmt.Sprintf("index %d", index)
	case kind == specHardwareAddr:
		return "mac " + mac.String()
	}
	return "name"
}

func TestParseLinkSpec(t *testing.T) {
	for _, c := range linkSpecCases(t) {
		if got := describeSpec(c[0]); got != c[1] {
			t.Errorf("parseLinkSpec(%q): got %s, want %s", c[0], got, c[1])
		}
	}
}

func FuzzParseLinkSpec(f *testing.F) {
	for _, c := range linkSpecCases(f) {
		f.Add(c[0])
	}
	f.Fuzz(func(t *testing.T, spec string) {
		kind, index, mac, err := parseLinkSpec(spec)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "ifbind: ") {
				t.Fatalf("parseLinkSpec(%q): error %q lacks the ifbind: prefix", spec, err)
			}
			return
		}
		switch kind {
		case specIndex:
			if index <= 0 || index > 1<<31-1 || !isDigits(spec) {
				t.Fatalf("parseLinkSpec(%q) = index %d", spec, index)
			}
		case specHardwareAddr:
			if n := len(mac); n != 6 && n != 8 && n != 20 {
				t.Fatalf("parseLinkSpec(%q) = hardware address of %d bytes", spec, n)
			}
		case specName:
			if spec == "" || len(spec) > 127 || strings.ContainsAny(spec, "/: \t\n\x00") || isDigits(spec) {
				t.Fatalf("parseLinkSpec(%q) = a name, which the kernel would refuse", spec)
			}
		default:
			t.Fatalf("parseLinkSpec(%q) = kind %d", spec, kind)
		}
	})
}

func TestNotFoundErrorSuggests(t *testing.T) {
	for _, tc := range []struct {
		links []string
		want  string
	}{
		{nil, "ifbind: no link named eth9"},
		{[]string{"eth0"}, "ifbind: no link named eth9; did you mean eth0?"},
		{[]string{"eth0", "eth1"}, "ifbind: no link named eth9; did you mean eth0 or eth1?"},
		{[]string{"eth0", "eth1", "eth2"}, "ifbind: no link named eth9; did you mean eth0, eth1 or eth2?"},
	} {
		s := &snapshot{linkTable: newLinkTable(len(tc.links))}
		for i, name := range tc.links {
			s.set(&linkEntry{link: Link{Index: i + 1, Name: name}})
		}
		_, err := lookup(s, linkKey{kind: specName, name: "eth9"})
		if err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %q", err, tc.want)
		}
	}
}

func TestLinkStringNoName(t *testing.T) {
	for _, tc := range []struct {
		l    Link
		want string
	}{
		{Link{Index: 2, Name: "eth0"}, "eth0 (index 2)"},
		{Link{Index: 2}, "index 2"},
		{Link{}, "no link"},
		{Link{Name: "wg0"}, "wg0"},
	} {
		if got := tc.l.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.l, got, tc.want)
		}
	}
}

// countingSource is a snapshot that counts how often it is listed.
type countingSource struct {
	*snapshot
	listed int
}

func (c *countingSource) links() ([]Link, error) {
	c.listed++
	return c.snapshot.links()
}

func (c *countingSource) later() linkSource { return c }

// TestMissListsLazily checks that a miss lists no link until its text is
// read, then lists them once however often the text is read, and that the
// error is ENODEV either way.
func TestMissListsLazily(t *testing.T) {
	s := &snapshot{linkTable: newLinkTable(2)}
	for i, name := range []string{"eth0", "ens1"} {
		s.set(&linkEntry{link: Link{Index: i + 1, Name: name}})
	}
	src := &countingSource{snapshot: s}
	_, err := lookup(src, linkKey{kind: specName, name: "eth1"})
	if !errors.Is(err, syscall.ENODEV) {
		t.Fatalf("lookup of a missing name: got %v, want ENODEV", err)
	}
	if src.listed != 0 {
		t.Fatalf("a miss listed the links %d times before its text was read, want 0", src.listed)
	}
	const want = "ifbind: no link named eth1; did you mean eth0 or ens1?"
	var wg sync.WaitGroup
	for range 3 { // at once, as goroutines that share an error may
		wg.Go(func() {
			if got := err.Error(); got != want {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
	wg.Wait()
	if src.listed != 1 {
		t.Errorf("reading the text 3 times listed the links %d times, want 1", src.listed)
	}
}

// TestLookupErrors checks the errors every lookup shares, on a snapshot
// made by hand: what the Monitor's methods and the package's functions
// return alike.
func TestLookupErrors(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	s := &snapshot{linkTable: newLinkTable(3)}
	s.set(&linkEntry{link: Link{Index: 1, Name: "lo"}})
	s.set(&linkEntry{link: Link{Index: 2, Name: "eth0", HardwareAddr: mac, Alias: "uplink"}})
	s.set(&linkEntry{link: Link{Index: 3, Name: "eth0.7", HardwareAddr: mac}})
	for _, tc := range []struct {
		key  linkKey
		want error
		msg  string
	}{
		{linkKey{kind: specAlias}, syscall.EINVAL, "ifbind: empty link alias (invalid argument)"},
		{linkKey{kind: specAlias, name: "downlink"}, syscall.ENODEV, `ifbind: no link with alias "downlink"`},
		{linkKey{kind: specHardwareAddr, mac: mac}, syscall.EINVAL,
			"ifbind: more than one link with hardware address 02:00:00:00:00:01: [eth0 (index 2) eth0.7 (index 3)]; name one by name or index (invalid argument)"},
		{linkKey{kind: specIndex, index: 9}, syscall.ENODEV, "ifbind: no link with index 9"},
		{linkKey{kind: specName, name: "eth1"}, syscall.ENODEV, "ifbind: no link named eth1; did you mean eth0?"},
	} {
		_, err := lookup(s, tc.key)
		if !errors.Is(err, tc.want) || fmt.Sprint(err) != tc.msg {
			t.Errorf("lookup %v: got %v, want %q (%v)", tc.key, err, tc.msg, tc.want)
		}
	}
	if l, err := lookup(s, linkKey{kind: specAlias, name: "uplink"}); err != nil || l.Index != 2 {
		t.Errorf("lookup of alias uplink: got %v, %v, want eth0 (index 2)", l, err)
	}
}
