package ifbind

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The web of a test: both peers serve the same name on the same addresses
// and ports, over plain HTTP and over TLS (HTTP/1.1 and HTTP/2), with one
// certificate.
const (
	webName   = "www.ifbind.test"
	httpPort  = "8080"
	httpsPort = "8443"
)

// A web is what the servers of serveWeb saw.
type web struct {
	pool     *x509.CertPool // trusts the servers' certificate
	requests map[string]*atomic.Int64
	conns    map[string]*atomic.Int64 // connections accepted, by side
}

// newCert makes a self-signed certificate for webName and the peer
// addresses.
func newCert(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("failed to make a key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: webName},
		DNSNames:              []string{webName},
		IPAddresses:           []net.IP{testnet.PeerV4.AsSlice(), testnet.PeerV6.AsSlice()},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("failed to make a certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("failed to parse the certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

// serveWeb starts, in each peer, net/http servers on httpPort (plain) and
// httpsPort (TLS, offering h2 and http/1.1), IPv4 and IPv6, that answer
// "<side> <proto> <client address>" and count the requests of each side.
func serveWeb(t testing.TB, tp *testnet.Topo) *web {
	t.Helper()
	cert, pool := newCert(t)
	w := &web{pool: pool, requests: map[string]*atomic.Int64{}, conns: map[string]*atomic.Int64{}}
	for _, s := range tp.Sides() {
		n := new(atomic.Int64)
		w.requests[s.Name] = n
		conns := new(atomic.Int64)
		w.conns[s.Name] = conns
		count := func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				conns.Add(1)
			}
		}
		handler := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			n.Add(1)
			fmt.Fprintf(rw, "%s %s %s", s.Name, r.Proto, r.RemoteAddr)
		})
		var plain, secure net.Listener
		err := s.Peer.Do(func() error {
			var err error
			if plain, err = net.Listen("tcp", ":"+httpPort); err != nil {
				return err
			}
			secure, err = net.Listen("tcp", ":"+httpsPort)
			return err
		})
		if err != nil {
			t.Fatalf("failed to listen in peer %s: %v", s.Name, err)
		}
		// Quiet: a client racing dials for HTTP/2 abandons handshakes,
		// which the server would log when the test closes it.
		quiet := log.New(io.Discard, "", 0)
		hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: quiet, ConnState: count}
		tlsSrv := &http.Server{
			Handler:           handler,
			ConnState:         count,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          quiet,
			TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
		}
		go hs.Serve(plain)
		go tlsSrv.ServeTLS(secure, "", "")
		t.Cleanup(func() { hs.Close(); tlsSrv.Close() })
	}
	return w
}

// dnsHosts is the hosts file of the DNS server of a side: the web name at
// the peer addresses, which both sides share, "who" at an address of the
// side's own, and "big" at 40 addresses of the side's own, too many for a
// UDP answer of 512 bytes.
func dnsHosts(side string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n%s %s\n", testnet.PeerV4, webName, testnet.PeerV6, webName)
	fmt.Fprintf(&b, "%s who.ifbind.test\n", whoAddr(side))
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "%s big.ifbind.test\n", bigAddr(side, i))
	}
	return b.String()
}

// whoAddr is the address the DNS server of side gives who.ifbind.test.
func whoAddr(side string) netip.Addr {
	if side == "a" {
		return netip.MustParseAddr("198.51.100.1")
	}
	return netip.MustParseAddr("203.0.113.1")
}

// bigAddr is the i-th address the DNS server of side gives big.ifbind.test.
func bigAddr(side string, i int) netip.Addr {
	if side == "a" {
		return netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
	}
	return netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
}

// serveDNS starts a dnsmasq in each peer and returns them by side.
func serveDNS(t testing.TB, tp *testnet.Topo) map[string]*testnet.DNS {
	t.Helper()
	m := map[string]*testnet.DNS{}
	for _, s := range tp.Sides() {
		m[s.Name] = testnet.StartDNS(t, s.Peer, dnsHosts(s.Name))
	}
	return m
}

// other returns the side of tp that is not s.
func other(tp *testnet.Topo, s *testnet.Side) *testnet.Side {
	if s == tp.A {
		return tp.B
	}
	return tp.A
}

