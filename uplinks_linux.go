package ifbind

import (
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// abandonBySocket tells whether abandonSocket can stop a connect.
const abandonBySocket = true

// abandonSocket stops the connect of an attempt that lost a race. A
// shutdown of a socket in SYN-SENT disconnects it, whatever it is asked to
// shut, so that its connect fails at once with ECONNRESET (net then closes
// it), and nothing is sent. Only the reading side is shut: a socket that
// connected meanwhile must not send a FIN, since a quick peer would close
// the connection before net checked it, and net would then wait for the
// connect forever; it stays connected, and the racer closes its conn as a
// loser's. A socket net already closed is left alone. One not connecting
// yet (its Control hook returned, its connect is about to be made) or
// whose connect failed (net is about to close it) gives ENOTCONN: the
// shutdown is made again until the connect is made, or the socket closed.
func abandonSocket(rc syscall.RawConn) {
	for k := 0; ; k++ {
		var err error
		if rc.Control(func(fd uintptr) { err = unix.Shutdown(int(fd), unix.SHUT_RD) }) != nil || err != unix.ENOTCONN {
			return
		}
		if k < 100 {
			runtime.Gosched()
		} else {
			time.Sleep(time.Millisecond)
		}
	}
}
