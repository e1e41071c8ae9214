package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/ifbind/ifbind"
)

// Several interfaces for get: -i eth0,wwan0 [--strategy race].

// isList reports whether the IFACE of -i names several interfaces.
func isList(iface string) bool { return strings.Contains(iface, ",") }

// parseStrategy reads --strategy.
func parseStrategy(s string) (ifbind.Strategy, error) {
	switch s {
	case "", "fallback":
		return ifbind.Fallback, nil
	case "race":
		return ifbind.Race, nil
	}
	return 0, fmt.Errorf("--strategy %q: want fallback or race", s)
}

// newUplinksClient returns an HTTP client that fails over between the
// interfaces of f.iface, in order, as f.strategy says. Each is pinned
// through a link monitor, which tells which are usable; where there is no
// monitor (outside Linux), each is bound by its index and always tried.
// stop closes the monitor.
func newUplinksClient(f *getFlags) (c *http.Client, stop func(), code int, err error) {
	strategy, err := parseStrategy(f.strategy)
	if err != nil {
		return nil, nil, exitUsage, err
	}
	if f.dnsViaIface {
		return nil, nil, exitUsage, errors.New("--dns-via-iface and --nameserver take one IFACE")
	}
	m, merr := ifbind.NewMonitor(context.Background())
	stop = func() {
		if merr == nil {
			m.Close()
		}
	}
	u := &ifbind.Uplinks{Strategy: strategy}
	for _, spec := range strings.Split(f.iface, ",") {
		link, err := lookupIface(spec)
		if err != nil {
			stop()
			return nil, nil, exitInterface, err
		}
		var b ifbind.Binding = ifbind.IndexBinding(link.Index)
		if merr == nil {
			if b, err = m.Pin(strconv.Itoa(link.Index)); err != nil {
				stop()
				return nil, nil, exitInterface, err
			}
		}
		u.Bindings = append(u.Bindings, b)
	}
	c, code, err = transportClient(u, f)
	if err != nil {
		stop()
		return nil, nil, code, err
	}
	return c, stop, exitOK, nil
}

// through names the interface conn went through, for -v: the one its
// socket is bound to, or else link.
func through(conn net.Conn, link ifbind.Link) ifbind.Link {
	if nc, ok := conn.(interface{ NetConn() net.Conn }); ok { // TLS
		conn = nc.NetConn()
	}
	if l, ok := ifbind.UplinkOf(conn); ok {
		return l
	}
	return link
}
