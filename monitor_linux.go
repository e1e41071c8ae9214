package ifbind

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// monitorConfig holds what tests change about a Monitor.
type monitorConfig struct {
	// rcvbuf is the receive buffer of the event socket, 0 for
	// defaultRcvbuf. Tests make it small so that the kernel drops events.
	rcvbuf int

	// pause, when not nil, holds the monitor's goroutine before it reads
	// its first event until pause is closed, so that tests can make events
	// pile up in the socket until the kernel drops some.
	pause <-chan struct{}

	// ns is the namespace to watch (NewMonitorAt), nil for the caller's.
	ns *nsRef
}

// newMonitorAt starts a monitor of the namespace r names, which it
// identifies first so that its bindings can tell it from another.
func newMonitorAt(ctx context.Context, r *nsRef) (*Monitor, error) {
	id, err := r.id()
	if err != nil {
		return nil, err
	}
	r.want, r.monitor = id, r.spec
	return newMonitor(ctx, monitorConfig{ns: r})
}

// openMonitorIn opens the monitor's sockets in the namespace it watches.
func openMonitorIn(cfg monitorConfig) (*os.File, *netlink.Handle, error) {
	if cfg.ns == nil {
		// Both sockets must live in the caller's namespace: keep the
		// thread.
		runtime.LockOSThread()
		f, h, err := openMonitorSockets(cfg)
		runtime.UnlockOSThread()
		if err != nil {
			return nil, nil, fmt.Errorf("ifbind: starting link monitor: %w", err)
		}
		return f, h, nil
	}
	type socks struct {
		f *os.File
		h *netlink.Handle
	}
	s, err := runIn(&nsEntry{ref: cfg.ns}, func() (socks, error) {
		f, h, err := openMonitorSockets(cfg)
		if err != nil {
			err = &netnsError{netns: cfg.ns.spec, err: fmt.Errorf("starting link monitor: %w", err)}
		}
		return socks{f, h}, err
	})
	if err != nil {
		if s.f != nil {
			s.f.Close()
			s.h.Close()
		}
		return nil, nil, err
	}
	return s.f, s.h, nil
}

// defaultRcvbuf is the receive buffer the monitor asks for: room for a few
// thousand link events, so that bursts (a bridge with a thousand ports
// going down) do not overflow it. Without CAP_NET_ADMIN the kernel caps it
// at net.core.rmem_max.
const defaultRcvbuf = 4 << 20

// maxBatch bounds how many event datagrams the monitor applies before it
// publishes a new table.
const maxBatch = 1024

func newMonitor(ctx context.Context, cfg monitorConfig) (*Monitor, error) {
	f, h, err := openMonitorIn(cfg)
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		h.Close()
		return nil, fmt.Errorf("ifbind: starting link monitor: %w", err)
	}
	m := &Monitor{stopped: make(chan struct{}), done: make(chan struct{}), ns: cfg.ns}
	// Subscribed first, listed second: every change after the listing is
	// in the socket, and replaying those that predate it converges.
	t, err := m.dump(h, linkTable{})
	var a addrTable
	if err == nil {
		a, err = dumpAddrs(h)
	}
	if err != nil {
		f.Close()
		h.Close()
		return nil, fmt.Errorf("ifbind: starting link monitor: %w", err)
	}
	rv, err := dumpRoutes(h)
	if err != nil {
		f.Close()
		h.Close()
		return nil, fmt.Errorf("ifbind: starting link monitor: %w", err)
	}
	m.publish(&snapshot{linkTable: t, addrs: a, routes: rv})
	go m.run(f, rc, h, cfg)
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { m.stop(context.Cause(ctx)) })
		go func() { <-m.done; stop() }()
	}
	return m, nil
}

