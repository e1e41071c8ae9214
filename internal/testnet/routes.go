//go:build linux

package testnet

import (
	"fmt"
	"net/netip"
	"os"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// AddRoutes adds to the main table of ns a unicast route to each prefix
// through the link with index, batching the requests as AddVeths does, so
// that a hundred thousand routes take about a second.
func (ns *NS) AddRoutes(index int, prefixes []netip.Prefix) error {
	return ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
		if err != nil {
			return os.NewSyscallError("socket", err)
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return os.NewSyscallError("bind", err)
		}
		const batch = 512
		buf := make([]byte, 1<<16)
		for start := 0; start < len(prefixes); start += batch {
			n := min(batch, len(prefixes)-start)
			var req []byte
			for _, p := range prefixes[start : start+n] {
				req = append(req, routeRequest(index, p)...)
			}
			if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
				return os.NewSyscallError("sendto", err)
			}
			for acked := 0; acked < n; {
				nr, _, err := unix.Recvfrom(fd, buf, 0)
				if err != nil {
					return os.NewSyscallError("recvfrom", err)
				}
				msgs, err := syscall.ParseNetlinkMessage(buf[:nr])
				if err != nil {
					return err
				}
				for _, m := range msgs {
					if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
						continue
					}
					if errno := -int32(nl.NativeEndian().Uint32(m.Data[:4])); errno != 0 {
						return fmt.Errorf("adding a route: %w", syscall.Errno(errno))
					}
					acked++
				}
			}
		}
		return nil
	})
}

func routeRequest(index int, p netip.Prefix) []byte {
	req := nl.NewNetlinkRequest(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	family := unix.AF_INET
	if p.Addr().Is6() {
		family = unix.AF_INET6
	}
	msg := nl.NewRtMsg()
	msg.Family = uint8(family)
	msg.Dst_len = uint8(p.Bits())
	msg.Scope = unix.RT_SCOPE_LINK
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.RTA_DST, p.Addr().AsSlice()))
	req.AddData(nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(uint32(index))))
	return req.Serialize()
}
