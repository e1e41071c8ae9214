package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind"
)

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		iface string
		pos   []string
		code  int
		stop  bool
	}{
		{[]string{"-i", "eth0", "http://x/"}, "eth0", []string{"http://x/"}, 0, false},
		{[]string{"http://x/", "-i", "eth0"}, "eth0", []string{"http://x/"}, 0, false},
		{[]string{"--i=3", "tcp", "-v", "h:1"}, "3", []string{"tcp", "h:1"}, 0, false},
		{[]string{"-i", "a", "--", "-v", "x"}, "a", []string{"-v", "x"}, 0, false},
		{[]string{"-h"}, "", nil, exitOK, true},
		{[]string{"-bogus"}, "", nil, exitUsage, true},
	} {
		fs := newFlags("t", "", io.Discard, io.Discard)
		iface := fs.String("i", "", "")
		fs.Bool("v", false, "")
		pos, code, stop := fs.parse(tc.args)
		if *iface != tc.iface || !slices.Equal(pos, tc.pos) || code != tc.code || stop != tc.stop {
			t.Errorf("parseFlags(%q) = -i %q, %q, %d, %v; want -i %q, %q, %d, %v",
				tc.args, *iface, pos, code, stop, tc.iface, tc.pos, tc.code, tc.stop)
		}
	}
}

// FuzzParseFlags checks that any command line parses without a panic and
// that the positional arguments come out in their order, none invented.
func FuzzParseFlags(f *testing.F) {
	for _, seed := range []string{
		"-i\x00eth0\x00http://x/",
		"http://x/\x00-i\x00eth0\x00-v",
		"-i=3\x00--\x00-v",
		"-\x00--\x00---\x00-i",
		"-v=false\x00tcp\x00[::1]:80",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		args := strings.Split(line, "\x00")
		fs := newFlags("t", "", io.Discard, io.Discard)
		fs.String("i", "", "")
		fs.Bool("v", false, "")
		pos, _, stop := fs.parse(args)
		if stop {
			return
		}
		rest := args
		for _, p := range pos {
			i := slices.Index(rest, p)
			if i < 0 {
				t.Fatalf("parseFlags(%q) returned %q, not among the arguments in order", args, p)
			}
			rest = rest[i+1:]
		}
	})
}

func TestCombinedShortFlags(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		f, s, S   bool
		out       string
		pos       []string
		wantUsage bool
	}{
		{args: []string{"-fsS", "u"}, f: true, s: true, S: true, pos: []string{"u"}},
		{args: []string{"--fail", "--silent", "u"}, f: true, s: true, pos: []string{"u"}},
		{args: []string{"-sf", "-o", "x", "u"}, f: true, s: true, out: "x", pos: []string{"u"}},
		{args: []string{"-so", "x"}, wantUsage: true}, // o takes a value: not combined
		{args: []string{"--", "-fs"}, pos: []string{"-fs"}},
	} {
		var f, s, S bool
		var out string
		fs := newFlags("t", "", io.Discard, io.Discard)
		fs.BoolVar(&f, "f", false, "")
		fs.aka("f", "fail")
		fs.BoolVar(&s, "s", false, "")
		fs.aka("s", "silent")
		fs.BoolVar(&S, "S", false, "")
		fs.StringVar(&out, "o", "", "")
		pos, code, stop := fs.parse(tc.args)
		if tc.wantUsage {
			if !stop || code != exitUsage {
				t.Errorf("parse(%q) = %d, %v, want a usage error", tc.args, code, stop)
			}
			continue
		}
		if stop || f != tc.f || s != tc.s || S != tc.S || out != tc.out || !slices.Equal(pos, tc.pos) {
			t.Errorf("parse(%q) = -f %v -s %v -S %v -o %q %q (stop %v), want %v %v %v %q %q",
				tc.args, f, s, S, out, pos, stop, tc.f, tc.s, tc.S, tc.out, tc.pos)
		}
	}
}

func TestSeconds(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"2": 2 * time.Second, "0.5": 500 * time.Millisecond, "0": 0, "500ms": 500 * time.Millisecond, "1m30s": 90 * time.Second,
	} {
		var s seconds
		if err := s.Set(in); err != nil || time.Duration(s) != want {
			t.Errorf("seconds %q = %v (%v), want %v", in, time.Duration(s), err, want)
		}
	}
	for _, in := range []string{"-1", "soon", "0x10", "1e400", "-5s", "", "NaN", "inf"} {
		var s seconds
		if err := s.Set(in); err == nil {
			t.Errorf("seconds %q = %v, want an error", in, time.Duration(s))
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"demo", "dial", "get", "links", "listen", "version"}
	for word, want := range map[string]string{
		"lnks": "links", "lisen": "listen", "gte": "get", "verison": "version", "vers": "version",
		"frobnicate": "", "x": "", "dail": "dial",
	} {
		if got := suggest(word, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", word, got, want)
		}
	}
}

