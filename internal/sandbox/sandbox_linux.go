//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// A mode is one way to make the namespaces.
type mode struct {
	name string // "net" or "user+net"
	attr func() *syscall.SysProcAttr
}

var (
	netOnly = mode{"net", func() *syscall.SysProcAttr {
		return &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	}}
	userNet = mode{"user+net", func() *syscall.SysProcAttr {
		return &syscall.SysProcAttr{
			Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
			UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
			GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
			GidMappingsEnableSetgroups: false,
			Pdeathsig:                  syscall.SIGKILL,
		}
	}}
)

// Start runs this program again with args, in namespaces of its own: a
// network namespace when root, else (or when that is refused) user and
// network namespaces in which the child is root, mapped to the caller's uid
// and gid. The child finds env set to the kind of namespace it runs in,
// "net" or "user+net", and is killed when the thread that started it exits
// (Pdeathsig). setup, when not nil, gives the command its standard files
// and environment; it must not set SysProcAttr.
//
// The error, when no way worked, says why each was refused.
func Start(env string, args []string, setup func(*exec.Cmd)) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	modes := []mode{userNet}
	if os.Geteuid() == 0 {
		modes = []mode{netOnly, userNet}
	}
	var errs []error
	for _, m := range modes {
		cmd := exec.Command(exe, args...)
		if setup != nil {
			setup(cmd)
		}
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, env+"="+m.name)
		cmd.SysProcAttr = m.attr()
		err := cmd.Start()
		if err == nil {
			return cmd, nil
		}
		errs = append(errs, fmt.Errorf("%s namespace: %w", m.name, err))
	}
	return nil, errors.Join(errs...)
}
