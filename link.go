package ifbind

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// A Link is a network interface as it was when it was looked up: its index,
// which is what a Dialer or ListenConfig binds to, and the names, hardware
// address, alias and flags it had then. A Link is a plain value, safe to copy
// and share, but its slices are shared with the Monitor it came from: do not
// modify them. It does not follow later changes to the interface. The zero
// Link names no interface: a Dialer given its Index (0) fails every dial.
type Link struct {
	Index        int
	Name         string
	HardwareAddr net.HardwareAddr // nil for links without one, such as loopback

	// Altnames are the link's alternative names (Linux 5.5, `ip link
	// property add dev eth0 altname wan0`), which look it up as its Name
	// does. Empty outside Linux.
	Altnames []string

	// Alias is the link's free-form description (`ip link set dev eth0
	// alias uplink`, IFLA_IFALIAS), "" for none. Always "" outside Linux.
	Alias string

	// Flags are the link's flags as net.Interface reports them: FlagUp is
	// set when the link is administratively up, FlagRunning when it is
	// also operationally up (it has carrier).
	Flags net.Flags
}

// Up reports whether the link is administratively up and has carrier
// (net.FlagUp and net.FlagRunning), that is, whether it can carry traffic.
func (l Link) Up() bool {
	const up = net.FlagUp | net.FlagRunning
	return l.Flags&up == up
}

// String returns the link's name and index, as in "eth0 (index 2)"; a link
// without a name is "index 2", and the zero Link "no link".
func (l Link) String() string {
	switch {
	case l.Name == "" && l.Index == 0:
		return "no link"
	case l.Name == "":
		return "index " + strconv.Itoa(l.Index)
	}
	return l.Name + " (index " + strconv.Itoa(l.Index) + ")"
}

// LookupLink returns the link that spec names: a decimal index ("3"), a
// hardware address ("02:00:5e:10:00:01"), or else a name or alternative
// name ("eth0", "enp0s31f6"). It is the form command lines and
// configuration files take. A spec that names no link is an error for
// which errors.Is(err, syscall.ENODEV) holds on Linux.
func LookupLink(spec string) (Link, error) {
	kind, index, mac, err := parseLinkSpec(spec)
	if err != nil {
		return Link{}, err
	}
	switch kind {
	case specIndex:
		return LinkByIndex(index)
	case specHardwareAddr:
		return LinkByHardwareAddr(mac)
	}
	return LinkByName(spec)
}

type specKind int

const (
	specName specKind = iota
	specIndex
	specHardwareAddr
)

// parseLinkSpec tells which kind of link spec is: all digits make an index,
// a MAC-48 or EUI-64 in colon or hyphen form a hardware address, anything
// else that is a valid interface name a name.
func parseLinkSpec(spec string) (kind specKind, index int, mac net.HardwareAddr, err error) {
	if spec == "" {
		return 0, 0, nil, errors.New("ifbind: empty link spec")
	}
	if isDigits(spec) {
		index, err := strconv.Atoi(spec)
		if err != nil || index <= 0 || index > math.MaxInt32 {
			return 0, 0, nil, fmt.Errorf("ifbind: link spec %q: not a valid interface index", spec)
		}
		return specIndex, index, nil, nil
	}
	if strings.ContainsAny(spec, ":-") {
		if mac, err := net.ParseMAC(spec); err == nil && !strings.Contains(spec, ".") {
			return specHardwareAddr, 0, mac, nil
		}
	}
	// Linux names hold no '/', ':' or white space, and are not "." or
	// "..". A name is at most 15 bytes, an altname at most 127.
	if len(spec) > 127 || strings.ContainsAny(spec, "/: \t\n\v\f\r\x00") || spec == "." || spec == ".." {
		return 0, 0, nil, fmt.Errorf("ifbind: link spec %q: not a valid interface name", spec)
	}
	return specName, 0, nil, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// A notFoundError reports that no link has a name (or alias, or address),
// with the names of links close to it, if any. It unwraps to ENODEV.
type notFoundError struct {
	what  string   // "named eth1", "with index 3"
	close []string // the names close to the one looked up
	err   error    // syscall.ENODEV, or what the platform answered
}

func (e *notFoundError) Error() string {
	s := "no link " + e.what
	if n := len(e.close); n > 0 {
		s += "; did you mean "
		if n > 1 {
			s += strings.Join(e.close[:n-1], ", ") + " or "
		}
		s += e.close[n-1] + "?"
	}
	return s
}

func (e *notFoundError) Unwrap() error { return e.err }

// maxClose bounds how many close names a notFoundError lists.
const maxClose = 3

// closeNames returns up to maxClose of the names that are close to name:
// within a small edit distance, or extending it ("eth" for "eth0"), closest
// first. names may repeat.
func closeNames(name string, names func(yield func(string) bool)) []string {
	type cand struct {
		name string
		dist int
	}
	limit := 1 + len(name)/3
	if limit > 3 {
		limit = 3
	}
	var cands []cand
	for n := range names {
		if n == name {
			continue
		}
		d := editDistance(name, n, limit)
		if d > limit && !(len(name) >= 2 && strings.HasPrefix(n, name)) {
			continue
		}
		cands = append(cands, cand{n, d})
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if a.dist != b.dist {
			return a.dist - b.dist
		}
		return strings.Compare(a.name, b.name)
	})
	cands = slices.CompactFunc(cands, func(a, b cand) bool { return a.name == b.name })
	var out []string
	for _, c := range cands {
		if len(out) == maxClose {
			break
		}
		out = append(out, c.name)
	}
	return out
}

// editDistance returns the Levenshtein distance between a and b, or a value
// above limit as soon as it is known to exceed it.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		best := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			best = min(best, cur[j])
		}
		if best > limit {
			return limit + 1
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// pickHardwareAddr returns the one link of links with address mac.
func pickHardwareAddr(links []Link, mac net.HardwareAddr) (Link, error) {
	return pickOne(links, "hardware address "+mac.String(), func(l *Link) bool {
		return bytes.Equal(l.HardwareAddr, mac)
	})
}

// pickAlias returns the one link of links with the alias.
func pickAlias(links []Link, alias string) (Link, error) {
	return pickOne(links, "alias "+strconv.Quote(alias), func(l *Link) bool {
		return l.Alias == alias
	})
}

func pickOne(links []Link, what string, match func(*Link) bool) (Link, error) {
	var found []Link
	for i := range links {
		if match(&links[i]) {
			found = append(found, links[i])
		}
	}
	switch len(found) {
	case 0:
		return Link{}, fmt.Errorf("ifbind: %w", &notFoundError{what: "with " + what, err: syscall.ENODEV})
	case 1:
		return found[0], nil
	}
	return Link{}, fmt.Errorf("ifbind: %s is shared by %v: name one by name or index (%w)", what, found, syscall.EINVAL)
}
