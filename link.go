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
	"sync"
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

	// MTU is the link's maximum transmission unit, in bytes.
	MTU int

	// Type is the link's kind as the kernel names it (IFLA_INFO_KIND:
	// "veth", "vlan", "bridge", "tun" for a tun or tap device,
	// "wireguard"), the names RouteFilter.ExcludeKinds takes; "" for a
	// physical NIC or loopback, and outside Linux.
	Type string
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
	case l.Index == 0:
		return l.Name // a name that resolved to no index (yet)
	}
	return l.Name + " (index " + strconv.Itoa(l.Index) + ")"
}

// LinkByName returns the link whose name or altname is name, in the calling
// thread's network namespace. On Linux it asks the kernel for that one link
// (RTM_GETLINK), and needs no privilege; elsewhere it lists the interfaces.
//
// A miss is an error for which errors.Is(err, syscall.ENODEV) holds. Its
// text names the links whose names are close, as in "ifbind: no link named
// eth1; did you mean eth0 or ens1?": so that a miss costs what a hit does,
// they are listed when the text is first read, and only if it is read on a
// thread in the network namespace of the lookup.
func LinkByName(name string) (Link, error) {
	return lookup(kernelLinks(), linkKey{kind: specName, name: name})
}

// LinkByIndex returns the link with the given index, in the calling thread's
// network namespace, asking the kernel for that one link on Linux. A miss is
// an error for which errors.Is(err, syscall.ENODEV) holds; an index that
// cannot name a link is a *BindError (syscall.EINVAL).
func LinkByIndex(index int) (Link, error) {
	if err := invalidIndex(index); err != nil {
		return Link{}, err
	}
	return lookup(kernelLinks(), linkKey{kind: specIndex, index: index})
}

// LinkByHardwareAddr returns the one link with the given hardware address,
// in the calling thread's network namespace. The kernel has no index by
// address, so this lists the links once. A miss is an error for which
// errors.Is(err, syscall.ENODEV) holds; an address that several links share
// (a VLAN and its parent, say) is an error (syscall.EINVAL) that names them.
func LinkByHardwareAddr(mac net.HardwareAddr) (Link, error) {
	return lookup(kernelLinks(), linkKey{kind: specHardwareAddr, mac: mac})
}

// LinkByAlias returns the one link whose alias (IFLA_IFALIAS) is alias, in
// the calling thread's network namespace, listing the links once. Its errors
// are those of LinkByHardwareAddr. Outside Linux it returns an error
// wrapping ErrUnsupported.
func LinkByAlias(alias string) (Link, error) {
	if !hasAliases {
		return Link{}, fmt.Errorf("ifbind: link alias %q: %w", alias, unsupportedError("looking a link up by alias"))
	}
	return lookup(kernelLinks(), linkKey{kind: specAlias, name: alias})
}

// LookupLink returns the link that spec names: a decimal index ("3"), a
// hardware address ("02:00:5e:10:00:01"), or else a name or alternative
// name ("eth0", "enp0s31f6"). It is the form command lines and
// configuration files take. Its errors are those of LinkByName,
// LinkByIndex and LinkByHardwareAddr.
func LookupLink(spec string) (Link, error) {
	k, err := parseLinkKey(spec)
	if err != nil {
		return Link{}, err
	}
	return lookup(kernelLinks(), k)
}

// Links returns every link of the calling thread's network namespace,
// ordered by index, listing them once (through netlink on Linux, where it
// needs no privilege; through net.Interfaces elsewhere).
func Links() ([]Link, error) {
	links, err := kernelLinks().links()
	if err != nil {
		return nil, fmt.Errorf("ifbind: listing links: %w", err)
	}
	return links, nil
}

// A linkSource is where lookups find links: the kernel, asked at each
// lookup (kernelLinks), or a Monitor's snapshot. The package's functions and
// the Monitor's methods all go through lookup, so that they answer alike and
// fail with the same errors.
type linkSource interface {
	// linkByName and linkByIndex return the link, nil when there is
	// none, or the failure to ask. The link must not be modified.
	linkByName(name string) (*Link, error)
	linkByIndex(index int) (*Link, error)
	// links returns every link, ordered by index.
	links() ([]Link, error)
	// later returns the source a not-found error lists close names from
	// when its text is read: the snapshot itself, or the kernel of the
	// namespace the lookup was made in.
	later() linkSource
}

type specKind int

const (
	specName specKind = iota
	specIndex
	specHardwareAddr
	specAlias
)

// A linkKey is what a lookup looks for.
type linkKey struct {
	kind  specKind
	name  string // specName, specAlias
	index int
	mac   net.HardwareAddr
}

