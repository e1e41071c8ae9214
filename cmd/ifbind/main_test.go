package main

import (
	"io"
	"slices"
	"strings"
	"testing"
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
