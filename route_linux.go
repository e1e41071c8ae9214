package ifbind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// routeGroups are the multicast groups of route events, which the monitor's
// socket joins besides RTMGRP_LINK.
const routeGroups = unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE

// joinNexthopGroup subscribes fd to nexthop object events (Linux 5.3;
// before, there are no nexthop objects and nothing to follow).
func joinNexthopGroup(fd int) error {
	err := unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_ADD_MEMBERSHIP, unix.RTNLGRP_NEXTHOP)
	if err != nil && err != unix.EINVAL {
		return os.NewSyscallError("setsockopt", err)
	}
	return nil
}

// applyRouteMsg applies one route or nexthop message of an event datagram
// to b. It reports false when it could not read it.
func applyRouteMsg(b *routeBatch, msg *syscall.NetlinkMessage) bool {
	switch msg.Header.Type {
	case unix.RTM_NEWNEXTHOP, unix.RTM_DELNEXTHOP:
		// Routes through a nexthop object change or vanish with it,
		// without a route event of their own: list them again.
		b.dump = true
		return true
	}
	rm, ok, err := parseRoute(msg.Header.Type == unix.RTM_DELROUTE, msg.Data)
	if err != nil {
		return false
	}
	if ok {
		rm.replace = msg.Header.Flags&unix.NLM_F_REPLACE != 0
		rm.append = msg.Header.Flags&unix.NLM_F_APPEND != 0

		b.apply(rm)
	}
	return true
}

// isRouteMsg reports whether a message type is one applyRouteMsg handles.
func isRouteMsg(t uint16) bool {
	switch t {
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE, unix.RTM_NEWNEXTHOP, unix.RTM_DELNEXTHOP:
		return true
	}
	return false
}

// parseRoute reads an rtmsg and its attributes. It reports ok false for the
// routes the mirror does not keep: cached clones and families other than
// IPv4 and IPv6. The source prefix of an IPv6 source-specific route is
// ignored, as a dump through the netlink package does not show it.
func parseRoute(del bool, b []byte) (rm routeMsg, ok bool, err error) {
	if len(b) < unix.SizeofRtMsg {
		return rm, false, errUnreadable
	}
	family, dstLen := b[0], int(b[1])
	flags := binary.NativeEndian.Uint32(b[8:12])
	if family != unix.AF_INET && family != unix.AF_INET6 || flags&unix.RTM_F_CLONED != 0 {
		return rm, false, nil
	}
	rm.del = del
	rm.table = uint32(b[4])
	rm.entry.tos = b[3]
	rm.entry.typ = b[7]
	rm.entry.scope = b[6]
	var dst netip.Addr
	var nh rtNexthop
	attrs, err := syscall.ParseNetlinkRouteAttr(&syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWROUTE}, Data: b})
	if err != nil {
		return rm, false, err
	}
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.RTA_DST:
			dst, _ = netip.AddrFromSlice(a.Value)
		case unix.RTA_OIF:
			if len(a.Value) >= 4 {
				nh.index = int32(binary.NativeEndian.Uint32(a.Value))
			}
		case unix.RTA_GATEWAY:
			nh.gw, _ = netip.AddrFromSlice(a.Value)
		case unix.RTA_VIA:
			nh.gw = parseVia(a.Value)
		case unix.RTA_PRIORITY:
			if len(a.Value) >= 4 {
				rm.entry.metric = binary.NativeEndian.Uint32(a.Value)
			}
		case unix.RTA_TABLE:
			if len(a.Value) >= 4 {
				rm.table = binary.NativeEndian.Uint32(a.Value)
			}
		case unix.RTA_MULTIPATH:
			if rm.entry.nh, err = parseMultipath(a.Value); err != nil {
				return rm, false, err
			}
		}
	}
	if !dst.IsValid() {
		dst = netip.IPv4Unspecified()
		if family == unix.AF_INET6 {
			dst = netip.IPv6Unspecified()
		}
	}
	if (dst.Is4() != (family == unix.AF_INET)) || dstLen > dst.BitLen() {
		return rm, false, errUnreadable
	}
	rm.pfx = netip.PrefixFrom(dst, dstLen).Masked()
	if rm.entry.nh == nil && nh.index != 0 {
		rm.entry.nh = []rtNexthop{nh}
	}
	return rm, true, nil
}

func parseVia(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(b[2:])
	return a
}