func TestCheckPort(t *testing.T) {
	for _, tc := range []struct {
		port   string
		listen bool
		ok     bool
	}{
		{"80", false, true}, {"65535", false, true}, {"http", false, true}, {"0", true, true},
		{"0", false, false}, {"65536", false, false}, {"99999", true, false}, {"80x", false, false},
		{"", false, false}, {"99999999999999999999", false, false}, {"-1", false, false},
	} {
		if msg := checkPort("tcp", tc.port, tc.listen); (msg == "") != tc.ok {
			t.Errorf("checkPort(%q, listen %v) = %q, want ok %v", tc.port, tc.listen, msg, tc.ok)
		}
	}
}

func TestScope(t *testing.T) {
	link := ifbind.Link{Index: 3, Name: "eth1", Altnames: []string{"enp1s0"}}
	for _, tc := range []struct{ host, want, msg string }{
		{"fe80::1", "fe80::1%eth1", ""},
		{"fe80::1%eth1", "fe80::1%eth1", ""},
		{"fe80::1%3", "fe80::1%eth1", ""},
		{"fe80::1%enp1s0", "fe80::1%eth1", ""},
		{"ff02::1", "ff02::1%eth1", ""},
		{"fe80::1%eth2", "fe80::1%eth2", "zone %eth2 is not eth1 (index 3), the interface of -i; drop the zone, which -i sets"},
		{"2001:db8::1%eth1", "2001:db8::1%eth1", "zone %eth1 on an address that is not link-local; drop it"},
		{"192.0.2.1", "192.0.2.1", ""},
		{"example.com", "example.com", ""},
		{"", "", ""},
	} {
		if got, msg := scope(tc.host, link); got != tc.want || msg != tc.msg {
			t.Errorf("scope(%q) = %q, %q; want %q, %q", tc.host, got, msg, tc.want, tc.msg)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: &ifbind.BindError{Index: 3, Name: "eth1", Err: syscall.ENODEV}}, exitInterface},
		{&ifaceError{spec: "eth9", err: syscall.ENODEV}, exitInterface},
		{&net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}, exitLocal},
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, exitNetwork},
		// A syscall's name no longer decides: only a *BindError does.
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("setsockopt", syscall.ENOPROTOOPT)}, exitNetwork},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

func TestMessage(t *testing.T) {
	err := fmt.Errorf("GET http://x/ through eth1 (index 3): %w", &net.OpError{Op: "dial", Net: "tcp",
		Err: &ifbind.BindError{Index: 3, Name: "eth1", Err: syscall.ENODEV}})
	if got, want := message(err), "GET http://x/ through eth1 (index 3): dial tcp: interface 3 (eth1): no such device"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

// FuzzSeconds checks that any time flag parses to a duration of zero or
// more, or to an error, without a panic.
func FuzzSeconds(f *testing.F) {
	for _, seed := range []string{"2", "0.5", "500ms", "1m30s", "-1", "NaN", "1e400", "9223372036.854775807", "0x1p3"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var s seconds
		if err := s.Set(in); err == nil && s < 0 {
			t.Fatalf("seconds %q = %v, want no negative time", in, time.Duration(s))
		}
	})
}

// FuzzAddress checks that any port and host of dial or listen is taken
// or refused without a panic, and that a host taken with a zone has the
// zone of the interface.
func FuzzAddress(f *testing.F) {
	for _, seed := range []string{"fe80::1%eth1", "fe80::1%eth2", "192.0.2.1", "[::1]", "2001:db8::1%3", "http", "80x", "99999"} {
		f.Add(seed, seed)
	}
	link := ifbind.Link{Index: 3, Name: "eth1", Altnames: []string{"enp1s0"}}
	f.Fuzz(func(t *testing.T, host, port string) {
		checkPort("tcp", port, true)
		got, msg := scope(host, link)
		if _, zone, ok := strings.Cut(got, "%"); ok && msg == "" && got != host && zone != "eth1" {
			t.Fatalf("scope(%q) = %q, want the zone eth1", host, got)
		}
	})
}
