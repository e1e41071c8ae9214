//go:build !linux

package main

import (
	"fmt"
	"net"
	"slices"

	"github.com/ifbind/ifbind"
)

// listLinksIn is listLinks, for this namespace only.
func listLinksIn(netns string) ([]linkInfo, error) {
	if netns != "" {
		return nil, fmt.Errorf("network namespace %s: %w", netns, ifbind.ErrUnsupported)
	}
	return listLinks()
}

// listLinks lists the interfaces through the net package: there is no
// netlink here, so no altnames and no operational state beyond up/down.
func listLinks() ([]linkInfo, error) {
	ifis, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("failed to list interfaces: %w", err)
	}
	out := make([]linkInfo, 0, len(ifis))
	for _, ifi := range ifis {
		li := linkInfo{Index: ifi.Index, Name: ifi.Name, AltNames: []string{}, State: "down",
			MTU: ifi.MTU, Addresses: []string{}}
		if ifi.Flags&net.FlagUp != 0 {
			li.State = "up"
		}
		if slices.ContainsFunc(ifi.HardwareAddr, func(b byte) bool { return b != 0 }) {
			li.MAC = mac(ifi.HardwareAddr.String()) // all zeros, as lo's, is none
		}
		if addrs, err := ifi.Addrs(); err == nil {
			for _, a := range addrs {
				li.Addresses = append(li.Addresses, a.String())
			}
		}
		out = append(out, li)
	}
	return out, nil
}
