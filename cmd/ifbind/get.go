package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ifbind/ifbind"
)

const getUsage = `Usage: ifbind get -i IFACE [flags] URL

Fetches URL (http:// or https://) through IFACE and writes the body to
stdout, or to FILE with -o, showing a progress bar on stderr when that is
a terminal. Every connection, redirects included, leaves and arrives
through IFACE only: if the interface has no route to the server, the fetch
fails rather than take another one.

Names are resolved by the system's resolver, which may ask its servers
through any interface. With --dns-via-iface, the DNS queries go through
IFACE too, to the servers of /etc/resolv.conf; with --nameserver, to that
server. A nameserver on loopback, such as the 127.0.0.53 of
systemd-resolved, cannot be reached through IFACE: ifbind get then stops
before any query, with exit code 2, and asks for one with --nameserver
(resolvectl dns lists each link's). HTTP_PROXY, HTTPS_PROXY and NO_PROXY
are honored: the proxy is then reached through IFACE.

Examples:
  ifbind get -i eth1 http://192.0.2.2/
  ifbind get -i wwan0 --nameserver 9.9.9.9 -o big.iso https://example.com/big.iso
  ifbind get -i 02:00:5e:10:00:01 -k https://192.0.2.2:8443/health || echo "failed: $?"

Exit codes: 0 ok, 1 HTTP status >= 400 (the body is still written), 2 usage
(a loopback or malformed nameserver included), 3 IFACE names no link or
cannot be bound to, 4 network error (DNS, connection, TLS, transfer), 5 a
file cannot be read (--cacert, /etc/resolv.conf) or FILE written, 130
interrupted.
`

type getFlags struct {
	iface, out, nameserver, cacert string
	dnsViaIface, insecure, verbose bool
	timeout                        time.Duration
}

func cmdGet(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var f getFlags
	fs := newFlags("get", getUsage, stdout, stderr)
	fs.StringVar(&f.iface, "i", "", "the interface to fetch through: `IFACE` is a name, altname, index or MAC, or default (the default route's link, per socket family) (required)")
	fs.StringVar(&f.out, "o", "", "write the body to `FILE` instead of stdout")
	fs.BoolVar(&f.dnsViaIface, "dns-via-iface", false, "resolve names with the servers of /etc/resolv.conf, through IFACE")
	fs.StringVar(&f.nameserver, "nameserver", "", "resolve names with the DNS server at `ADDR` (IP or IP:port), through IFACE; implies --dns-via-iface")
	fs.StringVar(&f.cacert, "cacert", "", "trust the CA certificates of the PEM `FILE` instead of the system's")
	fs.BoolVar(&f.insecure, "k", false, "do not verify the server's TLS certificate")
	fs.DurationVar(&f.timeout, "timeout", 0, "give up after `DURATION` (0: never)")
	fs.BoolVar(&f.verbose, "v", false, "tell on stderr which interface and addresses each connection uses, and the status")
	pos, code, stop := parseFlags(fs, args)
	if stop {
		return code
	}
	switch {
	case f.iface == "":
		return usageError(stderr, "get", "-i IFACE is required")
	case len(pos) != 1:
		return usageError(stderr, "get", "want exactly one URL")
	}
	url := pos[0]
	if f.nameserver != "" {
		f.dnsViaIface = true
	}
	link, err := lookupIface(f.iface)
	if err != nil {
		return fail(stderr, "get", exitInterface, err)
	}
	client, code, err := newClient(link, &f)
	if code == exitUsage {
		return usageError(stderr, "get", err.Error())
	}
	if err != nil {
		return fail(stderr, "get", code, err)
	}

	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
		defer cancel()
	}
	if f.verbose {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(ci httptrace.GotConnInfo) {
				fmt.Fprintf(stderr, "ifbind get: connected %v -> %v through %v\n",
					ci.Conn.LocalAddr(), ci.Conn.RemoteAddr(), link)
			},
		})
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return usageError(stderr, "get", err.Error())
	}
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return usageError(stderr, "get", fmt.Sprintf("URL %q: want http:// or https://", url))
	}
	req.Header.Set("User-Agent", "ifbind")
	resp, err := client.Do(req)
	if err != nil {
		return interrupted(ctx, stderr, "get", err)
	}
	defer resp.Body.Close()
	if f.verbose {
		fmt.Fprintf(stderr, "ifbind get: %s %s\n", resp.Proto, resp.Status)
	}

	var w io.Writer = stdout
	var file *os.File
	if f.out != "" && f.out != "-" {
		if file, err = os.Create(f.out); err != nil {
			return fail(stderr, "get", exitLocal, err)
		}
		defer file.Close()
		w = file
		if isTerminal(stderr) {
			p := newProgress(stderr, resp.ContentLength)
			defer p.done()
			w = io.MultiWriter(file, p)
		}
	}
	if _, err := io.Copy(markedWriter{w}, resp.Body); err != nil {
		var we *writeError
		if errors.As(err, &we) {
			return fail(stderr, "get", exitLocal, we.err)
		}
		return interrupted(ctx, stderr, "get", err)
	}
	if file != nil {
		if err := file.Close(); err != nil {
			return fail(stderr, "get", exitLocal, err)
		}
	}
	if resp.StatusCode >= 400 {
		fmt.Fprintf(stderr, "ifbind get: %s: %s\n", url, resp.Status)
		return exitHTTP
	}
	return exitOK
}