// get fetches url with c and returns the response, whose body it has read
// into the returned string.
func get(ctx context.Context, c *http.Client, url string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestNewTransportReachesItsOwnPeer(t *testing.T) {
	tp := testnet.New(t)
	w := serveWeb(t, tp)
	dns := serveDNS(t, tp)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	type want struct {
		proto string
		major int
	}
	modes := []struct {
		name   string
		scheme string
		port   string
		h1Only bool
		want   want
	}{
		{"http", "http", httpPort, false, want{"HTTP/1.1", 1}},
		{"https", "https", httpsPort, true, want{"HTTP/1.1", 1}},
		{"h2", "https", httpsPort, false, want{"HTTP/2.0", 2}},
	}
	hosts := []struct{ host, from string }{
		{testnet.PeerV4.String(), testnet.ClientV4.String()},
		{"[" + testnet.PeerV6.String() + "]", "[" + testnet.ClientV6.String() + "]"},
		{webName, ""}, // either family, by Happy Eyeballs
	}
	var perSide int64
	for _, s := range tp.Sides() {
		d := &Dialer{Index: s.Index}
		r, err := NewResolver(d, testnet.PeerV4.String())
		if err != nil {
			t.Fatalf("failed to make the resolver of %s: %v", s.LinkName, err)
		}
		d.Resolver = r
		for _, m := range modes {
			tr := NewTransport(d)
			tr.TLSClientConfig = &tls.Config{RootCAs: w.pool}
			if m.h1Only {
				tr.Protocols = new(http.Protocols)
				tr.Protocols.SetHTTP1(true)
			}
			c := &http.Client{Transport: tr}
			for _, h := range hosts {
				url := m.scheme + "://" + h.host + ":" + m.port + "/"
				resp, body, err := get(ctx, c, url)
				if err != nil {
					t.Fatalf("%s on %s: failed to get %s: %v", m.name, s.LinkName, url, err)
				}
				perSide++
				f := strings.Fields(body)
				if len(f) != 3 {
					t.Fatalf("%s on %s: %s answered %q", m.name, s.LinkName, url, body)
				}
				if f[0] != s.Name {
					t.Errorf("%s on %s: %s answered by peer %q, want %q", m.name, s.LinkName, url, f[0], s.Name)
				}
				if f[1] != m.want.proto || resp.ProtoMajor != m.want.major {
					t.Errorf("%s on %s: %s: got %s (ProtoMajor %d), want %s (%d)", m.name, s.LinkName, url, f[1], resp.ProtoMajor, m.want.proto, m.want.major)
				}
				if h.from != "" && !strings.HasPrefix(f[2], h.from+":") {
					t.Errorf("%s on %s: %s: the server saw the client at %s, want %s", m.name, s.LinkName, url, f[2], h.from)
				}
				if m.scheme == "https" {
					if resp.TLS == nil {
						t.Fatalf("%s on %s: %s: no TLS", m.name, s.LinkName, url)
					}
					wantALPN := "" // an HTTP/1-only client offers no ALPN
					if m.want.major == 2 {
						wantALPN = "h2"
					}
					if got := resp.TLS.NegotiatedProtocol; got != wantALPN {
						t.Errorf("%s on %s: %s: ALPN %q, want %q", m.name, s.LinkName, url, got, wantALPN)
					}
				}
			}
			tr.CloseIdleConnections()
		}
	}
	for _, s := range tp.Sides() {
		if got := w.requests[s.Name].Load(); got != perSide/2 {
			t.Errorf("peer %s served %d requests, want %d", s.Name, got, perSide/2)
		}
		// Each side's client looked the web name up on its own NIC only.
		for _, q := range dns[s.Name].Queries(webName) {
			if q.From != testnet.ClientV4.String() {
				t.Errorf("DNS server of %s was asked for %s from %s, want %s", s.Name, webName, q.From, testnet.ClientV4)
			}
		}
		if len(dns[s.Name].Queries(webName)) == 0 {
			t.Errorf("DNS server of %s was never asked for %s", s.Name, webName)
		}
	}
}

// TestNewTransportHappyEyeballs proves that the transport races the two
// families of a name, each attempt bound: the family tried first is
// blackholed at the peer, and the other one must start while the first is
// still waiting for its SYN-ACK, which a dialer that tried the addresses
// one after the other would not do.
func TestNewTransportHappyEyeballs(t *testing.T) {
	tp := testnet.New(t)
	w := serveWeb(t, tp)
	serveDNS(t, tp)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := tp.B // not the side the routing table prefers: see TestResolverUnboundDefault

	d := &Dialer{Index: s.Index}
	r, err := NewResolver(d, testnet.PeerV4.String())
	if err != nil {
		t.Fatalf("failed to make the resolver: %v", err)
	}
	d.Resolver = r
	addrs, err := r.LookupNetIP(ctx, "ip", webName)
	if err != nil || len(addrs) != 2 {
		t.Fatalf("failed to look up %s: %v, %v; want one address of each family", webName, addrs, err)
	}
	primary, fallback := addrs[0], addrs[1]
	// The peer drops its SYN-ACKs to the client's address of the primary
	// family: the primary attempt waits, without an error.
	clientOf := map[bool]netip.Addr{true: testnet.ClientV4, false: testnet.ClientV6}
	blackhole(t, s.Peer, clientOf[primary.Is4()])

	var (
		mu       sync.Mutex
		bound    = map[string]int{} // network of each attempt -> index read back
		overlaps bool               // a primary attempt was pending when the fallback began
	)
	fallbackNet := "tcp4"
	primaryFamily := uint8(unix.AF_INET6)
	if fallback.Is6() {
		fallbackNet, primaryFamily = "tcp6", unix.AF_INET
	}
	d.ControlContext = func(_ context.Context, network, _ string, c syscall.RawConn) error {
		idx, err := readBound(c)
		if err != nil {
			return err
		}
		pending := false
		if network == fallbackNet {
			pending = synSent(t, primaryFamily, primary, s.Index)
		}
		mu.Lock()
		bound[network] = idx
		overlaps = overlaps || pending
		mu.Unlock()
		return nil
	}
	c := &http.Client{Transport: NewTransport(d)}
	_, body, err := get(ctx, c, "http://"+net.JoinHostPort(webName, httpPort)+"/")
	if err != nil {
		t.Fatalf("failed to get from %s: %v", webName, err)
	}
	f := strings.Fields(body)
	if len(f) != 3 || f[0] != s.Name {
		t.Fatalf("answered %q, want from peer %s", body, s.Name)
	}
	if ap, err := netip.ParseAddrPort(f[2]); err != nil || ap.Addr().Unmap() != clientOf[fallback.Is4()] {
		t.Errorf("the server saw the client at %s, want %s (the fallback family)", f[2], clientOf[fallback.Is4()])
	}
	mu.Lock()
	defer mu.Unlock()
	for _, network := range []string{"tcp4", "tcp6"} {
		if got, ok := bound[network]; !ok || got != s.Index {
			t.Errorf("%s attempt: bound to %d (attempted: %v), want %d", network, got, ok, s.Index)
		}
	}
	if !overlaps {
		t.Errorf("the %s attempt began with no %v attempt pending: the families were not raced", fallbackNet, primary)
	}
	if got := w.requests[other(tp, s).Name].Load(); got != 0 {
		t.Errorf("peer %s served %d requests, want 0", other(tp, s).Name, got)
	}
}

// blackhole makes ns drop what it sends to addr.
func blackhole(t testing.TB, ns *testnet.NS, addr netip.Addr) {
	t.Helper()
	route := &netlink.Route{
		Dst:  &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(addr.BitLen(), addr.BitLen())},
		Type: unix.RTN_BLACKHOLE,
	}
	// netlink talks to the namespace of the thread Do runs f on.
	if err := ns.Do(func() error { return netlink.RouteAdd(route) }); err != nil {
		t.Fatalf("failed to blackhole %v in the peer: %v", addr, err)
	}
}

