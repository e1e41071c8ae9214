package ifbind

import (
	"bufio"
	"fmt"
	"os"
	"strings"
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
		close []string
		want  string
	}{
		{nil, "no link named eth9"},
		{[]string{"eth0"}, "no link named eth9; did you mean eth0?"},
		{[]string{"eth0", "eth1"}, "no link named eth9; did you mean eth0 or eth1?"},
		{[]string{"eth0", "eth1", "eth2"}, "no link named eth9; did you mean eth0, eth1 or eth2?"},
	} {
		e := &notFoundError{what: "named eth9", close: tc.close}
		if got := e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
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
	} {
		if got := tc.l.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.l, got, tc.want)
		}
	}
}
