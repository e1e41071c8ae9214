package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ifbind/ifbind"
)

const getUsage = `Usage: ifbind get -i IFACE [flags] URL

Fetches URL (http:// or https://) through IFACE and writes the body to
stdout, or to FILE with -o, showing a progress bar on stderr when that is
a terminal. Every connection, redirects included, leaves and arrives
through IFACE only: if the interface has no route to the server, the fetch
fails rather than take another one. The flags are curl's where curl has
one, but -i, which is the interface: curl's -i is --include here.

Names are resolved by the system's resolver, which may ask its servers
through any interface. With --dns-via-iface, the DNS queries go through
IFACE too, to the servers of /etc/resolv.conf; with --nameserver, to the
servers it names: repeat it, or give a list (--nameserver 192.0.2.53,
192.0.2.54), and they are tried in order, the next after a timeout, a
refusal, SERVFAIL or REFUSED. A nameserver on loopback, such as the
127.0.0.53 of systemd-resolved, cannot be reached through IFACE: when a
name must be resolved, ifbind get stops before any query, with exit code
2, and asks for one with --nameserver (resolvectl dns lists each link's);
a URL whose host is an IP address needs none.

HTTP_PROXY, HTTPS_PROXY and NO_PROXY are honored as net/http honors them:
the proxy is then reached through IFACE. A proxy on loopback (127.0.0.0/8,
::1, localhost) cannot be: ifbind get refuses it with exit code 2, unless
NO_PROXY excludes the URL's host.

Limits, each settable:
  --connect-timeout  30s for each connection's name lookup and TCP connect,
                     and again for its TLS handshake
  --max-time         none: the whole transfer may take any time
  --max-redirs       10 redirects followed
Fixed: response headers of at most 1 MiB (Go's default); DNS tries and
timeouts come from /etc/resolv.conf, within --connect-timeout.

IFACE may list several interfaces, the preferred first (-i eth0,wwan0):
each connection then goes through the first one that is up, has carrier
and an address of the server's family, and connects; with --strategy
race, the next one is tried as well when the first has not connected
within 300 ms. Without it (fallback), each interface tried gets an equal
share of what is left of --connect-timeout, 2 s at least: a black-holed
first interface costs half of it before the next is tried. Only the
connection is failed over: a server that stops answering after it is
reached is --max-time's. -v tells which one each connection took.

With -o FILE, the body goes to a hidden file beside FILE (.FILE.PID.part),
renamed to FILE once complete: FILE is never left half written. On an
error, a timeout or an interrupt, the partial file is removed and FILE,
if it existed, is left as it was (curl would keep the partial file; a
SIGKILL leaves it too). The body is not written to a terminal when it
looks binary (a NUL byte in the first chunk that arrives): use -o FILE,
or -o - to write it there anyway.

Examples:
  ifbind get -i eth1 http://192.0.2.2/
  ifbind get -i wwan0 --nameserver 9.9.9.9 -o big.iso https://example.com/big.iso
  ifbind get -i eth1 -fsS -H 'Accept: application/json' -d @body.json https://192.0.2.2/api
  ifbind get -i 02:00:5e:10:00:01 -I https://192.0.2.2:8443/health || echo "failed: $?"
  ifbind get -i eth0,wwan0 --strategy race --max-time 30 https://192.0.2.2/

Exit codes: 0 ok, 1 HTTP status >= 400 (the body is still written, unless
-f), 2 usage (a malformed URL, port or header, a loopback or malformed
nameserver, a loopback proxy), 3 IFACE names no link or cannot be bound
to, 4 network error
(DNS, connection, TLS, transfer) or timeout, 5 a file cannot be read
(--cacert, -d @FILE, /etc/resolv.conf) or FILE written, or binary output
refused on a terminal, 130 interrupted.
`

type getFlags struct {
	iface                          ifaceFlags
	out, cacert                    string
	nameservers                    nameservers
	method                         string
	headers, data                  list
	dnsViaIface, insecure, verbose bool
	head, include, silent, show    bool
	failHTTP, location             bool
	connectTimeout, maxTime        time.Duration
	maxRedirs                      int
	strategy                       string // with several IFACEs: uplinks.go
}

