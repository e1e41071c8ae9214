package ifbind

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// testIndex is the interface index the parser tests scope link-local
// nameservers to; no interface needs to have it.
const testIndex = 3

// nameserverCases returns the cases of testdata/nameservers.txt: a
// nameserver as a user writes it, and what parseNameserver makes of it.
func nameserverCases(t testing.TB) [][2]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "nameservers.txt"))
	if err != nil {
		t.Fatalf("failed to read the nameserver cases: %v", err)
	}
	var cases [][2]string
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(line, "#") {
			continue
		}
		in, want, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("nameserver case %q has no tab", line)
		}
		cases = append(cases, [2]string{in, want})
	}
	return cases
}

func TestParseNameserver(t *testing.T) {
	for _, c := range nameserverCases(t) {
		in, want := c[0], c[1]
		got, err := parseNameserver(in, testIndex)
		switch want {
		case "error":
			if err == nil || errors.Is(err, ErrLoopbackNameserver) {
				t.Errorf("parseNameserver(%q) = %v, %v; want an error that is not ErrLoopbackNameserver", in, got, err)
			}
		case "loopback":
			if !errors.Is(err, ErrLoopbackNameserver) || !strings.Contains(err.Error(), "a loopback address") {
				t.Errorf("parseNameserver(%q) = %v, %v; want ErrLoopbackNameserver saying it is a loopback address", in, got, err)
			}
		case "unspecified":
			if !errors.Is(err, ErrLoopbackNameserver) || !strings.Contains(err.Error(), "the unspecified address") || strings.Contains(err.Error(), "a loopback address") {
				t.Errorf("parseNameserver(%q) = %v, %v; want ErrLoopbackNameserver saying it is the unspecified address", in, got, err)
			}
		case "broadcast":
			if err == nil || errors.Is(err, ErrLoopbackNameserver) || !strings.Contains(err.Error(), "broadcast") {
				t.Errorf("parseNameserver(%q) = %v, %v; want an error saying it is a broadcast address", in, got, err)
			}
		default:
			if err != nil || got.String() != want {
				t.Errorf("parseNameserver(%q) = %v, %v; want %s", in, got, err, want)
			}
		}
	}
}

func FuzzParseNameserver(f *testing.F) {
	for _, c := range nameserverCases(f) {
		f.Add(c[0])
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := parseNameserver(s, testIndex)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("parseNameserver(%q): empty error", s)
			}
			return
		}
		a := ap.Addr()
		switch {
		case !ap.IsValid() || ap.Port() == 0:
			t.Fatalf("parseNameserver(%q) = %v: invalid address or port 0", s, ap)
		case a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() || a.Is4In6() || a == ipv4Broadcast:
			t.Fatalf("parseNameserver(%q) = %v: loopback, unspecified, multicast or mapped", s, ap)
		case a.Zone() != "" && (!a.IsLinkLocalUnicast() || a.Zone() != "3"):
			t.Fatalf("parseNameserver(%q) = %v: a zone other than the interface's", s, ap)
		}
		again, err := parseNameserver(ap.String(), testIndex)
		if err != nil || again != ap {
			t.Fatalf("parseNameserver(%q) = %v, but parseNameserver(%q) = %v, %v", s, ap, ap.String(), again, err)
		}
	})
}

// resolvConfs are the expected nameservers of the files of
// testdata/resolv.conf.
var resolvConfs = map[string][]string{
	"debian.conf":                {"192.0.2.53", "2001:db8::53"},
	"systemd-resolved.conf":      {"127.0.0.53"},
	"messy.conf":                 {"192.0.2.1", "192.0.2.2", "fe80::1%eth0"},
	"crlf-no-final-newline.conf": {"192.0.2.7", "192.0.2.8"},
	"empty.conf":                 nil,
}

