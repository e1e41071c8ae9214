//go:build linux

package testnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A Capture records every frame a link sends and receives, through an
// AF_PACKET socket in the link's namespace (CAP_NET_RAW there, which the
// sandbox's user namespace gives). It is the proof that something did not
// cross a link: count on the side that must stay silent.
type Capture struct {
	f    *os.File
	done chan struct{}

	mu     sync.Mutex
	frames [][]byte
}

// StartCapture starts capturing on the link with the given index in ns. The
// capture ends when t does, or at Stop.
func StartCapture(t testing.TB, ns *NS, index int) *Capture {
	t.Helper()
	proto := int(htons(unix.ETH_P_ALL))
	var fd int
	err := ns.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
		if err != nil {
			return os.NewSyscallError("socket", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: index}); err != nil {
			unix.Close(fd)
			return os.NewSyscallError("bind", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("failed to capture on link %d: %v", index, err)
	}
	c := &Capture{f: os.NewFile(uintptr(fd), "capture"), done: make(chan struct{})}
	rc, err := c.f.SyscallConn()
	if err != nil {
		c.f.Close()
		t.Fatalf("failed to capture on link %d: %v", index, err)
	}
	go c.run(rc)
	t.Cleanup(c.Stop)
	return c
}

func htons(v uint16) uint16 { return binary.BigEndian.Uint16(binary.NativeEndian.AppendUint16(nil, v)) }

func (c *Capture) run(rc interface {
	Read(func(uintptr) bool) error
}) {
	defer close(c.done)
	buf := make([]byte, 1<<16)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			return rerr != unix.EAGAIN
		})
		if err != nil || (rerr != nil && !errors.Is(rerr, unix.EINTR)) {
			return // closed by Stop
		}
		if rerr == nil {
			c.mu.Lock()
			c.frames = append(c.frames, bytes.Clone(buf[:n]))
			c.mu.Unlock()
		}
	}
}

// Frames returns the frames captured so far, Ethernet headers included.
func (c *Capture) Frames() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.frames...)
}

// WaitFor waits until a captured frame contains marker, sending it with
// send until then (a datagram may be lost while a link comes up), for up to
// five seconds. Frames that crossed the link before the marker are then in
// Frames: it is how a test knows that it has seen all there was to see.
func (c *Capture) WaitFor(marker []byte, send func() error) error {
	for range 100 {
		if err := send(); err != nil {
			return err
		}
		for range 5 {
			for _, f := range c.Frames() {
				if bytes.Contains(f, marker) {
					return nil
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return errors.New("the marker never crossed the link")
}

// Stop ends the capture. It may be called more than once.
func (c *Capture) Stop() {
	c.f.Close()
	<-c.done
}
