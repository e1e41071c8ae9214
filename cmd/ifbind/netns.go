package main

import (
	"context"

	"github.com/ifbind/ifbind"
)

// netnsUsage is the help of --netns, which links, get, dial and listen
// take.
const netnsUsage = "work in the network namespace `NETNS`, a name under /run/netns or a path such as /proc/PID/ns/net, " +
	"as ip netns exec does but without re-executing: IFACE, the links and every socket are that namespace's " +
	"(needs CAP_SYS_ADMIN over it: root, or a user namespace that owns it)"

// lookupIfaceIn is lookupIface in the network namespace netns, "" for
// this one, through a Monitor of that namespace.
func lookupIfaceIn(netns, spec string) (ifbind.Link, error) {
	if netns == "" {
		return lookupIface(spec)
	}
	m, err := ifbind.NewMonitorAt(context.Background(), netns)
	if err != nil {
		return ifbind.Link{}, err
	}
	defer m.Close()
	l, err := m.LookupLink(spec)
	if err == nil {
		return l, nil
	}
	links, _ := listLinksIn(netns)
	return l, &ifaceError{spec: spec, err: err, links: links}
}