func (k linkKey) String() string {
	switch k.kind {
	case specIndex:
		return "with index " + strconv.Itoa(k.index)
	case specHardwareAddr:
		return "with hardware address " + k.mac.String()
	case specAlias:
		return "with alias " + strconv.Quote(k.name)
	}
	return "named " + k.name
}

// lookup returns the link of src that k names.
func lookup(src linkSource, k linkKey) (Link, error) {
	var l *Link
	var err error
	switch k.kind {
	case specName:
		l, err = src.linkByName(k.name)
	case specIndex:
		l, err = src.linkByIndex(k.index)
	case specAlias:
		if k.name == "" {
			return Link{}, fmt.Errorf("ifbind: empty link alias (%w)", syscall.EINVAL)
		}
		fallthrough
	default:
		var links []Link
		if links, err = src.links(); err == nil {
			return pickOne(src, links, k)
		}
	}
	switch {
	case err != nil:
		return Link{}, fmt.Errorf("ifbind: looking up link %s: %w", k, err)
	case l == nil:
		return Link{}, notFound(src, k)
	}
	return *l, nil
}

// pickOne returns the one link of links with the hardware address or the
// alias k names.
func pickOne(src linkSource, links []Link, k linkKey) (Link, error) {
	var found []Link
	for _, l := range links {
		if k.kind == specAlias && l.Alias == k.name || k.kind == specHardwareAddr && bytes.Equal(l.HardwareAddr, k.mac) {
			found = append(found, l)
		}
	}
	switch len(found) {
	case 0:
		return Link{}, notFound(src, k)
	case 1:
		return found[0], nil
	}
	return Link{}, fmt.Errorf("ifbind: more than one link %s: %v; name one by name or index (%w)", k, found, syscall.EINVAL)
}

// parseLinkKey returns what spec names, as LookupLink reads it.
func parseLinkKey(spec string) (linkKey, error) {
	kind, index, mac, err := parseLinkSpec(spec)
	return linkKey{kind: kind, name: spec, index: index, mac: mac}, err
}

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

// A notFoundError reports that no link has what a lookup looked for. It is
// syscall.ENODEV for errors.Is. For a name, its text lists the names close
// to it, which it reads from src the first time the text is asked for, not
// when the lookup fails: a program that retries while its link is down pays
// for no listing.
type notFoundError struct {
	key linkKey
	src linkSource // where close names come from; nil for none
	// follow marks the miss of a Follow binding, whose *BindError names
	// the link and carries the "ifbind: " prefix.
	follow bool

	once sync.Once
	text string
}

// notFound returns the error of a lookup of k in src that found nothing.
func notFound(src linkSource, k linkKey) *notFoundError {
	k.mac = bytes.Clone(k.mac) // the caller's; read when the text is
	e := &notFoundError{key: k}
	if k.kind == specName {
		e.src = src.later()
	}
	return e
}

func (e *notFoundError) Error() string {
	e.once.Do(func() {
		var b strings.Builder
		if e.follow {
			b.WriteString("no link by that name")
		} else {
			b.WriteString("ifbind: no link ")
			b.WriteString(e.key.String())
		}
		if e.src != nil {
			if near := closeNames(e.key.name, e.src); len(near) > 0 {
				b.WriteString("; did you mean ")
				if n := len(near); n > 1 {
					b.WriteString(strings.Join(near[:n-1], ", "))
					b.WriteString(" or ")
				}
				b.WriteString(near[len(near)-1])
				b.WriteString("?")
			}
		}
		e.text = b.String()
	})
	return e.text
}

func (e *notFoundError) Unwrap() error { return syscall.ENODEV }

// maxClose bounds how many close names a notFoundError lists.
const maxClose = 3

// closeNames returns up to maxClose names and altnames of the links of src
// that are close to name: within a small edit distance, or extending it
// ("eth" for "eth0"), closest first. It returns none when src cannot be
// listed.
func closeNames(name string, src linkSource) []string {
	links, err := src.links()
	if err != nil {
		return nil
	}
	type cand struct {
		name string
		dist int
	}
	limit := min(1+len(name)/3, 3)
	var cands []cand
	for _, l := range links {
		for _, n := range append([]string{l.Name}, l.Altnames...) {
			if n == name {
				continue
			}
			d := editDistance(name, n, limit)
			if d > limit && !(len(name) >= 2 && strings.HasPrefix(n, name)) {
				continue
			}
			cands = append(cands, cand{n, d})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if a.dist != b.dist {
			return a.dist - b.dist
		}
		return strings.Compare(a.name, b.name)
	})
	cands = slices.CompactFunc(cands, func(a, b cand) bool { return a.name == b.name })
	var out []string
	for _, c := range cands[:min(len(cands), maxClose)] {
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
