//go:build linux

package race

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ifbind/ifbind"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The methods a Tally can count for.
const (
	ByName  = "by-name" // if_indextoname (ioctl SIOCGIFNAME), then SO_BINDTODEVICE
	ByIndex = "ifbind"  // ifbind.ListenConfig: SO_BINDTOIFINDEX
)

// defaultPrefix starts the names of the links; Config.Prefix replaces it.
const defaultPrefix = "race"

// DefaultWorkers returns the number of workers per method of a Config whose
// Workers is 0.
func DefaultWorkers() int { return max(2, runtime.NumCPU()) }

// A Config says how long and how hard to race. The zero value races
// DefaultWorkers workers per method until ctx ends.
type Config struct {
	// Workers is the number of goroutines per method; 0 means one per
	// CPU (at least 2), so that the workers of both methods together
	// outnumber the CPUs, as on a busy server, and get preempted between
	// looking a name up and binding to it. The renamer is a goroutine too:
	// give it a P of its own (GOMAXPROCS above 2*Workers) or it waits
	// behind the workers and renames seldom.
	Workers int
	// Duration bounds the race; 0 means no bound.
	Duration time.Duration
	// Sockets stops each method after that many sockets; 0 means no bound.
	Sockets int64
	// Prefix names the links Prefix+"-a", Prefix+"-b" and, while the names
	// swap, Prefix+"-t"; "" means "race". It must leave names of at most
	// 15 bytes.
	Prefix string
	// Started, when set, is called once the links exist and the race
	// begins.
	Started func(Setup)
}

// Setup describes the links of a race.
type Setup struct {
	Kind    string    // the link type, "veth"
	Links   [2]string // the names the links start with
	Indexes [2]int    // their indexes, which never change
	Tmp     string    // the third name used while swapping
}

// A Tally counts the sockets of one method.
type Tally struct {
	Method  string `json:"method"`
	Sockets int64  `json:"sockets"` // sockets made and bound without error
	Wrong   int64  `json:"wrong"`   // of those, bound to another link than meant
	Failed  int64  `json:"failed"`  // sockets whose binding failed: never used
}

// WrongPer100k returns the rate of wrong bindings per 100,000 sockets bound.
func (t Tally) WrongPer100k() float64 {
	if t.Sockets == 0 {
		return 0
	}
	return float64(t.Wrong) * 100000 / float64(t.Sockets)
}

// A Result is what a race did.
type Result struct {
	Setup   Setup
	Elapsed time.Duration
	Renames int64 // link renames done while the workers ran
	ByName  Tally
	ByIndex Tally
	// Interrupted is set when ctx ended the race before Duration or
	// Sockets did.
	Interrupted bool
}

// Run builds a veth pair, both ends down, in the calling process's network
// namespace, races until cfg's bounds or ctx end it, deletes the links and
// returns the counts. It fails when the links cannot be made (it needs
// CAP_NET_ADMIN) and tries to delete them on every path. It is not meant to
// run twice at once in one namespace.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers()
	}
	if cfg.Prefix == "" {
		cfg.Prefix = defaultPrefix
	}
	su := Setup{
		Kind:  "veth",
		Links: [2]string{cfg.Prefix + "-a", cfg.Prefix + "-b"},
		Tmp:   cfg.Prefix + "-t",
	}
	if len(su.Tmp) > unix.IFNAMSIZ-1 {
		return nil, fmt.Errorf("race: prefix %q makes names longer than %d bytes", cfg.Prefix, unix.IFNAMSIZ-1)
	}
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("race: failed to open netlink: %w", err)
	}
	defer h.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: su.Links[0]}, PeerName: su.Links[1]}
	if err := h.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("race: failed to add veth pair %s/%s: %w", su.Links[0], su.Links[1], err)
	}
	defer deleteLinks(h, &su)
	for i, name := range su.Links {
		l, err := h.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("race: failed to find %s: %w", name, err)
		}
		su.Indexes[i] = l.Attrs().Index
	}

	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	stop := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }) }
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}

	res := &Result{Setup: su, ByName: Tally{Method: ByName}, ByIndex: Tally{Method: ByIndex}}
	var renames atomic.Int64
	renameErr := make(chan error, 1)
	go func() {
		renameErr <- swapLoop(h, &su, stopped, &renames)
		halt()
	}()

	var wg sync.WaitGroup
	var mu sync.Mutex
	var workErr error
	counters := map[string]*counter{ByName: {}, ByIndex: {}}
	start := time.Now()
	if cfg.Started != nil {
		cfg.Started(su)
	}
	for w := range cfg.Workers {
		for method, c := range counters {
			wg.Go(func() {
				if err := work(method, su.Indexes, w, c, cfg.Sockets, stopped); err != nil {
					mu.Lock()
					workErr = errors.Join(workErr, err)
					mu.Unlock()
					halt()
				}
			})
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if cfg.Duration == 0 || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			res.Interrupted = true
		}
	}
	halt()
	<-done
	res.Elapsed = time.Since(start)
	rerr := <-renameErr
	res.Renames = renames.Load()
	counters[ByName].fill(&res.ByName)
	counters[ByIndex].fill(&res.ByIndex)
	if err := errors.Join(rerr, workErr); err != nil {
		return res, err
	}
	return res, nil
}