func cmdGet(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var f getFlags
	fs := newFlags("get", getUsage, stdout, stderr)
	f.iface.lists = true
	f.iface.register(fs, "fetch through")
	fs.StringVar(&f.out, "o", "", "write the body to `FILE` instead of stdout (- for stdout, binary or not)")
	fs.aka("o", "output")
	fs.Var(&f.headers, "H", "send the request header `'NAME: VALUE'` (repeatable); 'NAME:' drops a default one")
	fs.aka("H", "header")
	fs.StringVar(&f.method, "X", "", "send the request with `METHOD` (default GET, or POST with -d)")
	fs.aka("X", "request")
	fs.Var(&f.data, "d", "send `DATA` as the body, by POST unless -X (repeatable, joined by &; @FILE sends the file as it is, @- stdin)")
	fs.aka("d", "data")
	fs.BoolVar(&f.head, "I", false, "ask with HEAD and print the response headers")
	fs.aka("I", "head")
	fs.BoolVar(&f.include, "include", false, "print the response status line and headers before the body (curl's -i)")
	fs.BoolVar(&f.silent, "s", false, "print neither the progress bar nor errors (the exit code tells)")
	fs.aka("s", "silent")
	fs.BoolVar(&f.show, "S", false, "with -s, print errors still")
	fs.aka("S", "show-error")
	fs.BoolVar(&f.failHTTP, "f", false, "on an HTTP status >= 400, write no body (exit code 1 either way)")
	fs.aka("f", "fail")
	fs.BoolVar(&f.location, "L", true, "follow redirects, up to --max-redirs: on unless -L=false (accepted for curl's habit)")
	fs.aka("L", "location")
	fs.IntVar(&f.maxRedirs, "max-redirs", 10, "follow at most `N` redirects (0: none; the redirect response is then the result)")
	fs.secondsVar(&f.connectTimeout, "connect-timeout", 30*time.Second, "give up a connection whose name lookup and connect, or TLS handshake, take more than `SECONDS` (0: never)")
	fs.secondsVar(&f.maxTime, "max-time", 0, "give up when the whole transfer takes more than `SECONDS` (0: never)")
	fs.aka("max-time", "m", "timeout")
	fs.BoolVar(&f.dnsViaIface, "dns-via-iface", false, "resolve names with the servers of /etc/resolv.conf, through IFACE")
	fs.Var(&f.nameservers, "nameserver", "resolve names with the DNS server at `ADDR` (IP or IP:port), through IFACE; implies --dns-via-iface.\nRepeatable, or a list (a,b): tried in order, the next after a timeout, a refusal, SERVFAIL or REFUSED")
	fs.StringVar(&f.cacert, "cacert", "", "trust the CA certificates of the PEM `FILE` instead of the system's")
	fs.BoolVar(&f.insecure, "k", false, "do not verify the server's TLS certificate")
	fs.aka("k", "insecure")
	fs.StringVar(&f.strategy, "strategy", "fallback", "with several interfaces in -i (eth0,wwan0), `STRATEGY` is fallback (the next when one is unusable or fails) or race (start the next too after 300 ms without a connection)")
	fs.BoolVar(&f.verbose, "v", false, "tell on stderr which interface and addresses each connection uses, and the status")
	fs.aka("v", "verbose")
	pos, code, stop := fs.parse(args)
	if stop {
		return code
	}
	if len(pos) != 1 {
		return usageError(stderr, "get", "want exactly one URL")
	}
	rawURL := pos[0]
	if msg := checkURL(rawURL); msg != "" {
		return usageError(stderr, "get", msg)
	}
	if f.maxRedirs < 0 {
		return usageError(stderr, "get", "--max-redirs must not be negative")
	}
	if !f.location {
		f.maxRedirs = 0 // -L=false: curl without -L
	}
	method, body, code, err := f.request(stdin)
	if code == exitUsage {
		return usageError(stderr, "get", err.Error())
	}
	if err != nil {
		return f.fail(stderr, code, err)
	}
	link, code, err := f.iface.lookup()
	if code == exitUsage {
		return usageError(stderr, "get", err.Error())
	}
	if err != nil {
		return f.fail(stderr, code, err)
	}
	if len(f.nameservers) > 0 {
		f.dnsViaIface = true
	}
	client, stopClient, code, err := newClient(link, &f, hostIsIP(rawURL))
	if code == exitUsage {
		return usageError(stderr, "get", message(err))
	}
	if err != nil {
		return f.fail(stderr, code, err)
	}
	defer stopClient()

	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	if f.maxTime > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.maxTime)
		defer cancel()
	}
	if f.verbose {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(ci httptrace.GotConnInfo) {
				fmt.Fprintf(stderr, "ifbind get: connected %v -> %v through %v\n",
					ci.Conn.LocalAddr(), ci.Conn.RemoteAddr(), through(ci.Conn, link))
			},
		})
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return usageError(stderr, "get", err.Error())
	}
	req.Header.Set("User-Agent", "ifbind")
	if len(f.data) > 0 {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if msg := setHeaders(req, f.headers); msg != "" {
		return usageError(stderr, "get", msg)
	}
	if _, err := proxyOf(link)(req); err != nil { // before any connection
		var use *usageErr
		if errors.As(err, &use) {
			return usageError(stderr, "get", err.Error())
		}
		return usageError(stderr, "get", "the proxy of the environment: "+err.Error())
	}
	t := &transfer{f: &f, link: link, ctx: ctx, req: req, stdout: stdout, stderr: stderr}
	resp, err := client.Do(req)
	if err != nil {
		return t.failed(err)
	}
	defer resp.Body.Close()
	t.resp = resp
	if f.verbose {
		fmt.Fprintf(stderr, "ifbind get: %s %s\n", resp.Proto, resp.Status)
	}
	return t.write()
}