func TestReadNameservers(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "resolv.conf", "*"))
	if err != nil || len(files) != len(resolvConfs) {
		t.Fatalf("got files %v, %v; want the %d of resolvConfs", files, err, len(resolvConfs))
	}
	for _, file := range files {
		want, ok := resolvConfs[filepath.Base(file)]
		if !ok {
			t.Errorf("%s: not in resolvConfs", file)
			continue
		}
		got, err := ReadNameservers(file)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ReadNameservers(%s) = %q, %v; want %q", file, got, err, want)
		}
	}
	_, err = ReadNameservers(filepath.Join("testdata", "resolv.conf", "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadNameservers of a missing file: got %v, want fs.ErrNotExist", err)
	}
}

func FuzzParseResolvConf(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "resolv.conf", "*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := parseResolvConf(b)
		if len(got) > maxNameservers {
			t.Fatalf("got %d nameservers, want at most %d", len(got), maxNameservers)
		}
		for _, ns := range got {
			if _, err := netip.ParseAddr(ns); err != nil {
				t.Fatalf("nameserver %q: %v", ns, err)
			}
			if !strings.Contains(string(b), ns) {
				t.Fatalf("nameserver %q is not in the input", ns)
			}
		}
	})
}

func TestNewResolverErrors(t *testing.T) {
	d := &Dialer{Index: 1}
	for ns, what := range map[string]string{
		"127.0.0.53": "a loopback address", "::1": "a loopback address", "[::1]:53": "a loopback address",
		"::ffff:127.0.0.1": "a loopback address",
		"0.0.0.0":          "the unspecified address", "::ffff:0.0.0.0": "the unspecified address", "[::]:53": "the unspecified address",
	} {
		r, err := NewResolver(d, "192.0.2.53", ns)
		if r != nil || !errors.Is(err, ErrLoopbackNameserver) {
			t.Errorf("NewResolver(%q): got %v, %v; want ErrLoopbackNameserver", ns, r, err)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "ifbind: interface 1") || !strings.Contains(msg, `"`+ns+`"`) || !strings.Contains(msg, what) {
			t.Errorf("NewResolver(%q): error %q does not name the interface, the nameserver and say it is %s", ns, msg, what)
		}
	}
	for _, ns := range []string{"255.255.255.255", "[::ffff:255.255.255.255]:53", "224.0.0.251"} {
		r, err := NewResolver(d, ns)
		if r != nil || err == nil || errors.Is(err, ErrLoopbackNameserver) || !strings.Contains(err.Error(), "names no one nameserver") {
			t.Errorf("NewResolver(%q): got %v, %v; want an error saying the address names no one nameserver", ns, r, err)
		}
	}
	// The default of systemd-resolved.
	conf := filepath.Join("testdata", "resolv.conf", "systemd-resolved.conf")
	_, err := newResolver(d, conf, nil)
	if !errors.Is(err, ErrLoopbackNameserver) || !strings.Contains(err.Error(), "127.0.0.53") || !strings.Contains(err.Error(), conf) {
		t.Errorf("newResolver from %s: got %v, want ErrLoopbackNameserver naming 127.0.0.53 and the file", conf, err)
	}
	conf = filepath.Join("testdata", "resolv.conf", "empty.conf")
	if _, err := newResolver(d, conf, nil); !errors.Is(err, ErrLoopbackNameserver) || !strings.Contains(err.Error(), "names no nameserver") {
		t.Errorf("newResolver from %s: got %v, want an error saying it names no nameserver", conf, err)
	}
	conf = filepath.Join("testdata", "resolv.conf", "debian.conf")
	if r, err := newResolver(d, conf, nil); err != nil || r == nil || !r.PreferGo || r.Dial == nil {
		t.Errorf("newResolver from %s: got %v, %v; want a Go resolver with a Dial", conf, r, err)
	}
	if _, err := NewResolver(d, "dns.example"); err == nil || !strings.Contains(err.Error(), "not an IP address") {
		t.Errorf(`NewResolver("dns.example"): got %v, want an error saying it is not an IP address`, err)
	}
	for _, d := range []*Dialer{nil, {}, {Index: -1}} {
		if r, err := NewResolver(d, "192.0.2.53"); r != nil || !errors.Is(err, syscall.EINVAL) {
			t.Errorf("NewResolver(%v): got %v, %v; want EINVAL", d, r, err)
		}
	}
}