// tcpSynSent is the state of a connecting TCP socket (include/net/tcp_states.h).
const tcpSynSent = 2

// synSent reports whether a TCP socket of family bound to index is
// connecting (SYN_SENT) to addr, on httpPort.
func synSent(t *testing.T, family uint8, addr netip.Addr, index int) bool {
	socks, err := netlink.SocketDiagTCP(family)
	if err != nil {
		t.Errorf("failed to list sockets: %v", err)
		return false
	}
	for _, so := range socks {
		dst, _ := netip.AddrFromSlice(so.ID.Destination)
		if so.State == tcpSynSent && dst.Unmap() == addr &&
			fmt.Sprint(so.ID.DestinationPort) == httpPort && int(so.ID.Interface) == index {
			return true
		}
	}
	return false
}

func TestNewTransportConcurrent(t *testing.T) {
	tp := testnet.New(t)
	w := serveWeb(t, tp)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clients := map[string]*http.Client{}
	for _, s := range tp.Sides() {
		tr := NewTransport(&Dialer{Index: s.Index})
		tr.TLSClientConfig = &tls.Config{RootCAs: w.pool}
		clients[s.Name] = &http.Client{Transport: tr}
		defer tr.CloseIdleConnections()
	}
	const n = 100
	urls := []string{
		"http://" + net.JoinHostPort(testnet.PeerV4.String(), httpPort) + "/",
		"https://" + net.JoinHostPort(testnet.PeerV6.String(), httpsPort) + "/",
	}
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		side := tp.Sides()[i%2].Name
		url := urls[i/2%2]
		wg.Go(func() {
			_, body, err := get(ctx, clients[side], url)
			switch {
			case err != nil:
				errs <- fmt.Errorf("request %d through %s to %s: %v", i, side, url, err)
			case !strings.HasPrefix(body, side+" "):
				errs <- fmt.Errorf("request %d through %s to %s: answered %q, want from peer %s", i, side, url, body, side)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, s := range tp.Sides() {
		if got := w.requests[s.Name].Load(); got != n/2 {
			t.Errorf("peer %s served %d requests, want %d", s.Name, got, n/2)
		}
	}
}

// TestNewTransportProxy proves that the connection to a proxy is bound too:
// the peer's server answers requests in proxy form.
func TestNewTransportProxy(t *testing.T) {
	tp := testnet.New(t)
	w := serveWeb(t, tp)
	proxy := &url.URL{Scheme: "http", Host: net.JoinHostPort(testnet.PeerV4.String(), httpPort)}
	for _, s := range tp.Sides() {
		tr := NewTransport(&Dialer{Index: s.Index})
		tr.Proxy = http.ProxyURL(proxy)
		_, body, err := get(context.Background(), &http.Client{Transport: tr}, "http://elsewhere.test/")
		if err != nil {
			t.Fatalf("failed to get through the proxy on %s: %v", s.LinkName, err)
		}
		if !strings.HasPrefix(body, s.Name+" ") {
			t.Errorf("through the proxy on %s: answered %q, want from peer %s", s.LinkName, body, s.Name)
		}
		tr.CloseIdleConnections()
	}
	for _, s := range tp.Sides() {
		if got := w.requests[s.Name].Load(); got != 1 {
			t.Errorf("peer %s served %d requests, want 1", s.Name, got)
		}
	}
}

// TestNewTransportNoInterface proves that a transport without an interface
// fails every request, before any packet leaves.
func TestNewTransportNoInterface(t *testing.T) {
	tp := testnet.New(t)
	w := serveWeb(t, tp)
	for _, d := range []BoundDialer{nil, (*Dialer)(nil), &Dialer{}} {
		c := &http.Client{Transport: NewTransport(d)}
		_, _, err := get(context.Background(), c, "http://"+net.JoinHostPort(testnet.PeerV4.String(), httpPort)+"/")
		if !errors.Is(err, syscall.EINVAL) || !strings.Contains(fmt.Sprint(err), "no interface to bind to") {
			t.Errorf("NewTransport(%v): got error %v, want one saying there is no interface to bind to", d, err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "dial" {
			t.Errorf("NewTransport(%v): got %v, want a *net.OpError of a dial", d, err)
		}
	}
	for _, u := range []*Uplinks{nil, {}} {
		c := &http.Client{Transport: NewTransport(u)}
		_, _, err := get(context.Background(), c, "http://"+net.JoinHostPort(testnet.PeerV4.String(), httpPort)+"/")
		if !errors.Is(err, errNoUplinks) {
			t.Errorf("NewTransport(%v): got error %v, want %v", u, err, errNoUplinks)
		}
	}
	for _, s := range tp.Sides() {
		if got := w.requests[s.Name].Load(); got != 0 {
			t.Errorf("peer %s served %d requests, want 0", s.Name, got)
		}
	}
}