// checkURL returns what is wrong with the URL of get, or "".
func checkURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return message(err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("URL %q: want http:// or https://", raw)
	case u.Hostname() == "":
		return fmt.Sprintf("URL %q: no host", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("URL %q: port %s is not from 1 to 65535", raw, p)
		}
	}
	return ""
}

// request returns the method and body that f asks for. The error is a
// usage error (code exitUsage), or a file that cannot be read (exitLocal).
func (f *getFlags) request(stdin io.Reader) (method string, body io.Reader, code int, err error) {
	method = f.method
	switch {
	case f.head && method != "" && method != http.MethodHead:
		return "", nil, exitUsage, fmt.Errorf("-I asks with HEAD: drop -X %s", method)
	case f.head && len(f.data) > 0:
		return "", nil, exitUsage, errors.New("-I asks with HEAD, which sends no body: drop -d")
	case f.head:
		method = http.MethodHead
	case method == "" && len(f.data) > 0:
		method = http.MethodPost
	case method == "":
		method = http.MethodGet
	}
	if !isToken(method) { // a token, as a method must be
		return "", nil, exitUsage, fmt.Errorf("-X %q: not a method", method)
	}
	if len(f.data) == 0 {
		return method, nil, exitOK, nil
	}
	var parts [][]byte
	for _, d := range f.data {
		name, isFile := strings.CutPrefix(d, "@")
		if !isFile {
			parts = append(parts, []byte(d))
			continue
		}
		var b []byte
		if name == "-" {
			b, err = io.ReadAll(stdin)
		} else {
			b, err = os.ReadFile(name)
		}
		if err != nil {
			return "", nil, exitLocal, fmt.Errorf("-d %s: %w", d, err)
		}
		parts = append(parts, b)
	}
	return method, bytes.NewReader(bytes.Join(parts, []byte("&"))), exitOK, nil
}

// setHeaders sets the headers of -H on req, and returns what is wrong with
// one, or "".
func setHeaders(req *http.Request, headers []string) string {
	set := map[string]bool{} // the first -H of a name replaces a default
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case !ok || !isToken(name):
			return fmt.Sprintf("-H %q: want 'NAME: VALUE'", h)
		case strings.ContainsFunc(value, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }):
			return fmt.Sprintf("-H %q: the value holds a control character", h)
		case value == "" && http.CanonicalHeaderKey(name) == "User-Agent":
			req.Header["User-Agent"] = []string{""} // net/http's own default otherwise
		case value == "":
			req.Header.Del(name)
		case strings.EqualFold(name, "Host"):
			req.Host = value
		case set[http.CanonicalHeaderKey(name)]:
			req.Header.Add(name, value)
		default:
			req.Header.Set(name, value)
			set[http.CanonicalHeaderKey(name)] = true
		}
	}
	return ""
}

// isToken reports whether s is an HTTP token (RFC 9110), as a method and
// a header name must be.
func isToken(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r))
	})
}

// A transfer is a request of get under way: it writes the response, and
// reports its failure.
type transfer struct {
	f              *getFlags
	link           ifbind.Link
	ctx            context.Context
	req            *http.Request
	resp           *http.Response // nil until the response came
	received       int64          // bytes of the body read
	stdout, stderr io.Writer
}