// parseMultipath reads RTA_MULTIPATH: rtnexthop structures, each with its
// own attributes.
func parseMultipath(b []byte) ([]rtNexthop, error) {
	var nhs []rtNexthop
	for len(b) >= unix.SizeofRtNexthop {
		n := int(binary.NativeEndian.Uint16(b[0:2]))
		if n < unix.SizeofRtNexthop || n > len(b) {
			return nil, errUnreadable
		}
		nh := rtNexthop{index: int32(binary.NativeEndian.Uint32(b[4:8]))}
		for a := b[unix.SizeofRtNexthop:n]; len(a) >= unix.SizeofRtAttr; {
			l := int(binary.NativeEndian.Uint16(a[0:2]))
			if l < unix.SizeofRtAttr || l > len(a) {
				return nil, errUnreadable
			}
			switch binary.NativeEndian.Uint16(a[2:4]) {
			case unix.RTA_GATEWAY:
				nh.gw, _ = netip.AddrFromSlice(a[unix.SizeofRtAttr:l])
			case unix.RTA_VIA:
				nh.gw = parseVia(a[unix.SizeofRtAttr:l])
			}
			a = a[min(rtaAlign(l), len(a)):]
		}
		nhs = append(nhs, nh)
		b = b[min(rtaAlign(n), len(b)):]
	}
	return nhs, nil
}

func rtaAlign(n int) int { return (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1) }

// dumpRoutes lists the routes of every table through h and returns them as
// a view.
func dumpRoutes(h *netlink.Handle) (routeView, error) {
	var err error
	for range dumpTries {
		var b routeBatch
		err = h.RouteListFilteredIter(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE, func(r netlink.Route) bool {
			if rm, ok := routeFromNetlink(r); ok {
				rm.append = true
				b.apply(rm)
			}
			return true
		})
		if err == nil || errors.Is(err, netlink.ErrDumpInterrupted) {
			// A change that interrupted the listing is queued, and
			// corrects the mirror.
			return b.view(), nil
		}
	}
	return routeView{}, fmt.Errorf("listing routes: %w", err)
}

// routeFromNetlink converts a route of a dump as routeMsg would hold it.
func routeFromNetlink(r netlink.Route) (routeMsg, bool) {
	if r.Family != unix.AF_INET && r.Family != unix.AF_INET6 {
		return routeMsg{}, false
	}
	rm := routeMsg{table: uint32(r.Table)}
	rm.entry = rtEntry{metric: uint32(r.Priority), tos: uint8(r.Tos), typ: uint8(r.Type), scope: uint8(r.Scope)}
	var dst netip.Prefix
	if r.Dst != nil {
		a, _ := netip.AddrFromSlice(r.Dst.IP)
		if r.Family == unix.AF_INET {
			a = a.Unmap()
		}
		ones, _ := r.Dst.Mask.Size()
		dst = netip.PrefixFrom(a, ones)
	} else if r.Family == unix.AF_INET {
		dst = defaultV4
	} else {
		dst = defaultV6
	}
	rm.pfx = dst.Masked()
	gw := func(ip net.IP, via netlink.Destination) netip.Addr {
		if v, ok := via.(*netlink.Via); ok && v != nil {
			a, _ := netip.AddrFromSlice(v.Addr)
			return a.Unmap()
		}
		a, _ := netip.AddrFromSlice(ip)
		if a.Is4In6() {
			a = a.Unmap()
		}
		return a
	}
	for _, nh := range r.MultiPath {
		rm.entry.nh = append(rm.entry.nh, rtNexthop{index: int32(nh.LinkIndex), gw: gw(nh.Gw, nh.Via)})
	}
	if len(r.MultiPath) == 0 && r.LinkIndex != 0 {
		rm.entry.nh = []rtNexthop{{index: int32(r.LinkIndex), gw: gw(r.Gw, r.Via)}}
	}
	return rm, true
}

// routesLinkDown updates the route mirror when a link goes down: the kernel
// then removes the IPv4 routes through it without an event (IPv6 announces
// its own removals).
func routesLinkDown(b *routeBatch, t linkTable, prev, cur Link) {

	if prev.Flags&net.FlagUp == 0 || cur.Flags&net.FlagUp != 0 {
		return
	}
	b.dropLink(cur.Index, false, func(index int32) bool {
		e := t.byIndex[int(index)]
		return e != nil && e.link.Flags&net.FlagUp != 0
	})
}

// routesLinkGone removes from the mirror the routes through a link that was
// deleted.
func routesLinkGone(b *routeBatch, index int) {
	b.dropLink(index, true, nil)
}

// linkKind returns the kernel's kind of l (IFLA_INFO_KIND), "" for a
// device that has none. The netlink package names a few kinds its own way.
func linkKind(l netlink.Link) string {
	switch l.(type) {
	case *netlink.Device:
		return ""
	case *netlink.Tuntap:
		return "tun"
	}
	return l.Type()
}
