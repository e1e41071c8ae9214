//go:build !linux && !darwin && !windows

package ifbind

import "syscall"

// bindsReceive tells whether a binding here filters what a socket receives.
const bindsReceive = false

func bindRawConn(_ syscall.RawConn, t target) error {
	return &BindError{Index: t.index, Err: unsupportedError("binding a socket to an interface")}
}

func dialError(err error, _ int) error { return err }