// fail prints err, unless -s without -S, and returns code.
func (f *getFlags) fail(stderr io.Writer, code int, err error) int {
	if f.silent && !f.show {
		return code
	}
	return fail(stderr, "get", code, err)
}

// failed reports err, a failure of the request or of reading the body: it
// names the interface, and for a timeout, the limit that ended it and how
// much arrived.
func (t *transfer) failed(err error) int {
	var ue *url.Error
	where := t.req.Method + " " + t.req.URL.Redacted()
	if errors.As(err, &ue) {
		err = ue.Err
		if u, perr := url.Parse(ue.URL); perr == nil {
			where = t.req.Method + " " + u.Redacted() // a redirect's, perhaps
		}
	}
	if isList(t.f.iface.spec) {
		where += " through " + t.f.iface.spec // the error names each
	} else {
		where += " through " + t.link.String()
	}
	if t.ctx.Err() != nil && !errors.Is(t.ctx.Err(), context.DeadlineExceeded) {
		return t.f.fail(t.stderr, exitInterrupted, errors.New("interrupted"))
	}
	var ne net.Error
	var oe *net.OpError
	var use *usageErr
	switch {
	case errors.As(err, &use):
		return t.f.fail(t.stderr, exitUsage, fmt.Errorf("%s: %w", where, use.err))
	case errors.Is(t.ctx.Err(), context.DeadlineExceeded):
		return t.f.fail(t.stderr, exitNetwork, fmt.Errorf("%s: timed out after %v (--max-time), %s",
			where, t.f.maxTime, t.got()))
	case errors.As(err, &oe) && (oe.Op == "dial" || oe.Op == "proxyconnect") && oe.Timeout():
		to := ""
		if p := t.proxy(ue); p != nil {
			to = " to the proxy " + p.Redacted()
		}
		return t.f.fail(t.stderr, exitNetwork, fmt.Errorf("%s: timed out connecting%s after %v (--connect-timeout): %w",
			where, to, t.f.connectTimeout, err))
	case errors.As(err, &ne) && ne.Timeout() && strings.Contains(err.Error(), "TLS handshake"):
		return t.f.fail(t.stderr, exitNetwork, fmt.Errorf("%s: timed out in the TLS handshake after %v (--connect-timeout)",
			where, t.f.connectTimeout))
	}
	return t.f.fail(t.stderr, exitCode(err), fmt.Errorf("%s: %w", where, err))
}

// proxy returns the proxy of the request that failed with ue (a redirect's,
// perhaps), or of t.req when ue is nil, or nil when there is none.
func (t *transfer) proxy(ue *url.Error) *url.URL {
	u := t.req.URL
	if ue != nil {
		if pu, err := url.Parse(ue.URL); err == nil {
			u = pu
		}
	}
	p, err := http.ProxyFromEnvironment(&http.Request{URL: u})
	if err != nil {
		return nil
	}
	return p
}

// got says how much of the body arrived.
func (t *transfer) got() string {
	switch {
	case t.resp == nil:
		return "before the response"
	case t.resp.ContentLength >= 0:
		return fmt.Sprintf("%s of %s bytes of the body received", group(t.received), group(t.resp.ContentLength))
	}
	return fmt.Sprintf("%s bytes of the body received", group(t.received))
}

// Read reads the body, counting it.
func (t *transfer) Read(p []byte) (int, error) {
	n, err := t.resp.Body.Read(p)
	t.received += int64(n)
	return n, err
}

// binaryPeek bounds how much of the body is looked at for a NUL byte
// before it is written to a terminal: the first chunk that arrives.
const binaryPeek = 4 << 10

