package ifbind

import (
	"bytes"
	"errors"
	"net"
	"runtime"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// hasAliases tells whether links have aliases here.
const hasAliases = true

// kernelSource asks the kernel of the calling thread's network namespace,
// through a netlink Handle of its own for each request, never through the
// netlink package's shared one: a single netlink.LinkByAlias call anywhere
// in the process switches that shared handle to dumping every link for
// every later lookup by name.
type kernelSource struct {
	// netns identifies, in a source a not-found error keeps, the namespace
	// the lookup was made in (the inode of its nsfs file); 0 in the
	// source lookups use, which asks the calling thread's.
	netns uint64
}

func kernelLinks() linkSource { return kernelSource{} }

// linkByName asks for the one link (RTM_GETLINK with IFLA_IFNAME, or
// IFLA_ALT_IFNAME for names longer than 15 bytes, which only altnames can
// be).
func (k kernelSource) linkByName(name string) (*Link, error) {
	return linkOrMiss(new(netlink.Handle).LinkByName(name))
}

func (k kernelSource) linkByIndex(index int) (*Link, error) {
	return linkOrMiss(new(netlink.Handle).LinkByIndex(index))
}

func linkOrMiss(l netlink.Link, err error) (*Link, error) {
	var nf netlink.LinkNotFoundError
	switch {
	case err == nil:
		link := linkOf(l)
		return &link, nil
	case errors.As(err, &nf) || errors.Is(err, syscall.ENODEV):
		return nil, nil
	}
	return nil, err
}

func (k kernelSource) links() ([]Link, error) {
	if k.netns != 0 {
		// Listed for an error's text, maybe from another thread: only
		// from the namespace the lookup was made in.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if threadNetns() != k.netns {
			return nil, errors.New("not in the network namespace of the lookup")
		}
	}
	ls, err := dumpLinks(new(netlink.Handle))
	if err != nil {
		return nil, err
	}
	links := make([]Link, len(ls))
	for i, l := range ls {
		links[i] = linkOf(l)
	}
	return links, nil
}

func (k kernelSource) later() linkSource {
	if ns := threadNetns(); ns != 0 {
		return kernelSource{netns: ns}
	}
	return nil
}

// threadNetns returns the inode of the calling thread's network namespace,
// 0 when it cannot tell.
func threadNetns() uint64 {
	var st unix.Stat_t
	if unix.Stat("/proc/thread-self/ns/net", &st) != nil {
		return 0
	}
	return st.Ino
}

// dumpTries bounds how often a listing is made again when a change
// interrupted it.
const dumpTries = 5

// dumpLinks lists the links through h, again when a change interrupted the
// listing (NLM_F_DUMP_INTR), up to dumpTries times; other errors are
// returned at once. After as many interrupted listings it returns the last
// one, with an error wrapping netlink.ErrDumpInterrupted: a Monitor, whose
// queued events correct it, may use it; a one-time lookup may not.
func dumpLinks(h *netlink.Handle) ([]netlink.Link, error) {
	for i := 1; ; i++ {
		links, err := h.LinkList()
		if err == nil || !errors.Is(err, netlink.ErrDumpInterrupted) || i == dumpTries {
			return links, err
		}
	}
}

// linkOf copies what a Link holds out of l. The hardware address is copied
// too: netlink hands out a slice of the message it read, which the monitor
// reuses and which would otherwise stay alive as long as the Link.
func linkOf(l netlink.Link) Link {
	a := l.Attrs()
	var hw net.HardwareAddr
	if len(a.HardwareAddr) > 0 {
		hw = bytes.Clone(a.HardwareAddr)
	}
	return Link{
		Index:        a.Index,
		Name:         a.Name,
		HardwareAddr: hw,
		Altnames:     a.AltNames,
		Alias:        a.Alias,
		Flags:        a.Flags,
		MTU:          a.MTU,
		Type:         linkKind(l),
	}
}
