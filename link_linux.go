package ifbind

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/vishvananda/netlink"
)

// The lookups below ask the kernel through a Handle of their own, never
// through the netlink package's shared one: a single netlink.LinkByAlias
// call anywhere in the process (the kernel answers EINVAL to a lookup by
// alias) switches that shared handle to dumping every link for every later
// lookup by name. A zero Handle opens its socket per request, in the calling
// thread's network namespace, as the package functions do.

// LinkByName returns the link with the given name or alternative name
// (altname), asking the kernel through netlink for that one link
// (RTM_GETLINK with IFLA_IFNAME, or IFLA_ALT_IFNAME for names longer than 15
// bytes, which only altnames can be), in the calling thread's network
// namespace. It needs no privilege.
//
// A miss is an error for which errors.Is(err, syscall.ENODEV) holds, and
// which names the links whose names are close, as in "ifbind: no link named
// eth1; did you mean eth0 or ens1?"; only a miss lists the links, to find them.
func LinkByName(name string) (Link, error) {
	l, err := new(netlink.Handle).LinkByName(name)
	if err != nil {
		if !isNotFound(err) {
			return Link{}, fmt.Errorf("ifbind: looking up link named %q: %w", name, err)
		}
		return Link{}, fmt.Errorf("ifbind: %w", nameNotFound(name))
	}
	return linkOf(l), nil
}

// nameNotFound returns the error for a name no link has, with the names of
// the links close to it, listed once.
func nameNotFound(name string) error {
	var near []string
	if links, err := new(netlink.Handle).LinkList(); err == nil || errors.Is(err, netlink.ErrDumpInterrupted) {
		near = closeNames(name, func(yield func(string) bool) {
			for _, l := range links {
				a := l.Attrs()
				if !yield(a.Name) {
					return
				}
				for _, alt := range a.AltNames {
					if !yield(alt) {
						return
					}
				}
			}
		})
	}
	return &notFoundError{what: "named " + name, close: near, err: syscall.ENODEV}
}

// LinkByIndex returns the link with the given index, asking the kernel
// through netlink for that one link, in the calling thread's network
// namespace. A miss is an error for which errors.Is(err, syscall.ENODEV)
// holds.
func LinkByIndex(index int) (Link, error) {
	if err := invalidIndex(index); err != nil {
		return Link{}, err
	}
	l, err := new(netlink.Handle).LinkByIndex(index)
	if err != nil {
		if isNotFound(err) {
			return Link{}, fmt.Errorf("ifbind: %w", &notFoundError{what: "with index " + strconv.Itoa(index), err: syscall.ENODEV})
		}
		return Link{}, fmt.Errorf("ifbind: looking up link with index %d: %w", index, err)
	}
	return linkOf(l), nil
}

// LinkByHardwareAddr returns the one link with the given hardware address,
// in the calling thread's network namespace. The kernel has no index by
// address, so this lists the links once. A miss is an error for which
// errors.Is(err, syscall.ENODEV) holds; an address that several links share
// (a VLAN and its parent, say) is an error that names them.
func LinkByHardwareAddr(mac net.HardwareAddr) (Link, error) {
	links, err := listLinks()
	if err != nil {
		return Link{}, err
	}
	return pickHardwareAddr(links, mac)
}

// LinkByAlias returns the one link whose alias (IFLA_IFALIAS, as set by `ip
// link set dev eth0 alias uplink`) is alias, in the calling thread's network
// namespace. The kernel has no index by alias, so this lists the links once.
// A miss is an error for which errors.Is(err, syscall.ENODEV) holds; an alias
// that several links share is an error that names them. Outside Linux it
// returns an error wrapping ErrUnsupported.
func LinkByAlias(alias string) (Link, error) {
	if alias == "" {
		return Link{}, fmt.Errorf("ifbind: empty link alias (%w)", syscall.EINVAL)
	}
	links, err := listLinks()
	if err != nil {
		return Link{}, err
	}
	return pickAlias(links, alias)
}

// listLinks dumps the links of the calling thread's network namespace,
// again when the dump was interrupted by a change.
func listLinks() ([]Link, error) {
	var err error
	for range 3 {
		var ls []netlink.Link
		ls, err = new(netlink.Handle).LinkList()
		if err == nil {
			links := make([]Link, len(ls))
			for i, l := range ls {
				links[i] = linkOf(l)
			}
			return links, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, fmt.Errorf("ifbind: listing links: %w", err)
}

// linkOf copies what a Link holds out of l. The hardware address is copied
// too: netlink hands out a slice of the message it read, which the monitor
// reuses and which would otherwise stay alive as long as the Link.
func linkOf(l netlink.Link) Link {
	a := l.Attrs()
	var hw net.HardwareAddr
	if len(a.HardwareAddr) > 0 {
		hw = bytes.Clone(a.HardwareAddr)
	}
	return Link{
		Index:        a.Index,
		Name:         a.Name,
		HardwareAddr: hw,
		Altnames:     a.AltNames,
		Alias:        a.Alias,
		Flags:        a.Flags,
	}
}

// isNotFound reports whether netlink answered that the link does not exist.
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, syscall.ENODEV)
}
