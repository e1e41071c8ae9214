package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/ifbind/ifbind"
)

const routeUsage = `Usage: ifbind route [flags] DEST

Print the interface ifbind would bind a socket to DEST to: the link the
routing table (main unless -table) sends DEST through, with the routes of
the excluded links taken out, as 'ip route get DEST' would answer if they
were deleted. It reads ifbind's own mirror of the table (Monitor.Route),
which RouteTo bindings use; rules (ip rule) are not followed.

Examples:
  ifbind route 192.0.2.10
  ifbind route -exclude-kinds tun,wireguard 2001:db8::1
  ifbind route -table 2022 -exclude tun0 198.51.100.7

Exit codes: 0 ok, 2 usage, 3 no usable route, 5 no route table here.
`

// defaultIface is the IFACE of get, dial and listen that names no link but
// the default route: each socket binds to the link of the best default
// route of its own family when it is made.
const defaultIface = "default"

func cmdRoute(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("route", routeUsage, stdout, stderr)
	table := fs.Int("table", 0, "the routing `TABLE` to read (0: main)")
	exclude := fs.String("exclude", "", "never bind to these links: a comma-separated `LIST` of IFACEs")
	kinds := fs.String("exclude-kinds", "", "never bind to links of these kinds: a comma-separated `LIST` such as tun,wireguard")
	netns := fs.String("netns", "", netnsUsage)
	pos, code, stop := fs.parse(args)
	if stop {
		return code
	}
	if len(pos) != 1 {
		return usageError(stderr, "route", "want one destination address")
	}
	dst, err := netip.ParseAddr(pos[0])
	if err != nil {
		return usageError(stderr, "route", fmt.Sprintf("%q is not an IP address", pos[0]))
	}
	f := ifbind.RouteFilter{Table: *table, Exclude: split(*exclude), ExcludeKinds: split(*kinds)}
	m, err := ifbind.NewMonitorAt(context.Background(), *netns)
	if err != nil {
		return fail(stderr, "route", exitCode(err), err)
	}
	defer m.Close()
	l, err := m.Route(dst, f)
	if err != nil {
		if errors.Is(err, ifbind.ErrNoRoute) {
			return fail(stderr, "route", exitInterface, err)
		}
		return fail(stderr, "route", exitUsage, err)
	}
	fmt.Fprintln(stdout, l)
	return exitOK
}

func split(list string) []string {
	if list == "" {
		return nil
	}
	return strings.Split(list, ",")
}

// routeBinding returns the binding of IFACE "default", with the exclusions
// of rf, in the network namespace netns ("" for this one), and a function
// that stops the monitor it reads.
func routeBinding(netns string, rf ifbind.RouteFilter) (ifbind.Binding, func(), error) {
	m, err := ifbind.NewMonitorAt(context.Background(), netns)
	if err != nil {
		return nil, nil, err
	}
	return m.DefaultRoute(rf), func() { m.Close() }, nil
}
