package main

import (
	"net"

	"encoding/json"
	"github.com/vishvananda/netlink"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/ifbind/ifbind/internal/testnet"
)

// TestNetnsFlag runs links, dial and listen with --netns: two namespaces,
// each with an eth0 of its own index and a peer behind it at the same
// addresses; each command sees and reaches its own namespace's only.
func TestNetnsFlag(t *testing.T) {
	bin := build(t)
	tp := testnet.NewTenants(t)
	tp.ServeNames(t)
	tp.WaitReady(t)
	// The command is another process: it names the namespace through
	// this one's descriptor.
	path := func(s *testnet.Side) string {
		return "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(s.Client.FD())
	}
	for _, s := range tp.Sides() {
		r := runBin(t, bin, "", "links", "--json", "--netns", path(s))
		var links []linkInfo
		if err := json.Unmarshal([]byte(r.stdout), &links); err != nil || r.code != exitOK {
			t.Fatalf("links --netns: exit %d, %v; stderr %s", r.code, err, r.stderr)
		}
		found := false
		for _, l := range links {
			found = found || l.Name == "eth0" && l.Index == s.Index
		}
		if !found {
			t.Errorf("links --netns of %s: %+v, want eth0 with index %d", s.Name, links, s.Index)
		}
		for _, network := range []string{"tcp", "udp"} {
			runBin(t, bin, "who?\n", "dial", "--netns", path(s), "-idle", "300ms", "-i", "eth0", network, "[2001:db8::2]:7007").
				expect(t, "dial --netns "+s.Name+" "+network, exitOK, s.Name)
		}

		// -i default and route, read in the namespace: each tenant's
		// default route leads through its own eth0.
		if err := s.Client.Do(func() error {
			_, dst, _ := net.ParseCIDR("0.0.0.0/0")
			return netlink.RouteAdd(&netlink.Route{LinkIndex: s.Index, Dst: dst, Scope: netlink.SCOPE_LINK})
		}); err != nil {
			t.Fatalf("failed to add a default route in %s: %v", s.Name, err)
		}
		runBin(t, bin, "who?\n", "dial", "--netns", path(s), "-idle", "300ms", "-i", "default", "udp", "192.0.2.2:7007").
			expect(t, "dial --netns "+s.Name+" -i default", exitOK, s.Name)
		runBin(t, bin, "", "route", "--netns", path(s), "192.0.2.99").
			expect(t, "route --netns "+s.Name, exitOK, "eth0 (index "+strconv.Itoa(s.Index)+")\n")

		// listen: the peer of the namespace reaches it.
		p := start(t, exec.Command(bin, "listen", "-v", "--netns", path(s), "-i", "eth0", "tcp", ":7300"), "")
		p.waitLine(t, "listening")
		c, err := peerDial(t, s, "tcp", "192.0.2.1:7300", 5e9)
		if err != nil {
			t.Fatalf("peer %s failed to reach the listener in its namespace: %v", s.Name, err)
		}
		c.Write([]byte("hello"))
		c.Close()
		if code := p.wait(t); code != exitOK || p.stdout.String() != "hello" {
			t.Errorf("listen --netns %s: exit %d, stdout %q; stderr %s", s.Name, code, p.stdout.String(), p.stderr.String())
		}
	}
	r := runBin(t, bin, "", "dial", "--netns", "ifbind-no-such-ns", "-i", "eth0", "tcp", "192.0.2.2:7007")
	if r.code != exitInterface || !strings.Contains(r.stderr, "ifbind-no-such-ns") || !strings.Contains(r.stderr, "gone") {
		t.Errorf("dial --netns of a missing namespace: exit %d, stderr %q, want %d naming it", r.code, r.stderr, exitInterface)
	}
	r = runBin(t, bin, "", "links", "--netns", "ifbind-no-such-ns")
	if r.code != exitInterface || !strings.Contains(r.stderr, "ifbind-no-such-ns") {
		t.Errorf("links --netns of a missing namespace: exit %d, stderr %q, want %d naming it", r.code, r.stderr, exitInterface)
	}
}