// interrupted reports err, and returns exitInterrupted when a signal ended
// ctx, or the exit code err deserves.
func interrupted(ctx context.Context, stderr io.Writer, cmd string, err error) int {
	if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		fmt.Fprintf(stderr, "ifbind %s: interrupted\n", cmd)
		return exitInterrupted
	}
	return fail(stderr, cmd, exitCode(err), err)
}

// A writeError is a failed write of the body, told apart from a failed
// read: io.Copy returns either unmarked.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

// markedWriter marks the errors of w as writeErrors.
type markedWriter struct{ w io.Writer }

func (m markedWriter) Write(p []byte) (int, error) {
	n, err := m.w.Write(p)
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}

// newClient returns an HTTP client whose every connection is bound to
// link, and whose name resolution is too when f asks for it. When it
// fails, code is exitUsage for a nameserver that cannot be used (a loopback
// one, such as the 127.0.0.53 of systemd-resolved, which no packet sent
// through link reaches), or exitLocal for a file that cannot be read.
func newClient(link ifbind.Link, f *getFlags) (c *http.Client, code int, err error) {
	d, _, err := dialerFor(link) // the monitor of IFACE "default" lives until exit
	if err != nil {
		return nil, exitLocal, err
	}
	if f.dnsViaIface {
		var servers []string
		if f.nameserver != "" {
			servers = append(servers, f.nameserver)
		}
		r, err := ifbind.NewResolver(d, servers...)
		switch {
		case err != nil && f.nameserver != "":
			return nil, exitUsage, fmt.Errorf("--nameserver %s: %w", f.nameserver, err)
		case errors.Is(err, ifbind.ErrLoopbackNameserver):
			return nil, exitUsage, fmt.Errorf("--dns-via-iface: %w\nname a nameserver that %v reaches with --nameserver ADDR", err, link)
		case err != nil:
			return nil, exitLocal, err
		}
		d.Resolver = r
	}
	t := ifbind.NewTransport(d) // the proxy from the environment, as curl
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.InsecureSkipVerify = f.insecure
	if f.cacert != "" {
		pem, err := os.ReadFile(f.cacert)
		if err != nil {
			return nil, exitLocal, err
		}
		t.TLSClientConfig.RootCAs = x509.NewCertPool()
		if !t.TLSClientConfig.RootCAs.AppendCertsFromPEM(pem) {
			return nil, exitLocal, fmt.Errorf("%s: no PEM certificate found", f.cacert)
		}
	}
	return &http.Client{Transport: t}, exitOK, nil
}