// write writes the response as f asks, and returns the exit code.
func (t *transfer) write() int {
	f, resp := t.f, t.resp
	if f.head || f.include {
		fmt.Fprintf(t.stdout, "%s %s\r\n", resp.Proto, resp.Status)
		resp.Header.Write(t.stdout)
		fmt.Fprint(t.stdout, "\r\n")
	}
	httpFailed := resp.StatusCode >= 400
	if f.head || httpFailed && f.failHTTP {
		return t.status()
	}
	body := bufio.NewReaderSize(t, binaryPeek)
	if f.out == "" && isTerminal(t.stdout) {
		body.Peek(1) // the first chunk, as curl looks at
		if head, _ := body.Peek(body.Buffered()); bytes.IndexByte(head, 0) >= 0 {
			return f.fail(t.stderr, exitLocal, fmt.Errorf("%s: the body looks binary (Content-Type %q): not written to the terminal; use -o FILE, or -o - to write it there anyway",
				t.req.URL.Redacted(), resp.Header.Get("Content-Type")))
		}
	}
	var w io.Writer = t.stdout
	var out *partFile
	if f.out != "" && f.out != "-" {
		var err error
		if out, err = createPart(f.out); err != nil {
			return f.fail(t.stderr, exitLocal, fmt.Errorf("-o %s: %w", f.out, err))
		}
		defer out.abort()
		w = out.file
		if isTerminal(t.stderr) && !f.silent {
			p := newProgress(t.stderr, resp.ContentLength)
			defer p.done()
			w = io.MultiWriter(w, p)
		}
	}
	if _, err := io.Copy(markedWriter{w}, body); err != nil {
		var we *writeError
		if errors.As(err, &we) {
			return f.fail(t.stderr, exitLocal, we.err)
		}
		code := t.failed(err)
		if out != nil && !f.silent {
			fmt.Fprintf(t.stderr, "ifbind get: removed the partial download (%s bytes); %s is as it was\n", group(t.received), f.out)
		}
		return code
	}
	if out != nil {
		if err := out.commit(); err != nil {
			return f.fail(t.stderr, exitLocal, err)
		}
	}
	return t.status()
}

// status returns the exit code of a response written: exitHTTP for a
// status of 400 or more, which it reports.
func (t *transfer) status() int {
	if t.resp.StatusCode < 400 {
		return exitOK
	}
	if !t.f.silent || t.f.show {
		fmt.Fprintf(t.stderr, "ifbind get: %s: %s\n", t.req.URL.Redacted(), t.resp.Status)
	}
	return exitHTTP
}

// A partFile is the file -o FILE is written through: a hidden file beside
// FILE, renamed to FILE once complete, or FILE itself when it exists and
// is not a regular file (a device, a pipe), which cannot be replaced.
type partFile struct {
	file       *os.File
	name, part string // part is "" when file is FILE itself
}

func createPart(name string) (*partFile, error) {
	fi, statErr := os.Stat(name)
	if statErr == nil && !fi.Mode().IsRegular() {
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_TRUNC, 0)
		return &partFile{file: f, name: name}, err
	}
	part := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+"."+strconv.Itoa(os.Getpid())+".part")
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return nil, err
	}
	if statErr == nil {
		f.Chmod(fi.Mode().Perm()) // FILE keeps its permissions
	}
	return &partFile{file: f, name: name, part: part}, nil
}

// commit closes the file and renames it to its name.
func (p *partFile) commit() error {
	err := p.file.Close()
	if err == nil && p.part != "" {
		err = os.Rename(p.part, p.name)
	}
	if err == nil {
		p.part = ""
	}
	return err
}

