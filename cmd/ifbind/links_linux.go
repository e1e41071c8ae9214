package main

import (
	"fmt"

	"github.com/ifbind/ifbind"
	"github.com/vishvananda/netlink"
)

// listLinks lists the links of the calling thread's network namespace
// through ifbind.Links, and their addresses from netlink, two requests in
// all.
func listLinks() ([]linkInfo, error) {
	links, err := ifbind.Links()
	if err != nil {
		return nil, fmt.Errorf("failed to list links: %w", err)
	}
	// A Handle of its own: the netlink package's shared one may have been
	// switched to dumping for every request.
	addrs, err := new(netlink.Handle).AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("failed to list addresses: %w", err)
	}
	byIndex := map[int][]string{}
	for _, a := range addrs {
		byIndex[a.LinkIndex] = append(byIndex[a.LinkIndex], a.IPNet.String())
	}
	out := make([]linkInfo, 0, len(links))
	for _, l := range links {
		li := linkInfo{
			Index:     l.Index,
			Name:      l.Name,
			AltNames:  l.Altnames,
			State:     "down",
			MTU:       l.MTU,
			Type:      l.Type,
			Addresses: byIndex[l.Index],
		}
		if l.Up() {
			li.State = "up"
		}
		if li.AltNames == nil {
			li.AltNames = []string{}
		}
		if li.Addresses == nil {
			li.Addresses = []string{}
		}
		if len(l.HardwareAddr) > 0 {
			li.MAC = l.HardwareAddr.String()
		}
		out = append(out, li)
	}
	return out, nil
}
