package main

import (
	"bytes"
	"golang.org/x/sys/unix"
	"os/exec"
	"strconv"
	"syscall"

	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ifbind/ifbind/internal/testnet"
)

// A web is what the peers of a Topo serve for get: HTTP on :8080, HTTPS on
// :8443 (a certificate for example.com) and DNS on :53, where example.com
// is 192.0.2.2. Each answers with its side's name.
type web struct {
	hits   map[string]*atomic.Int64 // HTTP(S) requests, by side
	dns    map[string]*atomic.Int64 // DNS queries, by side
	cacert string                   // PEM file of the HTTPS servers' certificate
}

// bigSize is the size of /big.
const bigSize = 1 << 20

// quiet drops the servers' logs of the handshakes the tests make fail.
var quiet = log.New(io.Discard, "", 0)

func serveWeb(t *testing.T, tp *testnet.Topo) *web {
	t.Helper()
	w := &web{hits: map[string]*atomic.Int64{}, dns: map[string]*atomic.Int64{}}
	for _, s := range tp.Sides() {
		hits, queries := &atomic.Int64{}, &atomic.Int64{}
		w.hits[s.Name], w.dns[s.Name] = hits, queries
		h := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			if r.URL.Path == "/big" {
				rw.Header().Set("Content-Length", strconv.Itoa(bigSize))
				rw.Write(bytes.Repeat([]byte(s.Name), bigSize))
				return
			}
			if r.URL.Path == "/missing" {
				http.Error(rw, "not found on "+s.Name, http.StatusNotFound)
				return
			}
			fmt.Fprint(rw, s.Name)
		})
		var ln, tln net.Listener
		var pc net.PacketConn
		err := s.Peer.Do(func() error {
			var err error
			if ln, err = net.Listen("tcp", ":8080"); err != nil {
				return err
			}
			if tln, err = net.Listen("tcp", ":8443"); err != nil {
				return err
			}
			pc, err = net.ListenPacket("udp", ":53")
			return err
		})
		if err != nil {
			t.Fatalf("failed to listen in peer %s: %v", s.Name, err)
		}
		plain := &httptest.Server{Listener: ln, Config: &http.Server{Handler: h, ErrorLog: quiet}}
		plain.Start()
		t.Cleanup(plain.Close)
		secure := &httptest.Server{Listener: tln, Config: &http.Server{Handler: h, ErrorLog: quiet}}
		secure.StartTLS()
		t.Cleanup(secure.Close)
		t.Cleanup(func() { pc.Close() })
		go serveDNS(pc, queries)
		if w.cacert == "" {
			w.cacert = filepath.Join(t.TempDir(), "ca.pem")
			pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: secure.Certificate().Raw})
			if err := os.WriteFile(w.cacert, pemBytes, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return w
}

// serveDNS answers A queries for example.com with 192.0.2.2, and every
// other query with no answer, counting them in n.
func serveDNS(pc net.PacketConn, n *atomic.Int64) {
	buf := make([]byte, 512)
	for {
		size, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		q := buf[:size]
		if len(q) < 12 {
			continue
		}
		n.Add(1)
		// The question: labels, then type and class.
		var labels []string
		i := 12
		for i < len(q) && q[i] != 0 {
			l := int(q[i])
			if i+1+l > len(q) {
				break
			}
			labels = append(labels, string(q[i+1:i+1+l]))
			i += 1 + l
		}
		if i+5 > len(q) {
			continue
		}
		qtype := binary.BigEndian.Uint16(q[i+1:])
		question := q[12 : i+5]
		answer := strings.EqualFold(strings.Join(labels, "."), "example.com") && qtype == 1
		resp := append([]byte{}, q[:2]...)          // ID
		resp = append(resp, 0x81, 0x80, 0, 1, 0, 0) // response, RD, RA; one question
		if answer {
			resp[7] = 1
		}
		resp = append(resp, 0, 0, 0, 0) // no authority, no additional
		resp = append(resp, question...)
		if answer {
			resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 2)
		}
		pc.WriteTo(resp, from)
	}
}

