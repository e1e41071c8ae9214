//go:build !linux

package ifbind

import "net"

// UplinkOf returns the link c's socket is bound to. Outside Linux it
// cannot read the binding back, and reports false.
func UplinkOf(c net.Conn) (Link, bool) { return Link{}, false }
