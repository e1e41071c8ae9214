//go:build !linux

package ifbind

import "syscall"

// abandonBySocket is false: elsewhere Race abandons its losers by
// cancelling their context.
const abandonBySocket = false

func abandonSocket(syscall.RawConn) {}
