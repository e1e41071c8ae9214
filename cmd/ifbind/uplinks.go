package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/ifbind/ifbind"
)

// Several interfaces for get: -i eth0,wwan0 [--strategy race].

// isList reports whether the IFACE of -i names several interfaces.
func isList(iface string) bool { return strings.Contains(iface, ",") }

// parseStrategy reads --strategy.
func parseStrategy(s string) (ifbind.Strategy, error) {
	switch strings.ToLower(s) {
	case "", "fallback":
		return ifbind.Fallback, nil
	case "race":
		return ifbind.Race, nil
	}
	return 0, fmt.Errorf("--strategy %q: want fallback or race", s)
}

// newUplinks returns the uplinks of f's -i list, in order, with f's
// --strategy. Each is pinned through a link monitor, which tells which are
// usable; where there is no monitor (outside Linux), each is bound by its
// index and always tried. stop closes the monitor.
func newUplinks(f *getFlags) (u *ifbind.Uplinks, stop func(), code int, err error) {
	strategy, err := parseStrategy(f.strategy)
	if err != nil {
		return nil, nil, exitUsage, err
	}
	m, merr := ifbind.NewMonitorAt(context.Background(), f.iface.netns)
	stop = func() {
		if merr == nil {
			m.Close()
		}
	}
	u = &ifbind.Uplinks{Strategy: strategy}
	if merr != nil {
		u.Netns = f.iface.netns // the IndexBindings below name links there
	}
	for _, spec := range strings.Split(f.iface.spec, ",") {
		link, err := lookupIfaceIn(f.iface.netns, spec)
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
	return u, stop, exitOK, nil
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
