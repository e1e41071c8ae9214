//go:build !linux

package main

import (
	"fmt"
	"io"
	"runtime"
)

func cmdDemo(_ []string, _ io.Reader, _, stderr io.Writer) int {
	fmt.Fprintf(stderr, "ifbind demo: the demo needs Linux (network namespaces, SO_BINDTOIFINDEX); this is %s\n", runtime.GOOS)
	return exitLocal
}
