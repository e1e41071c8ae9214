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

// LinkByName returns the link with the given name or alternative name
// (altname), asking the kernel through netlink for that one link, in the
// calling thread's network namespace. A miss is an error for which
// errors.Is(err, syscall.ENODEV) holds.
func LinkByName(name string) (Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return Link{}, linkError("name "+strconv.Quote(name), err)
	}
	return linkOf(l), nil
}

// LinkByIndex returns the link with the given index, asking the kernel
// through netlink, in the calling thread's network namespace. A miss is an
// error for which errors.Is(err, syscall.ENODEV) holds.
func LinkByIndex(index int) (Link, error) {
	if err := invalidIndex(index); err != nil {
		return Link{}, err
	}
	l, err := netlink.LinkByIndex(index)
	if err != nil {
		return Link{}, linkError("index "+strconv.Itoa(index), err)
	}
	return linkOf(l), nil
}

func linkOf(l netlink.Link) Link {
	a := l.Attrs()
	return Link{Index: a.Index, Name: a.Name, HardwareAddr: a.HardwareAddr}
}

// linkError turns netlink's answer for a missing link into one that unwraps
// to ENODEV.
func linkError(what string, err error) error {
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) || errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("ifbind: no link with %s: %w", what, syscall.ENODEV)
	}
	return fmt.Errorf("ifbind: looking up link with %s: %w", what, err)
}

// LinkByHardwareAddr returns the one link with the given hardware address.
// The kernel has no index by address, so this lists the links once. A miss
// is an error for which errors.Is(err, syscall.ENODEV) holds; an address
// that several links share (a VLAN and its parent, say) is an error that
// names them.
func LinkByHardwareAddr(mac net.HardwareAddr) (Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return Link{}, fmt.Errorf("ifbind: listing links: %w", err)
	}
	var found []Link
	for _, l := range links {
		if bytes.Equal(l.Attrs().HardwareAddr, mac) {
			found = append(found, linkOf(l))
		}
	}
	switch len(found) {
	case 0:
		return Link{}, fmt.Errorf("ifbind: no link with hardware address %v: %w", mac, syscall.ENODEV)
	case 1:
		return found[0], nil
	}
	return Link{}, fmt.Errorf("ifbind: hardware address %v is shared by %v: name one by name or index", mac, found)
}
