//go:build linux

package testnet

import (
	"fmt"
	"os"
	"slices"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NewProcessNS makes a network namespace, with lo up, that lives until the
// process exits: for benchmark fixtures too costly to rebuild for every
// benchmark, such as ten thousand links. It fails outside the sandbox.
func NewProcessNS() (*NS, error) {
	if !sandboxed {
		return nil, fmt.Errorf("no sandbox: %v", noSandbox)
	}
	fd, err := newNSFD()
	if err != nil {
		return nil, err
	}
	return &NS{fd: fd}, nil
}

// vethBatch is how many link requests AddVeths sends in one system call.
// The kernel handles them one after the other and queues one
// acknowledgement each, which must fit in the socket's receive buffer.
const vethBatch = 128

// AddVeths adds pairs veth pairs inside ns, both ends down and in ns, named
// prefix0 and prefix0p, prefix1 and prefix1p, and so on. It batches the
// requests, many to a sendmsg, so that ten thousand links take seconds.
func (ns *NS) AddVeths(prefix string, pairs int) error {
	reqs := make([][]byte, pairs)
	for i := range reqs {
		reqs[i] = vethRequest(fmt.Sprintf("%s%d", prefix, i), fmt.Sprintf("%s%dp", prefix, i))
	}
	return ns.sendBatched(reqs, vethBatch, "adding veth pair")
}

// sendBatched sends the netlink requests reqs, each asking for an
// acknowledgement, batch of them to a sendmsg, inside ns, and waits for
// every acknowledgement. The first refusal is the error, as what failed.
func (ns *NS) sendBatched(reqs [][]byte, batch int, what string) error {
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
		buf := make([]byte, 1<<16)
		for start := 0; start < len(reqs); start += batch {
			n := min(batch, len(reqs)-start)
			var req []byte
			for _, r := range reqs[start : start+n] {
				req = append(req, r...)
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
						return fmt.Errorf("%s: %w", what, syscall.Errno(errno))
					}
					acked++
				}
			}
		}
		return nil
	})
}

// vethRequest returns an RTM_NEWLINK request for a veth pair.
func vethRequest(name, peer string) []byte {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("veth"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	p := data.AddRtAttr(nl.VETH_INFO_PEER, nil)
	nl.NewIfInfomsgChild(p, unix.AF_UNSPEC)
	p.AddRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(peer))
	req.AddData(info)
	return req.Serialize()
}

// LinkNames returns the sorted names of the links of ns, or of the calling
// thread's namespace when ns is nil: for tests that check that what they
// made is gone.
func LinkNames(t testing.TB, ns *NS) []string {
	t.Helper()
	var h *netlink.Handle
	var err error
	if ns != nil {
		h, err = netlink.NewHandleAt(netns.NsHandle(ns.fd))
	} else {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		t.Fatalf("failed to open netlink: %v", err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Fatalf("failed to list links: %v", err)
	}
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}
