//go:build !linux

package ifbind

import "syscall"

// refuseMultipathTCP does nothing: the net package makes Multipath TCP
// sockets on Linux only.
func refuseMultipathTCP(syscall.RawConn, target) error { return nil }
