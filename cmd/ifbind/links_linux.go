package main

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/ifbind/ifbind"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// listLinks dumps the links and the addresses of the calling thread's
// network namespace from netlink, two requests in all.
func listLinks() ([]linkInfo, error) { return listLinksIn("") }

// listLinksIn is listLinks for the network namespace netns (a name under
// /run/netns or a path), "" for the calling thread's.
func listLinksIn(ns string) ([]linkInfo, error) {
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
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("failed to list links: %w", err)
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
		a := l.Attrs()
		li := linkInfo{
			Index:     a.Index,
			Name:      a.Name,
			AltNames:  a.AltNames,
			State:     a.OperState.String(),
			MTU:       a.MTU,
			Type:      l.Type(),
			Addresses: byIndex[a.Index],
		}
		if li.AltNames == nil {
			li.AltNames = []string{}
		}
		if li.Addresses == nil {
			li.Addresses = []string{}
		}
		if slices.ContainsFunc(a.HardwareAddr, func(b byte) bool { return b != 0 }) {
			li.MAC = mac(a.HardwareAddr.String()) // all zeros, as lo's, is none
		}
		out = append(out, li)
	}
	slices.SortFunc(out, func(x, y linkInfo) int { return cmp.Compare(x.Index, y.Index) })
	return out, nil
}
