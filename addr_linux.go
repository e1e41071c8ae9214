package ifbind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// addrGroups are the multicast groups of address events, which the
// monitor's one socket joins beside the link group.
const addrGroups = unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR

// An addrEdit changes an addrTable copy on write: the table a published
// snapshot holds is never modified.
type addrEdit struct {
	cur  addrTable // the published table
	next addrTable // its copy, once a change was made
}

// changed reports whether a change was made.
func (a *addrEdit) changed() bool { return a.next != nil }

// table returns the table with the changes made so far.
func (a *addrEdit) table() addrTable {
	if a.next != nil {
		return a.next
	}
	return a.cur
}

func (a *addrEdit) mut() addrTable {
	if a.next == nil {
		a.next = maps.Clone(a.cur)
		if a.next == nil {
			a.next = addrTable{}
		}
	}
	return a.next
}

// dropLink forgets the addresses of a deleted link.
func (a *addrEdit) dropLink(index int) {
	if _, ok := a.table()[index]; ok {
		delete(a.mut(), index)
	}
}

// apply applies msg when it is an address event: handled is false for any
// other message, ok false for an address event it could not read.
func (a *addrEdit) apply(msg *syscall.NetlinkMessage) (handled, ok bool) {
	typ := msg.Header.Type
	if typ != unix.RTM_NEWADDR && typ != unix.RTM_DELADDR {
		return false, true
	}
	index, ad, ok := parseAddrMsg(msg)
	if !ok {
		return true, false
	}
	if !ad.addr.IsValid() {
		return true, true // a family the table does not hold
	}
	old := a.table()[index]
	i := slices.IndexFunc(old, func(x ifAddr) bool { return x.addr == ad.addr && x.bits == ad.bits })
	var addrs []ifAddr
	switch {
	case typ == unix.RTM_DELADDR && i < 0:
		return true, true
	case typ == unix.RTM_DELADDR:
		addrs = slices.Delete(slices.Clone(old), i, i+1)
	case i < 0:
		addrs = append(slices.Clone(old), ad)
	default:
		addrs = slices.Clone(old)
		addrs[i] = ad
	}
	t := a.mut()
	if len(addrs) == 0 {
		delete(t, index)
	} else {
		t[index] = addrs
	}
	return true, true
}

// parseAddrMsg reads an RTM_NEWADDR or RTM_DELADDR message. An address of
// another family than IPv4 or IPv6 comes back invalid.
func parseAddrMsg(msg *syscall.NetlinkMessage) (index int, ad ifAddr, ok bool) {
	if len(msg.Data) < unix.SizeofIfAddrmsg {
		return 0, ifAddr{}, false
	}
	family, bits, flags := msg.Data[0], int(msg.Data[1]), uint32(msg.Data[2])
	index = int(binary.NativeEndian.Uint32(msg.Data[4:8]))
	attrs, err := syscall.ParseNetlinkRouteAttr(msg)
	if err != nil {
		return 0, ifAddr{}, false
	}
	var address, local []byte
	for _, at := range attrs {
		switch at.Attr.Type {
		case unix.IFA_ADDRESS:
			address = at.Value
		case unix.IFA_LOCAL:
			local = at.Value
		case unix.IFA_FLAGS:
			if len(at.Value) >= 4 {
				flags = binary.NativeEndian.Uint32(at.Value)
			}
		}
	}
	if family != unix.AF_INET && family != unix.AF_INET6 {
		return index, ifAddr{}, true
	}
	// IFA_LOCAL is the link's own address; IFA_ADDRESS the peer's on a
	// point-to-point IPv4 link. IPv6 has only IFA_ADDRESS.
	if local != nil {
		address = local
	}
	ip, okIP := netip.AddrFromSlice(address)
	if !okIP {
		return 0, ifAddr{}, false
	}
	return index, ifAddr{addr: ip.Unmap(), bits: bits, flags: flags}, true
}

// dumpAddrs lists the addresses of every link through h.
func dumpAddrs(h *netlink.Handle) (addrTable, error) {
	var list []netlink.Addr
	var err error
	for range dumpTries {
		list, err = h.AddrList(nil, netlink.FAMILY_ALL)
		if err == nil {
			break
		}
	}
	if errors.Is(err, netlink.ErrDumpInterrupted) {
		err = nil // as for links: the change's event is queued
	}
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	t := addrTable{}
	for _, a := range list {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		bits, _ := a.Mask.Size()
		t[a.LinkIndex] = append(t[a.LinkIndex], ifAddr{addr: ip.Unmap(), bits: bits, flags: uint32(a.Flags)})
	}
	return t, nil
}
