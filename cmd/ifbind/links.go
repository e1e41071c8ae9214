package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/ifbind/ifbind"
)

// A linkInfo is one row of "ifbind links", and one object of its --json.
type linkInfo struct {
	Index     int      `json:"index"`
	Name      string   `json:"name"`
	AltNames  []string `json:"altnames"`
	State     string   `json:"state"` // the operational state, as ip link shows it
	MAC       mac      `json:"mac"`   // null in JSON, - in the table, for links without one
	MTU       int      `json:"mtu"`
	Type      string   `json:"type"`
	Addresses []string `json:"addresses"` // CIDR form
}

const linksUsage = `Usage: ifbind links [--json] [--netns NETNS]

Lists every network link of this network namespace, from netlink: index,
name, alternative names, operational state, MAC address and addresses, as
an aligned table, or with --json as a JSON array of objects with the keys
index, name, altnames, state, mac, mtu, type and addresses. A link
without a MAC address (loopback, tunnels) has "-" in the table and null
in JSON.

Any of index, name, altname and MAC can be given as IFACE to the other
commands.

Examples:
  ifbind links
  ifbind links --json | jq -r '.[] | select(.state == "up") | .name'
`

func cmdLinks(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("links", linksUsage, stdout, stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	netns := fs.String("netns", "", netnsUsage)
	pos, code, stop := fs.parse(args)
	if stop {
		return code
	}
	if len(pos) > 0 {
		return usageError(stderr, "links", "unexpected argument "+strconv.Quote(pos[0]))
	}
	links, err := listLinksIn(*netns)
	if err != nil {
		return fail(stderr, "links", exitInterface, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(links); err != nil {
			return fail(stderr, "links", exitLocal, err)
		}
		return exitOK
	}
	writeTable(stdout, links, "")
	return exitOK
}

// A mac is a hardware address, "" for none, which JSON says with null as
// the table says it with "-": "" would be a value (and true in jq).
type mac string

func (m mac) MarshalJSON() ([]byte, error) {
	if m == "" {
		return []byte("null"), nil
	}
	return json.Marshal(string(m))
}

// writeTable writes links as an aligned table, each line starting with
// indent.
func writeTable(w io.Writer, links []linkInfo, indent string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, indent+"INDEX\tNAME\tSTATE\tMAC\tADDRESSES\tALTNAMES")
	for _, l := range links {
		fmt.Fprintf(tw, "%s%d\t%s\t%s\t%s\t%s\t%s\n", indent, l.Index, l.Name, l.State,
			dash(string(l.MAC)), dash(strings.Join(l.Addresses, " ")), dash(strings.Join(l.AltNames, " ")))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// lookupIface returns the link spec names, or an *ifaceError that lists the
// links there are.
func lookupIface(spec string) (ifbind.Link, error) {
	if spec == defaultIface {
		return ifbind.Link{Name: defaultIface}, nil // dialerFor, listenConfigFor
	}
	l, err := ifbind.LookupLink(spec)
	if err == nil {
		return l, nil
	}
	links, _ := listLinks()
	return l, &ifaceError{spec: spec, err: err, links: links}
}
