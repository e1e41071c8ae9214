//go:build !linux

package ifbind

import (
	"fmt"
	"net"
	"strconv"
)

// LinkByName returns the link with the given name, through
// net.InterfaceByName (there is no netlink outside Linux). A miss is an
// error that names the links whose names are close.
func LinkByName(name string) (Link, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		var near []string
		if ifis, lerr := net.Interfaces(); lerr == nil {
			near = closeNames(name, func(yield func(string) bool) {
				for _, ifi := range ifis {
					if !yield(ifi.Name) {
						return
					}
				}
			})
		}
		return Link{}, fmt.Errorf("ifbind: %w", &notFoundError{what: "named " + name, close: near, err: err})
	}
	return linkOfInterface(ifi), nil
}

// LinkByIndex returns the link with the given index, through
// net.InterfaceByIndex (there is no netlink outside Linux).
func LinkByIndex(index int) (Link, error) {
	if err := invalidIndex(index); err != nil {
		return Link{}, err
	}
	ifi, err := net.InterfaceByIndex(index)
	if err != nil {
		return Link{}, fmt.Errorf("ifbind: %w", &notFoundError{what: "with index " + strconv.Itoa(index), err: err})
	}
	return linkOfInterface(ifi), nil
}

// LinkByHardwareAddr returns the one link with the given hardware address,
// through net.Interfaces.
func LinkByHardwareAddr(mac net.HardwareAddr) (Link, error) {
	ifis, err := net.Interfaces()
	if err != nil {
		return Link{}, fmt.Errorf("ifbind: listing links: %w", err)
	}
	links := make([]Link, len(ifis))
	for i := range ifis {
		links[i] = linkOfInterface(&ifis[i])
	}
	return pickHardwareAddr(links, mac)
}

// LinkByAlias returns an error wrapping ErrUnsupported: links have aliases
// on Linux only.
func LinkByAlias(alias string) (Link, error) {
	return Link{}, fmt.Errorf("ifbind: link alias %q: %w", alias, unsupportedError("looking a link up by alias"))
}

func linkOfInterface(ifi *net.Interface) Link {
	return Link{Index: ifi.Index, Name: ifi.Name, HardwareAddr: ifi.HardwareAddr, Flags: ifi.Flags}
}
