package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/ifbind/ifbind"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// listLinks lists the links of the calling thread's network namespace
// through ifbind.Links, and their addresses from netlink, two requests in
// all.
func listLinks() ([]linkInfo, error) { return listLinksIn("") }

// listLinksIn is listLinks for the network namespace ns (a name under
// /run/netns or a path), "" for the calling thread's: the links through a
// Monitor of that namespace, the addresses through a netlink handle there.
func listLinksIn(ns string) ([]linkInfo, error) {
	links, err := linksIn(ns)
	if err != nil {
		return nil, err
	}
	// A Handle of its own: the netlink package's shared one may have been
	// switched to dumping for every request.
	h := &netlink.Handle{}
	if ns != "" {
		path := ns
		if !strings.ContainsRune(ns, '/') {
			path = "/run/netns/" + ns
		}
		nsh, err := netns.GetFromPath(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				err = fmt.Errorf("%w (%w)", ifbind.ErrNetnsGone, err)
			}
			return nil, fmt.Errorf("network namespace %s: %w", ns, err)
		}
		defer nsh.Close()
		if h, err = netlink.NewHandleAt(nsh); err != nil {
			return nil, fmt.Errorf("network namespace %s: %w", ns, err)
		}
		defer h.Close()
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
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
		if slices.ContainsFunc(l.HardwareAddr, func(b byte) bool { return b != 0 }) {
			li.MAC = mac(l.HardwareAddr.String()) // all zeros, as lo's, is none
		}
		out = append(out, li)
	}
	return out, nil
}

// linksIn lists the links of the network namespace ns, "" for this one,
// through the library.
func linksIn(ns string) ([]ifbind.Link, error) {
	if ns == "" {
		links, err := ifbind.Links()
		if err != nil {
			return nil, fmt.Errorf("failed to list links: %w", err)
		}
		return links, nil
	}
	m, err := ifbind.NewMonitorAt(context.Background(), ns)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return m.Links()
}