// abort removes the file unless commit renamed it.
func (p *partFile) abort() {
	p.file.Close()
	if p.part != "" {
		os.Remove(p.part)
	}
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
func newClient(link ifbind.Link, f *getFlags, ipURL bool) (c *http.Client, stop func(), code int, err error) {
	var d *ifbind.Dialer      // the settings of every dial
	var bd ifbind.BoundDialer // what dials: d itself, or the uplinks d is the template of
	if isList(f.iface.spec) {
		var u *ifbind.Uplinks
		if u, stop, code, err = newUplinks(f); err != nil {
			return nil, nil, code, err
		}
		d, bd = &u.Dialer, u
	} else {
		if d, err = f.iface.dialer(link); err != nil {
			return nil, nil, exitLocal, err
		}
		stop = f.iface.close
		bd = d
	}
	c, code, err = newClientOf(link, d, bd, f, ipURL)
	if err != nil {
		stop()
		return nil, nil, code, err
	}
	return c, stop, exitOK, nil
}

// newClientOf returns an HTTP client whose connections bd dials, with d's
// settings (bd is d, or the *ifbind.Uplinks whose template d is). ipURL
// tells that the URL's host is an IP address, which needs no resolver.
func newClientOf(link ifbind.Link, d *ifbind.Dialer, bd ifbind.BoundDialer, f *getFlags, ipURL bool) (c *http.Client, code int, err error) {
	d.Timeout = f.connectTimeout
	var noResolver error // why names cannot be resolved, if they cannot
	if f.dnsViaIface {
		if bd != ifbind.BoundDialer(d) {
			return nil, exitUsage, errors.New("--dns-via-iface and --nameserver take one IFACE")
		}
		r, err := ifbind.NewResolver(d, f.nameservers...)
		switch {
		case err != nil && len(f.nameservers) > 0:
			return nil, exitUsage, fmt.Errorf("--nameserver %s: %w", f.nameservers.String(), err)
		case errors.Is(err, ifbind.ErrLoopbackNameserver):
			err = &usageErr{fmt.Errorf("--dns-via-iface: %w; name a nameserver that %v reaches with --nameserver ADDR", err, link)}
			if !ipURL {
				return nil, exitUsage, err
			}
			noResolver = err // fails only a name to resolve: a redirect's, a proxy's
		case err != nil:
			return nil, exitLocal, err
		}
		d.Resolver = r // before NewTransport, which copies d
	}
	t := ifbind.NewTransport(bd)
	if f.connectTimeout == 0 {
		d.KeepAlive = 30 * time.Second
		t.DialContext = bd.DialContext // NewTransport would give it 30 s
	}
	if noResolver != nil {
		dial := t.DialContext
		t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, _, err := net.SplitHostPort(addr); err == nil && !isIP(host) {
				return nil, &net.OpError{Op: "dial", Net: network, Err: noResolver}
			}
			return dial(ctx, network, addr)
		}
	}
	t.Proxy = proxyOf(link) // the proxy from the environment, as curl; never a loopback one
	t.TLSHandshakeTimeout = f.connectTimeout
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	t.TLSClientConfig.InsecureSkipVerify = f.insecure
	if f.cacert != "" {
		pem, err := os.ReadFile(f.cacert)
		if err != nil {
			return nil, exitLocal, fmt.Errorf("--cacert: %w", err)
		}
		t.TLSClientConfig.RootCAs = x509.NewCertPool()
		if !t.TLSClientConfig.RootCAs.AppendCertsFromPEM(pem) {
			return nil, exitLocal, fmt.Errorf("--cacert %s: no PEM certificate found", f.cacert)
		}
	}
	c = &http.Client{Transport: t}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		switch {
		case f.maxRedirs == 0:
			return http.ErrUseLastResponse // as curl without -L
		case len(via) > f.maxRedirs:
			return fmt.Errorf("stopped after %d redirects (--max-redirs)", f.maxRedirs)
		}
		return nil
	}
	return c, exitOK, nil
}

// nameservers are the values of --nameserver, each a nameserver or a
// comma-separated list of them, in order.
type nameservers []string

func (n *nameservers) String() string { return strings.Join(*n, ",") }

func (n *nameservers) Set(v string) error {
	for ns := range strings.SplitSeq(v, ",") {
		ns = strings.TrimSpace(ns)
		if ns == "" {
			return errors.New("want an IP address, or IP:port, or a list of them (a,b)")
		}
		*n = append(*n, ns)
	}
	return nil
}

// A usageErr is an error found once the request is under way that the
// command line could have avoided: it ends get with exitUsage.
type usageErr struct{ err error }

func (e *usageErr) Error() string { return e.err.Error() }
func (e *usageErr) Unwrap() error { return e.err }

// hostIsIP reports whether the host of rawURL, which checkURL accepted, is
// an IP address, which needs no name resolution.
func hostIsIP(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && isIP(u.Hostname())
}

func isIP(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// proxyOf returns the Proxy function of get's transport: the proxy that
// http.ProxyFromEnvironment picks for the request, as net/http would, but
// an error for one on loopback (127.0.0.0/8, ::1, localhost), which no
// packet sent through link reaches.
func proxyOf(link ifbind.Link) func(*http.Request) (*url.URL, error) {
	return func(req *http.Request) (*url.URL, error) {
		p, err := http.ProxyFromEnvironment(req)
		if err != nil || p == nil || !isLoopback(p.Hostname()) {
			return p, err
		}
		name := "HTTP_PROXY"
		if req.URL.Scheme == "https" {
			name = "HTTPS_PROXY"
		}
		if os.Getenv(name) == "" && os.Getenv(strings.ToLower(name)) != "" {
			name = strings.ToLower(name)
		}
		return nil, &usageErr{fmt.Errorf("%s %s: a proxy on loopback, which no packet sent through %v reaches; unset %s, or add %s to NO_PROXY",
			name, p.Redacted(), link, name, req.URL.Hostname())}
	}
}

// isLoopback reports whether host, a proxy's, is a loopback address or
// localhost.
func isLoopback(host string) bool {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().IsLoopback()
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}
