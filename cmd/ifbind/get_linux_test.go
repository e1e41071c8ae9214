package main

import (
	"bytes"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

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
			switch path := r.URL.Path; {
			case path == "/echo":
				// The method, the headers the test sets, and the body.
				b, _ := io.ReadAll(r.Body)
				fmt.Fprintf(rw, "%s ua=%q x=%q ct=%q %s", r.Method, r.UserAgent(), r.Header.Values("X-Test"), r.Header.Get("Content-Type"), b)
				return
			case path == "/slow":
				// 1,000 bytes, then nothing until the client goes.
				rw.Write(bytes.Repeat([]byte("s"), 1000))
				rw.(http.Flusher).Flush()
				<-r.Context().Done()
				return
			case path == "/binary":
				rw.Header().Set("Content-Type", "application/octet-stream")
				rw.Write([]byte("\x7fELF\x00\x01" + s.Name))
				return
			case strings.HasPrefix(path, "/redirect/"):
				n, _ := strconv.Atoi(strings.TrimPrefix(path, "/redirect/"))
				if n > 0 {
					http.Redirect(rw, r, "/redirect/"+strconv.Itoa(n-1), http.StatusFound)
					return
				}
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

	t.Run("several nameservers", func(t *testing.T) {
		// 192.0.2.2:5353 refuses (no one listens there): the next one
		// answers. Alone it fails, so the answer came from the second.
		// (Two attempts, the default, for a query to try two servers.)
		const conf = "nameserver 192.0.2.2\noptions timeout:1 attempts:2\n"
		for _, args := range [][]string{
			{"--nameserver", "192.0.2.2:5353", "--nameserver", "192.0.2.2"},
			{"--nameserver", "192.0.2.2:5353,192.0.2.2"},
			{"--nameserver", "192.0.2.2:5353, 192.0.2.2"},
		} {
			dnsA, dnsB := w.dns["a"].Load(), w.dns["b"].Load()
			r := runWithResolvConf(t, bin, conf, append(append([]string{"get", "-i", "ifb-b"}, args...), "http://example.com:8080/")...)
			r.expect(t, fmt.Sprintf("get %q", args), 0, "b")
			if a, b := w.dns["a"].Load()-dnsA, w.dns["b"].Load()-dnsB; a != 0 || b == 0 {
				t.Errorf("get %q: DNS queries: peer a got %d, peer b %d, want none and some", args, a, b)
			}
		}
		r := runWithResolvConf(t, bin, conf, "get", "-i", "ifb-b", "--nameserver", "192.0.2.2:5353", "http://example.com:8080/")
		if r.code != exitNetwork || !strings.Contains(r.stderr, "192.0.2.2:5353") {
			t.Errorf("get --nameserver 192.0.2.2:5353: exit %d, stderr %q, want %d and the server named", r.code, r.stderr, exitNetwork)
		}
		r = runBin(t, bin, "", "get", "-i", "ifb-b", "--nameserver", "192.0.2.2,", "http://example.com:8080/")
		if r.code != exitUsage || !strings.Contains(r.stderr, `invalid value "192.0.2.2," for flag --nameserver`) {
			t.Errorf("get --nameserver 192.0.2.2,: exit %d, stderr %q, want %d and the flag named", r.code, r.stderr, exitUsage)
		}
		// A loopback one anywhere in the list is refused.
		r = runBin(t, bin, "", "get", "-i", "ifb-b", "--nameserver", "192.0.2.2", "--nameserver", "127.0.0.53", "http://example.com:8080/")
		if r.code != exitUsage || !strings.Contains(r.stderr, "loopback") {
			t.Errorf("get --nameserver 192.0.2.2 --nameserver 127.0.0.53: exit %d, stderr %q, want %d and loopback", r.code, r.stderr, exitUsage)
		}
	})

	t.Run("dns via iface, no name to resolve", func(t *testing.T) {
		// resolv.conf names a loopback stub, but the URL's host is an
		// address: nothing is resolved, and nothing fails.
		before := counts()
		r := runWithResolvConf(t, bin, "nameserver 127.0.0.53\n", "get", "-i", "ifb-b", "--dns-via-iface", "http://192.0.2.2:8080/")
		r.expect(t, "get --dns-via-iface of an IP URL, resolv.conf on 127.0.0.53", 0, "b")
		only(t, "b", before, 1)
	})

	t.Run("proxy", func(t *testing.T) {
		// A proxy on loopback cannot be reached through the interface:
		// refused before any connection, unless NO_PROXY excludes the host.
		before := counts()
		for _, tc := range []struct {
			env  string
			url  string
			want string
		}{
			{"HTTP_PROXY=http://127.0.0.1:3128", "http://192.0.2.2:8080/", "HTTP_PROXY http://127.0.0.1:3128: a proxy on loopback"},
			{"http_proxy=http://localhost:3128", "http://192.0.2.2:8080/", "http_proxy http://localhost:3128: a proxy on loopback"},
			{"HTTPS_PROXY=http://[::1]:3128", "https://192.0.2.2:8443/", "HTTPS_PROXY http://[::1]:3128: a proxy on loopback"},
			{"HTTP_PROXY=127.0.0.9:3128", "http://192.0.2.2:8080/", "HTTP_PROXY http://127.0.0.9:3128: a proxy on loopback"},
		} {
			r := runBinEnv(t, bin, "", []string{tc.env}, "get", "-i", "ifb-b", "--cacert", w.cacert, tc.url)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "NO_PROXY") || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("%s get %s: exit %d, stderr %q, want %d and %q", tc.env, tc.url, r.code, r.stderr, exitUsage, tc.want)
			}
		}
		only(t, "b", before, 0)
		r := runBinEnv(t, bin, "", []string{"HTTP_PROXY=http://127.0.0.1:3128", "NO_PROXY=192.0.2.2"}, "get", "-i", "ifb-b", "http://192.0.2.2:8080/")
		r.expect(t, "get with a loopback proxy and NO_PROXY", 0, "b")
		only(t, "b", before, 1)
		// Nothing answers 192.0.2.99: the timeout names the proxy.
		r = runBinEnv(t, bin, "", []string{"HTTP_PROXY=http://192.0.2.99:3128"}, "get", "-i", "ifb-a", "--connect-timeout", "0.3", "http://192.0.2.2:8080/")
		want := fmt.Sprintf("through ifb-a (index %d): timed out connecting to the proxy http://192.0.2.99:3128 after 300ms (--connect-timeout)", tp.A.Index)
		if r.code != exitNetwork || !strings.Contains(r.stderr, want) {
			t.Errorf("get through an unanswering proxy: exit %d, stderr %q, want %d and %q", r.code, r.stderr, exitNetwork, want)
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
		// An existing FILE is replaced whole, and keeps its permissions;
		// no partial file is left beside it.
		if err := os.Chmod(out, 0o600); err != nil {
			t.Fatal(err)
		}
		runBin(t, bin, "", "get", "-i", "ifb-b", "-o", out, "http://192.0.2.2:8080/").expect(t, "get -o over a file", 0, "")
		if got, err := os.ReadFile(out); err != nil || string(got) != "b" {
			t.Errorf("get -o over a file wrote %q (%v), want %q", got, err, "b")
		}
		if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("get -o over a file of mode 0600: mode %v (%v), want 0600", fi.Mode(), err)
		}
		if files, _ := os.ReadDir(filepath.Dir(out)); len(files) != 1 {
			t.Errorf("get -o: %v in the directory, want only the file", files)
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
		if r.code != exitInterface || !strings.Contains(r.stderr, "-i nosuch0: no link named nosuch0") ||
			!strings.Contains(r.stderr, "ifb-a") || !strings.Contains(r.stderr, "ifb-b") || !strings.Contains(r.stderr, "ifbind-alt-a") {
			t.Errorf("get -i nosuch0: exit %d, stderr %q, want %d and a list of the links", r.code, r.stderr, exitInterface)
		}
		r = runBin(t, bin, "", "get", "-i", "ifb-c", "http://192.0.2.2:8080/")
		if r.code != exitInterface || !strings.HasPrefix(r.stderr, "ifbind get: -i ifb-c: no link named ifb-c; did you mean ifb-a or ifb-b?\n") ||
			strings.Contains(r.stderr, "ifbind: ") {
			t.Errorf("get -i ifb-c: exit %d, stderr %q, want %d, one prefix and a suggestion", r.code, r.stderr, exitInterface)
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

	t.Run("curl options", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "data")
		if err := os.WriteFile(data, []byte("line1\nline2\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		url := "http://192.0.2.2:8080/echo"
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{url}, `GET ua="ifbind" x=[] ct="" `},
			{[]string{"-H", "X-Test: 1", "--header", "x-test: 2", "-H", "User-Agent:", url}, `GET ua="" x=["1" "2"] ct="" `},
			{[]string{"-d", "a=1", "--data", "b=2", url}, `POST ua="ifbind" x=[] ct="application/x-www-form-urlencoded" a=1&b=2`},
			{[]string{"-X", "PUT", "-H", "Content-Type: text/plain", "-d", "@" + data, url}, `PUT ua="ifbind" x=[] ct="text/plain" line1` + "\nline2\n"},
			{[]string{"--request", "DELETE", url}, `DELETE ua="ifbind" x=[] ct="" `},
		} {
			runBin(t, bin, "", append([]string{"get", "-i", "ifb-a"}, tc.args...)...).expect(t, fmt.Sprint("get ", tc.args), 0, tc.want)
		}
		r := runBin(t, bin, "stdin-body", "get", "-i", "ifb-a", "-d", "@-", url)
		r.expect(t, "get -d @-", 0, `POST ua="ifbind" x=[] ct="application/x-www-form-urlencoded" stdin-body`)

		// -I: HEAD, the headers on stdout and no body; --include: both.
		r = runBin(t, bin, "", "get", "-i", "ifb-a", "-I", "http://192.0.2.2:8080/")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "HTTP/1.1 200 OK\r\n") || !strings.Contains(r.stdout, "Content-Length: 1\r\n") ||
			!strings.HasSuffix(r.stdout, "\r\n\r\n") {
			t.Errorf("get -I: exit %d, stdout %q, want 0 and the status line and headers only", r.code, r.stdout)
		}
		r = runBin(t, bin, "", "get", "-i", "ifb-a", "--include", "http://192.0.2.2:8080/")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(r.stdout, "\r\n\r\na") {
			t.Errorf("get --include: exit %d, stdout %q, want 0, the status line, the headers and the body", r.code, r.stdout)
		}

		// -f writes no body; -s says nothing; -S says the error anyway;
		// -fsS combines.
		r = runBin(t, bin, "", "get", "-i", "ifb-a", "-f", "http://192.0.2.2:8080/missing")
		if r.code != exitHTTP || r.stdout != "" || !strings.Contains(r.stderr, "404 Not Found") {
			t.Errorf("get -f 404: exit %d, stdout %q, stderr %q, want %d, no body, and the status", r.code, r.stdout, r.stderr, exitHTTP)
		}
		r = runBin(t, bin, "", "get", "-i", "ifb-a", "-s", "http://192.0.2.2:9/")
		if r.code != exitNetwork || r.stderr != "" {
			t.Errorf("get -s from a closed port: exit %d, stderr %q, want %d and nothing said", r.code, r.stderr, exitNetwork)
		}
		r = runBin(t, bin, "", "get", "-i", "ifb-a", "-fsS", "http://192.0.2.2:8080/missing")
		if r.code != exitHTTP || r.stdout != "" || !strings.Contains(r.stderr, "404 Not Found") {
			t.Errorf("get -fsS 404: exit %d, stdout %q, stderr %q, want %d, no body, and the status", r.code, r.stdout, r.stderr, exitHTTP)
		}

		for _, args := range [][]string{
			{"-H", "no colon"},
			{"-H", "Bad Name: x"},
			{"-X", "GE T"},
			{"-I", "-d", "x"},
			{"-I", "-X", "POST"},
		} {
			r := runBin(t, bin, "", append(append([]string{"get", "-i", "ifb-a"}, args...), url)...)
			if r.code != exitUsage || strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("get %q: exit %d, stderr %q, want %d and one line", args, r.code, r.stderr, exitUsage)
			}
		}
		r = runBin(t, bin, "", "get", "-i", "ifb-a", "-d", "@"+filepath.Join(t.TempDir(), "missing"), url)
		if r.code != exitLocal {
			t.Errorf("get -d @missing: exit %d, want %d; stderr %s", r.code, exitLocal, r.stderr)
		}
	})

	t.Run("redirects", func(t *testing.T) {
		runBin(t, bin, "", "get", "-i", "ifb-b", "-L", "http://192.0.2.2:8080/redirect/3").expect(t, "get 3 redirects", 0, "b")
		r := runBin(t, bin, "", "get", "-i", "ifb-b", "--max-redirs", "2", "http://192.0.2.2:8080/redirect/3")
		if r.code != exitNetwork || !strings.Contains(r.stderr, "stopped after 2 redirects (--max-redirs)") {
			t.Errorf("get --max-redirs 2, 3 redirects: exit %d, stderr %q, want %d and the limit named", r.code, r.stderr, exitNetwork)
		}
		for _, flag := range []string{"--max-redirs=0", "-L=false"} {
			r = runBin(t, bin, "", "get", "-i", "ifb-b", "--include", flag, "http://192.0.2.2:8080/redirect/3")
			if r.code != 0 || !strings.HasPrefix(r.stdout, "HTTP/1.1 302 Found") || !strings.Contains(r.stdout, "Location: /redirect/2") {
				t.Errorf("get %s: exit %d, stdout %q, want 0 and the redirect itself", flag, r.code, r.stdout)
			}
		}
	})

	t.Run("errors name the interface", func(t *testing.T) {
		want := fmt.Sprintf("ifbind get: GET http://192.0.2.2:9/ through ifb-a (index %d): dial tcp 192.0.2.2:9: connect: connection refused\n", tp.A.Index)
		if r := runBin(t, bin, "", "get", "-i", "ifb-a", "http://192.0.2.2:9/"); r.code != exitNetwork || r.stderr != want {
			t.Errorf("get from a closed port: exit %d, stderr %q, want %d and %q", r.code, r.stderr, exitNetwork, want)
		}
		// The DNS error names the server asked, not the one of resolv.conf.
		r := runBin(t, bin, "", "get", "-i", "ifb-b", "--nameserver", "192.0.2.2", "http://nosuch.example:8080/")
		want = fmt.Sprintf("ifbind get: GET http://nosuch.example:8080/ through ifb-b (index %d): dial tcp: lookup nosuch.example on 192.0.2.2:53: no such host\n", tp.B.Index)
		if r.code != exitNetwork || r.stderr != want {
			t.Errorf("get an unknown name: exit %d, stderr %q, want %d and %q", r.code, r.stderr, exitNetwork, want)
		}
	})

	t.Run("timeouts", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "slow")
		for _, flag := range []string{"--max-time", "--timeout", "-m"} {
			r := runBin(t, bin, "", "get", "-i", "ifb-a", flag, "0.5", "-o", out, "http://192.0.2.2:8080/slow")
			if r.code != exitNetwork || !strings.Contains(r.stderr, fmt.Sprintf("through ifb-a (index %d): timed out after 500ms (--max-time), 1,000 bytes of the body received", tp.A.Index)) ||
				!strings.Contains(r.stderr, "removed the partial download (1,000 bytes)") {
				t.Errorf("get %s 0.5 /slow: exit %d, stderr %q, want %d, the limit and 1,000 bytes received, and the partial file removed", flag, r.code, r.stderr, exitNetwork)
			}
		}
		if files, _ := os.ReadDir(dir); len(files) != 0 {
			t.Errorf("after timeouts: %v left in the directory of -o, want nothing", files)
		}
		// Nothing answers 192.0.2.99: the connect waits for ARP.
		r := runBin(t, bin, "", "get", "-i", "ifb-a", "--connect-timeout", "0.3", "http://192.0.2.99:8080/")
		if r.code != exitNetwork || !strings.Contains(r.stderr, "timed out connecting after 300ms (--connect-timeout)") {
			t.Errorf("get --connect-timeout 0.3: exit %d, stderr %q, want %d and the connect timeout named", r.code, r.stderr, exitNetwork)
		}
		// A server that accepts and never speaks TLS: the handshake has
		// --connect-timeout too.
		var ln net.Listener
		if err := tp.A.Peer.Do(func() (err error) { ln, err = net.Listen("tcp", ":8444"); return err }); err != nil {
			t.Fatalf("failed to listen in peer a: %v", err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		r = runBin(t, bin, "", "get", "-i", "ifb-a", "--connect-timeout", "0.3", "https://192.0.2.2:8444/")
		if r.code != exitNetwork || !strings.Contains(r.stderr, "timed out in the TLS handshake after 300ms (--connect-timeout)") {
			t.Errorf("get --connect-timeout 0.3 from a silent TLS server: exit %d, stderr %q, want %d and the handshake timeout named", r.code, r.stderr, exitNetwork)
		}
	})

	t.Run("interrupt removes the partial file", func(t *testing.T) {
		dir := t.TempDir()
		out := filepath.Join(dir, "slow")
		if err := os.WriteFile(out, []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		p := start(t, exec.Command(bin, "get", "-v", "-i", "ifb-a", "-o", out, "http://192.0.2.2:8080/slow"), "")
		p.waitLine(t, "200 OK")
		// Wait for the 1,000 bytes to be written to the partial file.
		part := filepath.Join(dir, ".slow."+strconv.Itoa(p.cmd.Process.Pid)+".part")
		for i := 0; ; i++ {
			if fi, err := os.Stat(part); err == nil && fi.Size() == 1000 {
				break
			}
			if i == 3000 {
				t.Fatalf("the partial file %s did not get 1,000 bytes", part)
			}
			time.Sleep(10 * time.Millisecond)
		}
		p.cmd.Process.Signal(syscall.SIGINT)
		if code := p.wait(t); code != exitInterrupted || !strings.Contains(p.stderr.String(), "removed the partial download (1,000 bytes); "+out+" is as it was") {
			t.Errorf("get -o after SIGINT: exit %d, stderr %q, want %d and the partial file removed", code, p.stderr.String(), exitInterrupted)
		}
		if got, err := os.ReadFile(out); err != nil || string(got) != "old" {
			t.Errorf("get -o after SIGINT: %s holds %q (%v), want %q as before", out, got, err, "old")
		}
		if files, _ := os.ReadDir(dir); len(files) != 1 {
			t.Errorf("get -o after SIGINT: %v in the directory, want only the old file", files)
		}
	})

	t.Run("binary on a terminal", func(t *testing.T) {
		r := runOnPTY(t, bin, true, "get", "-i", "ifb-b", "http://192.0.2.2:8080/binary")
		if r.code != exitLocal || strings.Contains(r.stderr, "ELF") || !strings.Contains(r.stderr, "use -o FILE, or -o - to write it there anyway") {
			t.Errorf("get binary to a terminal: exit %d, terminal %q, want %d, no body and the hint", r.code, r.stderr, exitLocal)
		}
		r = runOnPTY(t, bin, true, "get", "-i", "ifb-b", "-o", "-", "http://192.0.2.2:8080/binary")
		if r.code != 0 || !strings.Contains(r.stderr, "ELF") {
			t.Errorf("get -o - binary to a terminal: exit %d, terminal %q, want 0 and the body", r.code, r.stderr)
		}
		r = runOnPTY(t, bin, true, "get", "-i", "ifb-b", "http://192.0.2.2:8080/")
		if r.code != 0 || r.stderr != "b" {
			t.Errorf("get text to a terminal: exit %d, terminal %q, want 0 and b", r.code, r.stderr)
		}
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
	r := runOnPTY(t, bin, false, args...)
	return r.stderr, r.code
}

// runOnPTY runs bin with its stderr, and its stdout too when stdout is
// set, on a new pseudo-terminal. The result's stderr is what was written
// to the terminal, its stdout what was written to a stdout elsewhere.
func runOnPTY(t *testing.T, bin string, stdout bool, args ...string) result {
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
	var out bytes.Buffer
	cmd.Stdout = &out
	if stdout {
		cmd.Stdout = slave
	}
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
	return result{stdout: out.String(), stderr: <-read, code: cmd.ProcessState.ExitCode()}
}