// openMonitorSockets opens, in the calling thread's network namespace, the
// socket that receives link events and the handle that lists links.
func openMonitorSockets(cfg monitorConfig) (*os.File, *netlink.Handle, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, nil, os.NewSyscallError("socket", err)
	}
	size := cfg.rcvbuf
	if size == 0 {
		size = defaultRcvbuf
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size); err != nil {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size); err != nil {
			unix.Close(fd)
			return nil, nil, os.NewSyscallError("setsockopt", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: unix.RTMGRP_LINK | addrGroups | routeGroups}); err != nil {
		unix.Close(fd)
		return nil, nil, os.NewSyscallError("bind", err)
	}
	if err := joinNexthopGroup(fd); err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	// A dump never takes this long; the timeout only keeps a wedged
	// kernel from wedging Close.
	if err := h.SetSocketTimeout(30 * time.Second); err != nil {
		unix.Close(fd)
		h.Close()
		return nil, nil, err
	}
	// A non-blocking descriptor makes a pollable File: Close wakes a read.
	return os.NewFile(uintptr(fd), "netlink-route-link"), h, nil
}

// run reads link events until the monitor is stopped or its socket fails,
// then publishes a table that fails every lookup.
func (m *Monitor) run(f *os.File, rc syscall.RawConn, h *netlink.Handle, cfg monitorConfig) {
	defer close(m.done)
	defer h.Close()
	go func() { <-m.stopped; f.Close() }()
	err := m.read(rc, h, cfg)
	select {
	case <-m.stopped:
	default:
		m.stop(fmt.Errorf("reading link events: %w", err))
	}
	<-m.stopped // stopErr is set
	f.Close()
	m.publish(&snapshot{err: m.stopErr})
}

// read applies events as they come, in batches, and lists the links again
// when the kernel dropped some. It returns when the socket fails or is
// closed.
func (m *Monitor) read(rc syscall.RawConn, h *netlink.Handle, cfg monitorConfig) error {
	if cfg.pause != nil {
		select {
		case <-cfg.pause:
		case <-m.stopped:
			return errStopped
		}
	}
	buf := make([]byte, 64<<10)
	for {
		cur := m.load()
		b := batch{cur: cur.linkTable, addrs: addrEdit{cur: cur.addrs}, routes: routeBatch{base: cur.routes}}
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			for n := 0; n < maxBatch; n++ {
				nr, _, flags, from, err := unix.Recvmsg(int(fd), buf, nil, unix.MSG_DONTWAIT)
				switch {
				case err == unix.EINTR:
					continue
				case err == unix.EAGAIN:
					return n > 0 // nothing yet: wait
				case err != nil:
					rerr = err
					return true
				case flags&unix.MSG_TRUNC != 0:
					rerr = errTruncated
					return true
				}
				if sa, ok := from.(*unix.SockaddrNetlink); !ok || sa.Pid != 0 {
					continue // not from the kernel
				}
				if !m.apply(&b, buf[:nr]) {
					rerr = errUnreadable
					return true
				}
			}
			return true
		})
		if err != nil {
			return err
		}
		if b.next.byIndex != nil || b.addrs.changed() || b.routes.changed() {
			links := b.next
			if links.byIndex == nil {
				links = b.cur // only addresses or routes changed
			}
			m.publish(&snapshot{linkTable: links, addrs: b.addrs.table(), routes: b.routes.view()})
		}
		if b.routes.dump {
			if err := m.resyncRoutes(h); err != nil {
				return err
			}
		}
		switch {
		case rerr == nil:
		case rerr == unix.ENOBUFS || rerr == errTruncated || rerr == errUnreadable:
			if err := m.resync(rc, h); err != nil {
				return err
			}
		default:
			return os.NewSyscallError("recvmsg", rerr)
		}
	}
}

// errStopped ends read when the monitor was stopped; run reports stopErr.
var errStopped = errors.New("link monitor stopped")

// errTruncated and errUnreadable mark an event larger than the read buffer
// or one the monitor could not parse: it cannot know what the event said, so
// it lists the links again.
var (
	errTruncated  = errors.New("link event truncated")
	errUnreadable = errors.New("link event unreadable")
)

// resync replaces the table after the kernel dropped events: it discards
// what is queued (the listing will say it), lists the links, and publishes
// the result. Events queued meanwhile are replayed by read as usual.
func (m *Monitor) resync(rc syscall.RawConn, h *netlink.Handle) error {
	m.resyncs.Add(1)
	buf := make([]byte, 64<<10)
	err := rc.Read(func(fd uintptr) bool {
		for {
			_, _, _, _, err := unix.Recvmsg(int(fd), buf, nil, unix.MSG_DONTWAIT)
			if err == unix.EAGAIN {
				return true
			}
			if err != nil && err != unix.EINTR && err != unix.ENOBUFS {
				return true // read meets it again
			}
		}
	})
	if err != nil {
		return err
	}
	t, err := m.dump(h, m.load().linkTable)
	if err != nil {
		return err
	}
	a, err := dumpAddrs(h)
	if err != nil {
		return err
	}
	rv, err := dumpRoutes(h)
	if err != nil {
		return err
	}
	m.publish(&snapshot{linkTable: t, addrs: a, routes: rv})
	return nil
}