func TestGet(t *testing.T) {
	bin := build(t)
	tp := testnet.New(t)
	w := serveWeb(t, tp)
	ways := specs(t, tp.A.Index, "ifbind-alt-a")

	// only asserts that side got the last n requests and the other none.
	only := func(t *testing.T, side string, before map[string]int64, n int64) {
		t.Helper()
		for name, h := range w.hits {
			want := before[name]
			if name == side {
				want += n
			}
			if got := h.Load(); got != want {
				t.Errorf("peer %s served %d requests, want %d", name, got-before[name], want-before[name])
			}
		}
	}
	counts := func() map[string]int64 {
		return map[string]int64{"a": w.hits["a"].Load(), "b": w.hits["b"].Load()}
	}

	t.Run("http each side", func(t *testing.T) {
		for _, s := range tp.Sides() {
			before := counts()
			runBin(t, bin, "", "get", "-i", s.LinkName, "http://192.0.2.2:8080/").expect(t, "get via "+s.LinkName, 0, s.Name)
			runBin(t, bin, "", "get", "-i", s.LinkName, "http://[2001:db8::2]:8080/").expect(t, "get v6 via "+s.LinkName, 0, s.Name)
			only(t, s.Name, before, 2)
		}
	})

	t.Run("iface forms", func(t *testing.T) {
		for way, spec := range ways {
			before := counts()
			runBin(t, bin, "", "get", "-i", spec, "http://192.0.2.2:8080/").expect(t, "get -i "+way+" "+spec, 0, "a")
			only(t, "a", before, 1)
		}
	})

	t.Run("https", func(t *testing.T) {
		before := counts()
		runBin(t, bin, "", "get", "-i", "ifb-b", "-k", "https://192.0.2.2:8443/").expect(t, "get -k", 0, "b")
		only(t, "b", before, 1)
		r := runBin(t, bin, "", "get", "-i", "ifb-b", "https://192.0.2.2:8443/")
		if r.code != exitNetwork || !strings.Contains(r.stderr, "certificate") {
			t.Errorf("get https unverifiable: exit %d, stderr %q, want %d and a certificate error", r.code, r.stderr, exitNetwork)
		}
	})

	t.Run("dns through the interface", func(t *testing.T) {
		before := counts()
		dnsA, dnsB := w.dns["a"].Load(), w.dns["b"].Load()
		r := runBin(t, bin, "", "get", "-v", "-i", "ifb-b", "--nameserver", "192.0.2.2", "--cacert", w.cacert, "https://example.com:8443/")
		r.expect(t, "get https by name", 0, "b")
		only(t, "b", before, 1)
		if a, b := w.dns["a"].Load()-dnsA, w.dns["b"].Load()-dnsB; a != 0 || b == 0 {
			t.Errorf("DNS queries: peer a got %d, peer b %d, want none and some", a, b)
		}
		if !strings.Contains(r.stderr, "-> 192.0.2.2:8443 through ifb-b") {
			t.Errorf("get -v: stderr %q, want the connection through ifb-b", r.stderr)
		}
	})

	t.Run("loopback nameserver", func(t *testing.T) {
		// No packet sent through an interface reaches the loopback: the
		// command refuses before any query or connection.
		before := counts()
		dnsA, dnsB := w.dns["a"].Load(), w.dns["b"].Load()
		for _, ns := range []string{"127.0.0.53", "127.0.0.1:53", "::1", "[::1]:5353", "0.0.0.0"} {
			r := runBin(t, bin, "", "get", "-i", "ifb-b", "--nameserver", ns, "http://example.com:8080/")
			if r.code != exitUsage || r.stdout != "" || !strings.Contains(r.stderr, "loopback") ||
				!strings.Contains(r.stderr, "--nameserver") {
				t.Errorf("get --nameserver %s: exit %d, stdout %q, stderr %q, want %d and an error naming the loopback and --nameserver",
					ns, r.code, r.stdout, r.stderr, exitUsage)
			}
		}
		r := runBin(t, bin, "", "get", "-i", "ifb-b", "--nameserver", "dns.example", "http://example.com:8080/")
		if r.code != exitUsage || !strings.Contains(r.stderr, "not an IP address") {
			t.Errorf("get --nameserver dns.example: exit %d, stderr %q, want %d and not an IP address", r.code, r.stderr, exitUsage)
		}
		// systemd-resolved's stub in /etc/resolv.conf, with --dns-via-iface.
		r = runWithResolvConf(t, bin, "nameserver 127.0.0.53\n", "get", "-i", "ifb-b", "--dns-via-iface", "http://example.com:8080/")
		if r.code != exitUsage || !strings.Contains(r.stderr, `"127.0.0.53" (from /etc/resolv.conf)`) ||
			!strings.Contains(r.stderr, "--nameserver ADDR") {
			t.Errorf("get --dns-via-iface, resolv.conf on 127.0.0.53: exit %d, stderr %q, want %d, the nameserver and the hint to use --nameserver",
				r.code, r.stderr, exitUsage)
		}
		only(t, "b", before, 0)
		if a, b := w.dns["a"].Load()-dnsA, w.dns["b"].Load()-dnsB; a != 0 || b != 0 {
			t.Errorf("DNS queries: peer a got %d, peer b %d, want none", a, b)
		}
	})

	t.Run("dns through the interface from resolv.conf", func(t *testing.T) {
		before := counts()
		dnsA, dnsB := w.dns["a"].Load(), w.dns["b"].Load()
		r := runWithResolvConf(t, bin, "nameserver 192.0.2.2\n", "get", "-i", "ifb-a", "--dns-via-iface", "http://example.com:8080/")
		r.expect(t, "get --dns-via-iface by name", 0, "a")
		only(t, "a", before, 1)
		if a, b := w.dns["a"].Load()-dnsA, w.dns["b"].Load()-dnsB; a == 0 || b != 0 {
			t.Errorf("DNS queries: peer a got %d, peer b %d, want some and none", a, b)
		}
	})

	t.Run("output file", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "body")
		r := runBin(t, bin, "", "get", "-i", "ifb-a", "-o", out, "http://192.0.2.2:8080/")
		r.expect(t, "get -o", 0, "")
		if r.stderr != "" {
			t.Errorf("get -o with stderr not a terminal: stderr %q, want nothing (no progress bar)", r.stderr)
		}
		if got, err := os.ReadFile(out); err != nil || string(got) != "a" {
			t.Errorf("get -o wrote %q (%v), want %q", got, err, "a")
		}
		r = runBin(t, bin, "", "get", "-i", "ifb-a", "-o", filepath.Join(out, "not-a-dir", "x"), "http://192.0.2.2:8080/")
		if r.code != exitLocal {
			t.Errorf("get -o into a missing directory: exit %d, want %d; stderr %s", r.code, exitLocal, r.stderr)
		}
	})

	t.Run("progress on a terminal", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "big")
		stderr, code := runOnTerminal(t, bin, "get", "-i", "ifb-b", "-o", out, "http://192.0.2.2:8080/big")
		if code != 0 || !strings.Contains(stderr, "100% [") || !strings.Contains(stderr, "1.0 MiB / 1.0 MiB") {
			t.Errorf("get -o with a terminal: exit %d, stderr %q, want 0 and a full progress bar", code, stderr)
		}
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, bytes.Repeat([]byte("b"), bigSize)) {
			t.Errorf("get -o wrote %d bytes (%v), want %d bytes of b", len(got), err, bigSize)
		}
		stderr, code = runOnTerminal(t, bin, "get", "-i", "ifb-b", "http://192.0.2.2:8080/")
		if code != 0 || stderr != "" {
			t.Errorf("get to stdout with a terminal: exit %d, stderr %q, want 0 and no progress bar", code, stderr)
		}
	})

	t.Run("errors", func(t *testing.T) {
		r := runBin(t, bin, "", "get", "-i", "ifb-a", "http://192.0.2.2:8080/missing")
		if r.code != exitHTTP || r.stdout != "not found on a\n" || !strings.Contains(r.stderr, "404") {
			t.Errorf("get 404: exit %d, stdout %q, stderr %q, want %d, the body, and 404", r.code, r.stdout, r.stderr, exitHTTP)
		}
		r = runBin(t, bin, "", "get", "-i", "ifb-a", "http://192.0.2.2:9/")
		if r.code != exitNetwork || !strings.Contains(r.stderr, "connection refused") {
			t.Errorf("get from a closed port: exit %d, stderr %q, want %d and connection refused", r.code, r.stderr, exitNetwork)
		}
		r = runBin(t, bin, "", "get", "-i", "nosuch0", "http://192.0.2.2:8080/")
		if r.code != exitInterface || !strings.Contains(r.stderr, `no interface "nosuch0"`) ||
			!strings.Contains(r.stderr, "ifb-a") || !strings.Contains(r.stderr, "ifb-b") || !strings.Contains(r.stderr, "ifbind-alt-a") {
			t.Errorf("get -i nosuch0: exit %d, stderr %q, want %d and a list of the links", r.code, r.stderr, exitInterface)
		}
		for _, args := range [][]string{
			{"get", "http://192.0.2.2:8080/"},
			{"get", "-i", "ifb-a"},
			{"get", "-i", "ifb-a", "ftp://192.0.2.2/"},
			{"get", "-bogus", "-i", "ifb-a", "http://192.0.2.2:8080/"},
		} {
			if r := runBin(t, bin, "", args...); r.code != exitUsage {
				t.Errorf("%v: exit %d, want %d; stderr %s", args, r.code, exitUsage, r.stderr)
			}
		}
		// Flags after the URL work too.
		runBin(t, bin, "", "get", "http://192.0.2.2:8080/", "-i", "ifb-b").expect(t, "get URL -i", 0, "b")
	})
}

// runWithResolvConf runs bin with args, as runBin does, in a mount
// namespace of its own where /etc/resolv.conf reads conf.
func runWithResolvConf(t *testing.T, bin, conf string, args ...string) result {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		msg := fmt.Sprintf("needs unshare, to give the command its own /etc/resolv.conf: %v; install util-linux", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	file := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	script := `mount --bind "$0" /etc/resolv.conf && exec "$@"`
	return runBin(t, unshare, "", append([]string{"-m", "sh", "-c", script, file, bin}, args...)...)
}

// runOnTerminal runs bin with its stderr on a new pseudo-terminal, and
// returns what it wrote there and its exit code.
func runOnTerminal(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("failed to open a pseudo-terminal: %v", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("failed to unlock the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("failed to name the pseudo-terminal: %v", err)
	}
	slave, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("failed to open the pseudo-terminal's other end: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env()
	cmd.Stderr = slave
	read := make(chan string)
	go func() {
		b, _ := io.ReadAll(master) // EIO once every copy of slave is closed
		read <- string(b)
	}()
	err = cmd.Run()
	slave.Close()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("failed to run ifbind %v: %v", args, err)
	}
	return <-read, cmd.ProcessState.ExitCode()
}
