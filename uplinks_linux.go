package ifbind

import (
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// abandonBySocket tells whether abandonSocket can stop a connect.
const abandonBySocket = true

// abandonSocket stops the connect of an attempt that lost a race: a
// shutdown of a socket in SYN-SENT disconnects it, so that its connect
// fails at once with ECONNRESET (net then closes it); one that connected
// meanwhile is shut down, and its dial's conn closed by the racer. A
// socket net already closed is left alone. A socket not connecting yet
// (its Control hook returned, its connect is about to be made) or whose
// connect failed (net is about to close it) gives ENOTCONN: the shutdown
// is made again until the connect is made, or the socket closed.
func abandonSocket(rc syscall.RawConn) {
	for k := 0; ; k++ {
		var err error
		if rc.Control(func(fd uintptr) { err = unix.Shutdown(int(fd), unix.SHUT_RDWR) }) != nil || err != unix.ENOTCONN {
			return
		}
		if k < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(time.Millisecond)
		}
	}
}
