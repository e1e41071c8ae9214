package main

import (
	"encoding/json"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
)

func TestLinks(t *testing.T) {
	bin := build(t)
	tp := testnet.New(t)
	addAltName(t, tp.A.Index, "ifbind-alt-a")
	la, err := netlink.LinkByIndex(tp.A.Index)
	if err != nil {
		t.Fatalf("failed to find ifb-a: %v", err)
	}

	t.Run("json", func(t *testing.T) {
		r := runBin(t, bin, "", "links", "--json")
		if r.code != 0 {
			t.Fatalf("links --json: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		var links []linkInfo
		if err := json.Unmarshal([]byte(r.stdout), &links); err != nil {
			t.Fatalf("failed to parse links --json: %v\n%s", err, r.stdout)
		}
		var names []string
		for _, l := range links {
			names = append(names, l.Name)
		}
		if want := []string{"lo", "ifb-a", "ifb-b"}; !slices.Equal(names, want) {
			t.Errorf("links: got %v, want %v", names, want)
		}
		i := slices.IndexFunc(links, func(l linkInfo) bool { return l.Name == "ifb-a" })
		if i < 0 {
			t.Fatal("ifb-a not listed")
		}
		a := links[i]
		if a.Index != tp.A.Index || string(a.MAC) != la.Attrs().HardwareAddr.String() || a.Type != "veth" {
			t.Errorf("ifb-a: got index %d, MAC %s, type %s, want %d, %s, veth", a.Index, a.MAC, a.Type, tp.A.Index, la.Attrs().HardwareAddr)
		}
		if !slices.Contains(a.AltNames, "ifbind-alt-a") {
			t.Errorf("ifb-a altnames %v, want ifbind-alt-a among them", a.AltNames)
		}
		for _, want := range []string{"192.0.2.1/24", "2001:db8::1/64"} {
			if !slices.Contains(a.Addresses, want) {
				t.Errorf("ifb-a addresses %v, want %s among them", a.Addresses, want)
			}
		}
		if a.State != "up" {
			t.Errorf("ifb-a state %q, want up", a.State)
		}
		// lo has no MAC: null, as the table's "-", not a value.
		var raw []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || len(raw) != len(links) {
			t.Fatalf("failed to parse links --json: %v", err)
		}
		for i, l := range links {
			if mac, ok := raw[i]["mac"]; l.Name == "lo" && (!ok || mac != nil) || l.Name != "lo" && mac != string(l.MAC) {
				t.Errorf("%s: JSON mac %#v, want null for lo and the MAC for the others", l.Name, mac)
			}
		}
	})

	t.Run("table", func(t *testing.T) {
		r := runBin(t, bin, "", "links")
		if r.code != 0 {
			t.Fatalf("links: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("links: got %d lines, want a header and 3 links:\n%s", len(lines), r.stdout)
		}
		col := strings.Index(lines[0], "NAME")
		if !strings.HasPrefix(lines[0], "INDEX") || col < 0 {
			t.Fatalf("links: header %q, want INDEX then NAME", lines[0])
		}
		var rowA, rowLo string
		for _, l := range lines[1:] {
			if strings.HasPrefix(l[col:], "lo ") {
				rowLo = l
			}
			if l[col-1] != ' ' || l[col] == ' ' {
				t.Errorf("links: row %q is not aligned with the header's NAME column %d", l, col)
			}
			if strings.HasPrefix(l[col:], "ifb-a ") {
				rowA = l
			}
		}
		if f := strings.Fields(rowLo); len(f) < 4 || f[3] != "-" {
			t.Errorf("links: row of lo %q, want - for its MAC", rowLo)
		}
		f := strings.Fields(rowA)
		if len(f) < 5 || f[0] != strconv.Itoa(tp.A.Index) || f[2] != "up" || f[3] != la.Attrs().HardwareAddr.String() ||
			!strings.Contains(rowA, "192.0.2.1/24") || !strings.HasSuffix(rowA, "ifbind-alt-a") {
			t.Errorf("links: row of ifb-a %q, want index %d, up, its MAC, 192.0.2.1/24 and the altname", rowA, tp.A.Index)
		}
	})

	t.Run("help", func(t *testing.T) {
		r := runBin(t, bin, "", "links", "-h")
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: ifbind links") || !strings.Contains(r.stdout, "-json") {
			t.Errorf("links -h: exit %d, stdout %q, want 0 and the usage with -json", r.code, r.stdout)
		}
		r = runBin(t, bin, "", "links", "extra")
		if r.code != exitUsage {
			t.Errorf("links extra: exit %d, want %d", r.code, exitUsage)
		}
	})
}

func TestUsage(t *testing.T) {
	bin := build(t)
	r := runBin(t, bin, "", "--help")
	for _, want := range []string{"Usage:", "ifbind demo", "Exit codes:", "130", "Examples:"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("--help: exit %d, want 0 and %q in:\n%s", r.code, want, r.stdout)
		}
	}
	r = runBin(t, bin, "")
	if r.code != exitUsage || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("no command: exit %d, stderr %q, want %d and the usage", r.code, r.stderr, exitUsage)
	}
	// Unknown commands and flags: one line, with a suggestion when one
	// is close, never the whole help.
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"frobnicate"}, `ifbind: unknown command "frobnicate"; the commands are demo, dial, get, links, listen, route, version (ifbind -h)`},
		{[]string{"lnks"}, `ifbind: unknown command "lnks"; did you mean "links"?`},
		{[]string{"lisen"}, `ifbind: unknown command "lisen"; did you mean "listen"?`},
		{[]string{"get", "--tiemout", "2"}, `ifbind get: unknown flag --tiemout; did you mean --timeout? (ifbind get -h for help)`},
		{[]string{"get", "--conect-timeout", "2"}, `ifbind get: unknown flag --conect-timeout; did you mean --connect-timeout? (ifbind get -h for help)`},
		{[]string{"get", "-bogus"}, `ifbind get: unknown flag --bogus (ifbind get -h for help)`},
		{[]string{"listen", "--inteface", "x"}, `ifbind listen: unknown flag --inteface; did you mean --interface? (ifbind listen -h for help)`},
		{[]string{"get", "--max-time", "soon"}, `ifbind get: invalid value "soon" for flag --max-time: want seconds (2, 0.5) or a duration (500ms, 1m) (ifbind get -h for help)`},
		{[]string{"get", "-i"}, `ifbind get: flag needs an argument: -i (ifbind get -h for help)`},
		// A single letter as typed (not --m), and no suggestion of an
		// unrelated letter: only the other case of the same one.
		{[]string{"get", "-m", "-1"}, `ifbind get: invalid value "-1" for flag -m: want a number of seconds from 0 (ifbind get -h for help)`},
		{[]string{"get", "--max-time", "-1"}, `ifbind get: invalid value "-1" for flag --max-time: want a number of seconds from 0 (ifbind get -h for help)`},
		{[]string{"get", "-q"}, `ifbind get: unknown flag -q (ifbind get -h for help)`},
		{[]string{"get", "-x", "PUT"}, `ifbind get: unknown flag -x; did you mean -X? (ifbind get -h for help)`},
		{[]string{"dial", "-z"}, `ifbind dial: unknown flag -z (ifbind dial -h for help)`},
		{[]string{"dial", "--verbos"}, `ifbind dial: unknown flag --verbos; did you mean --verbose? (ifbind dial -h for help)`},
		// ifbind help COMMAND: an unknown one is a usage error, one line.
		{[]string{"help", "nosuch"}, `ifbind: unknown command "nosuch"; the commands are demo, dial, get, links, listen, route, version (ifbind -h)`},
		{[]string{"help", "lsten"}, `ifbind: unknown command "lsten"; did you mean "listen"?`},
	} {
		r := runBin(t, bin, "", tc.args...)
		if r.code != exitUsage || r.stderr != tc.stderr+"\n" {
			t.Errorf("%q: exit %d, stderr %q, want %d and %q", tc.args, r.code, r.stderr, exitUsage, tc.stderr)
		}
	}
	// Usage errors that used to be network errors: a malformed URL or
	// address, a port out of range, an unknown service name.
	for _, args := range [][]string{
		{"get", "-i", "lo", "http://"},
		{"get", "-i", "lo", "http:///path"},
		{"get", "-i", "lo", "http://192.0.2.2:99999/"},
		{"get", "-i", "lo", "http://192.0.2.2:0/"},
		{"get", "-i", "lo", "http://192.0.2.2:80x/"},
		{"get", "-i", "lo", "--max-redirs", "-1", "http://192.0.2.2/"},
		{"dial", "-i", "lo", "tcp", "192.0.2.2:99999"},
		{"dial", "-i", "lo", "tcp", "192.0.2.2:0"},
		{"dial", "-i", "lo", "tcp", "192.0.2.2:80x"},
		{"dial", "-i", "lo", "udp", "192.0.2.2"},
		{"listen", "-i", "lo", "tcp", ":99999"},
		{"listen", "-i", "lo", "tcp", "99999"},
		{"listen", "-i", "lo", "udp", ":80x"},
	} {
		if r := runBin(t, bin, "", args...); r.code != exitUsage || strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
			t.Errorf("%q: exit %d, stderr %q, want %d and one line", args, r.code, r.stderr, exitUsage)
		}
	}
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := runBin(t, bin, "", args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "ifbind ") || !strings.Contains(r.stdout, " "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH+"\n") {
			t.Errorf("%q: exit %d, stdout %q, want 0 and the version with %s", args, r.code, r.stdout, runtime.Version())
		}
	}
	if r := runBin(t, bin, "", "help", "get"); r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: ifbind get") {
		t.Errorf("help get: exit %d, stdout %q, want 0 and the usage of get", r.code, r.stdout)
	}
	if r := runBin(t, bin, "", "help"); r.code != 0 || !strings.Contains(r.stdout, "Exit codes:") {
		t.Errorf("help: exit %d, stdout %q, want 0 and the usage", r.code, r.stdout)
	}
	// version has no flags: no empty "Flags:" header.
	if r := runBin(t, bin, "", "version", "-h"); r.code != 0 || !strings.HasPrefix(r.stdout, "Usage: ifbind version") || strings.Contains(r.stdout, "Flags:") {
		t.Errorf("version -h: exit %d, stdout %q, want 0, the usage and no Flags: header", r.code, r.stdout)
	}
	// dial and listen take --verbose, as get does.
	for _, cmd := range []string{"dial", "listen"} {
		if r := runBin(t, bin, "", cmd, "-h"); !strings.Contains(r.stdout, "  -v, --verbose\n") {
			t.Errorf("%s -h: want -v, --verbose in:\n%s", cmd, r.stdout)
		}
	}
	for _, cmd := range []string{"get", "dial", "listen", "demo", "links"} {
		r := runBin(t, bin, "", cmd, "-h")
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: ifbind "+cmd) || cmd != "links" && !strings.Contains(r.stdout, "Exit codes:") {
			t.Errorf("%s -h: exit %d, want 0 and usage with exit codes in:\n%s", cmd, r.code, r.stdout)
		}
	}
}
