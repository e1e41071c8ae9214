package ifbind

import (
	"context"
	"net"
	"testing"
)

// BenchmarkDialTCPRatio is BenchmarkDialRatio over TCP, the one protocol
// whose dials ask whether the Dialer wants Multipath TCP (which it then
// refuses) and turn it off in the private copy.
func BenchmarkDialTCPRatio(b *testing.B) {
	index := loopbackIndex(b)
	ctx := context.Background()
	ln := acceptAndClose(b)
	addr := ln.Addr().String()
	dial := func(d dialFunc) func() error {
		return func() error {
			c, err := d(ctx, "tcp4", addr)
			if err != nil {
				return err
			}
			c.(*net.TCPConn).SetLinger(0) // no TIME_WAIT to run out of ports
			return c.Close()
		}
	}
	impls := dialImpls(index)
	interleave(b, 32, impls[0].name, dial(impls[0].dial),
		namedFunc{impls[1].name, dial(impls[1].dial)})
}
