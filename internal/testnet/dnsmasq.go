//go:build linux

package testnet

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A DNSQuery is a query a DNS server logged.
type DNSQuery struct {
	Type string // "A", "AAAA"...
	Name string
	From string // the client's address
}

// A DNS is a dnsmasq serving names from a hosts file in a namespace, on
// port 53 of every address there, over UDP and TCP. Answers larger than 512
// bytes come back truncated over UDP (EDNS0 is capped at 512), so that
// clients must ask again over TCP.
type DNS struct {
	mu      sync.Mutex
	queries []DNSQuery
	changed chan struct{} // closed and replaced when a query is logged
}

// The line dnsmasq --log-queries writes for each query it receives, over UDP
// or TCP.
var queryLine = regexp.MustCompile(`query\[(\w+)\] (\S+) from (\S+)`)

// RequireDNSMasq skips t when dnsmasq is not installed, or fails it under
// CI (CI=true), where it must be.
func RequireDNSMasq(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("dnsmasq")
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("needs dnsmasq: %v; install it with: apt-get install -y dnsmasq-base", err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// StartDNS starts dnsmasq inside ns, serving hosts, a hosts file ("address
// name" lines), and nothing else: it forwards no query, and answers REFUSED
// for the names it does not know. It listens on port 53, unless extra, the
// further options it is given, sets another with "--port=N". It stops when
// t ends. dnsmasq runs in debug mode (-d), in the foreground and without
// changing user, so that it runs as root and as root of an unprivileged user
// namespace alike.
func StartDNS(t testing.TB, ns *NS, hosts string, extra ...string) *DNS {
	t.Helper()
	bin := RequireDNSMasq(t)
	dir := t.TempDir()
	hostsFile := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hostsFile, []byte(hosts), 0o644); err != nil {
		t.Fatalf("failed to write the hosts file: %v", err)
	}
	args := []string{
		"-d", // foreground, no user change, log to stderr
		"--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--no-poll",
		"--addn-hosts=" + hostsFile,
		"--log-queries", "--log-facility=-",
		"--edns-packet-max=512",
		"--cache-size=0",
	}
	if !slices.ContainsFunc(extra, func(a string) bool { return strings.HasPrefix(a, "--port=") }) {
		args = append(args, "--port=53")
	}
	cmd := exec.Command(bin, append(args, extra...)...)
	cmd.Dir = dir
	// Killed if the thread that started it ends, which Do does only when it
	// could not put the thread back in its namespace.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatalf("failed to start dnsmasq: %v", err)
	}
	// The child inherits the network namespace of the thread that starts
	// it, which Do holds inside ns.
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatalf("failed to start dnsmasq: %v", err)
	}
	dns := &DNS{changed: make(chan struct{})}
	started := make(chan struct{})
	var log strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "started, version") {
				close(started)
			}
			m := queryLine.FindStringSubmatch(line)
			dns.mu.Lock()
			if m == nil {
				log.WriteString(line + "\n")
			} else {
				dns.queries = append(dns.queries, DNSQuery{Type: m[1], Name: m[2], From: m[3]})
				close(dns.changed)
				dns.changed = make(chan struct{})
			}
			dns.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
		cmd.Wait()
	})
	select {
	case <-started:
	case <-done:
		cmd.Wait()
		t.Fatalf("dnsmasq exited at start: %s\n%s", cmd.ProcessState, log.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("dnsmasq did not start within 10s")
	}
	// "started" is logged once the sockets are bound.
	return dns
}

// Queries returns the queries for name the server received so far.
func (d *DNS) Queries(name string) []DNSQuery {
	d.mu.Lock()
	defer d.mu.Unlock()
	var qs []DNSQuery
	for _, q := range d.queries {
		if q.Name == name {
			qs = append(qs, q)
		}
	}
	return qs
}

// WaitQueries waits until the server has logged at least n queries for name,
// for at most 5 seconds, and returns them: dnsmasq may log a query after it
// answered.
func (d *DNS) WaitQueries(name string, n int) []DNSQuery {
	timeout := time.After(5 * time.Second)
	for {
		d.mu.Lock()
		changed := d.changed
		d.mu.Unlock()
		if qs := d.Queries(name); len(qs) >= n {
			return qs
		}
		select {
		case <-changed:
		case <-timeout:
			return d.Queries(name)
		}
	}
}