// counter is a Tally in the making, shared by the workers of one method.
type counter struct {
	claimed             atomic.Int64 // socket attempts started, for Config.Sockets
	sockets, wrong, bad atomic.Int64
}

func (c *counter) fill(t *Tally) {
	t.Sockets, t.Wrong, t.Failed = c.sockets.Load(), c.wrong.Load(), c.bad.Load()
}

// swapLoop swaps the names of the two links until stopped: a → tmp,
// b → a's name, tmp → b's name. Between two steps one name names no link,
// and a name read before a step may name the other link after it.
func swapLoop(h *netlink.Handle, su *Setup, stopped func() bool, n *atomic.Int64) error {
	names := su.Links
	links := [2]netlink.Link{}
	for i := range links {
		links[i] = &netlink.GenericLink{LinkAttrs: netlink.LinkAttrs{Index: su.Indexes[i]}} // netlink renames by index
	}
	for !stopped() {
		// links[0] has names[0] and links[1] has names[1]; swap them.
		steps := []struct {
			l    netlink.Link
			name string
		}{{links[0], su.Tmp}, {links[1], names[0]}, {links[0], names[1]}}
		for _, s := range steps {
			if err := h.LinkSetName(s.l, s.name); err != nil {
				return fmt.Errorf("race: failed to rename link %d to %s: %w", s.l.Attrs().Index, s.name, err)
			}
			n.Add(1)
		}
		names[0], names[1] = names[1], names[0]
	}
	return nil
}

// work makes sockets with one method until stopped or until the method has
// made limit of them. Each socket is meant for one of the two links in
// turn; its binding is read back and compared.
func work(method string, indexes [2]int, w int, c *counter, limit int64, stopped func() bool) error {
	ctl, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("race: failed to open a socket for SIOCGIFNAME: %w", err)
	}
	defer unix.Close(ctl)
	for i := w; !stopped(); i++ {
		if limit > 0 && c.claimed.Add(1) > limit {
			return nil
		}
		want := indexes[i%2]
		got, err := bindOne(method, want, ctl)
		switch {
		case err != nil:
			c.bad.Add(1)
		case got != want:
			c.sockets.Add(1)
			c.wrong.Add(1)
		default:
			c.sockets.Add(1)
		}
	}
	return nil
}

// bindOne makes a UDP socket the way a Go program does, through
// net.ListenConfig, bound to the link with index want by method, and
// returns the index the kernel says it is bound to.
//
// By name, the index is first turned into a name, as if_indextoname(3) does
// (the ioctl SIOCGIFNAME on ctl, a socket kept for it), and the new socket
// is bound to that name with SO_BINDTODEVICE in its Control hook: the name
// may have moved to the other link in between.
func bindOne(method string, want, ctl int) (int, error) {
	var pc net.PacketConn
	var err error
	ctx := context.Background()
	switch method {
	case ByName:
		name, err := indexToName(ctl, want)
		if err != nil {
			return 0, err
		}
		lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
			var err error
			cerr := c.Control(func(fd uintptr) { err = unix.BindToDevice(int(fd), name) })
			if err != nil {
				err = fmt.Errorf("SO_BINDTODEVICE %s: %w", name, err)
			}
			return errors.Join(cerr, err)
		}}
		pc, err = lc.ListenPacket(ctx, "udp4", "0.0.0.0:0")
		if err != nil {
			return 0, err
		}
	default:
		lc := ifbind.ListenConfig{Index: want}
		pc, err = lc.ListenPacket(ctx, "udp4", "0.0.0.0:0")
		if err != nil {
			return 0, err
		}
	}
	defer pc.Close()
	return BoundIndex(pc.(syscall.Conn))
}

// indexToName is if_indextoname(3): the ioctl SIOCGIFNAME on fd.
func indexToName(fd, index int) (string, error) {
	var ifr unix.Ifreq
	ifr.SetUint32(uint32(index))
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFNAME, &ifr); err != nil {
		return "", fmt.Errorf("SIOCGIFNAME %d: %w", index, err)
	}
	return ifr.Name(), nil
}

// BoundIndex returns the index of the interface the socket behind c is
// bound to, read back from the kernel with SO_BINDTOIFINDEX; 0 for none.
func BoundIndex(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var index int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		index, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX)
	}); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, fmt.Errorf("getsockopt SO_BINDTOIFINDEX: %w", serr)
	}
	return index, nil
}

// deleteLinks deletes the race's links by index, whatever their names are
// by now. Deleting one end of a veth pair deletes the other.
func deleteLinks(h *netlink.Handle, su *Setup) {
	for _, index := range su.Indexes {
		if index == 0 {
			continue
		}
		if l, err := h.LinkByIndex(index); err == nil {
			h.LinkDel(l)
		}
	}
	if su.Indexes[0] == 0 {
		if l, err := h.LinkByName(su.Links[0]); err == nil {
			h.LinkDel(l)
		}
	}
}