// resyncRoutes lists the routes again, after a change that moves routes
// without route events of its own (a link down or gone, a nexthop object).
// Events queued meanwhile are replayed by read as usual; replaying one the listing
// already shows changes nothing.
func (m *Monitor) resyncRoutes(h *netlink.Handle) error {
	m.routeDumps.Add(1)
	rv, err := dumpRoutes(h)
	if err != nil {
		return err
	}
	s := m.load()
	m.publish(&snapshot{linkTable: s.linkTable, addrs: s.addrs, routes: rv})
	return nil
}

// A batch is what one read applies before the monitor publishes: the link
// table, copied at its first change, and the route mirror's changes.
type batch struct {
	cur    linkTable
	next   linkTable // a copy of cur, made at the first link change
	addrs  addrEdit
	routes routeBatch
}

// links returns the link table to change or publish.
func (b *batch) links() linkTable {
	if b.next.byIndex == nil {
		b.next = b.cur.clone()
	}
	return b.next
}

// dump lists the links through h and returns them as a table, keeping the
// generation of every link prev has that is the same incarnation.
func (m *Monitor) dump(h *netlink.Handle, prev linkTable) (linkTable, error) {
	links, err := dumpLinks(h)
	if errors.Is(err, netlink.ErrDumpInterrupted) {
		// The change that interrupted the listing is queued as an event,
		// which corrects the table.
		err = nil
	}
	if err != nil {
		return linkTable{}, fmt.Errorf("listing links: %w", err)
	}
	t := newLinkTable(len(links))
	for _, l := range links {
		link, id := entryOf(l)
		t.set(m.entry(link, id, prev.byIndex[link.Index]))
	}
	return t, nil
}

// apply applies the link, address and route messages of one datagram to
// bt. It reports false when it could not read one, and the table may have
// missed a change.
func (m *Monitor) apply(bt *batch, b []byte) bool {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return false
	}
	for i := range msgs {
		msg := &msgs[i]
		if handled, ok := bt.addrs.apply(msg); handled { // addresses: addr_linux.go
			if !ok {
				return false
			}
			continue
		}
		if isRouteMsg(msg.Header.Type) {
			if !applyRouteMsg(&bt.routes, msg) {
				return false
			}
			continue
		}
		if msg.Header.Type != unix.RTM_NEWLINK && msg.Header.Type != unix.RTM_DELLINK {
			continue
		}
		if len(msg.Data) < unix.SizeofIfInfomsg {
			return false
		}
		// Bridges send RTM_NEWLINK and RTM_DELLINK of family AF_BRIDGE
		// when a port joins or leaves them: the link itself stays.
		if msg.Data[0] != unix.AF_UNSPEC {
			continue
		}
		m.events.Add(1)
		t := bt.links()
		if msg.Header.Type == unix.RTM_DELLINK {
			index := int(int32(binary.NativeEndian.Uint32(msg.Data[4:8])))
			t.del(index)
			bt.addrs.dropLink(index)
			routesLinkGone(&bt.routes, index)
			continue
		}
		hdr := unix.NlMsghdr(msg.Header)
		l, err := netlink.LinkDeserialize(&hdr, msg.Data)
		if err != nil {
			return false
		}
		// Without a deletion between them, two events of one index are
		// of one device, whatever changed.
		link, id := entryOf(l)
		prev := t.byIndex[link.Index]
		if prev != nil {
			id = prev.id
		}
		t.set(m.entry(link, id, prev))
		if prev != nil {
			routesLinkDown(&bt.routes, t, prev.link, link)
		}
	}
	return true
}

func entryOf(l netlink.Link) (Link, linkIdentity) {
	a := l.Attrs()
	return linkOf(l), linkIdentity{kind: linkKind(l), hw: string(a.HardwareAddr), parent: a.ParentIndex}
}
