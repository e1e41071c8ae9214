//go:build !linux

package ifbind

import (
	"bytes"
	"fmt"
	"net"
)

// LinkByName returns the link with the given name, through
// net.InterfaceByName (there is no netlink outside Linux).
func LinkByName(name string) (Link, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return Link{}, fmt.Errorf("ifbind: no link with name %q: %w", name, err)
	}
	return Link{Index: ifi.Index, Name: ifi.Name, HardwareAddr: ifi.HardwareAddr}, nil
}

// LinkByIndex returns the link with the given index, through
// net.InterfaceByIndex (there is no netlink outside Linux).
func LinkByIndex(index int) (Link, error) {
	if err := invalidIndex(index); err != nil {
		return Link{}, err
	}
	ifi, err := net.InterfaceByIndex(index)
	if err != nil {
		return Link{}, fmt.Errorf("ifbind: no link with index %d: %w", index, err)
	}
	return Link{Index: ifi.Index, Name: ifi.Name, HardwareAddr: ifi.HardwareAddr}, nil
}

// LinkByHardwareAddr returns the one link with the given hardware address,
// through net.Interfaces.
func LinkByHardwareAddr(mac net.HardwareAddr) (Link, error) {
	ifis, err := net.Interfaces()
	if err != nil {
		return Link{}, fmt.Errorf("ifbind: listing links: %w", err)
	}
	var found []Link
	for _, ifi := range ifis {
		if bytes.Equal(ifi.HardwareAddr, mac) {
			found = append(found, Link{Index: ifi.Index, Name: ifi.Name, HardwareAddr: ifi.HardwareAddr})
		}
	}
	switch len(found) {
	case 0:
		return Link{}, fmt.Errorf("ifbind: no link with hardware address %v", mac)
	case 1:
		return found[0], nil
	}
	return Link{}, fmt.Errorf("ifbind: hardware address %v is shared by %v: name one by name or index", mac, found)
}
