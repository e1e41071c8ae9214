//go:build !linux && !darwin && !windows

package ifbind

import "syscall"

func bindRawConn(syscall.RawConn, string, int, bool) error { return ErrUnsupported }

func dialError(err error, _ int) error { return err }
