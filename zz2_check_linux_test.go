package ifbind

import (
	"context"
	"net"
	"testing"
)

func BenchmarkZZListen(b *testing.B) {
	index := loopbackIndex(b)
	m, _ := NewMonitor(context.Background())
	defer m.Close()
	ctx := context.Background()
	listen := func(lc interface {
		ListenPacket(context.Context, string, string) (net.PacketConn, error)
	}) func() error {
		return func() error {
			pc, err := lc.ListenPacket(ctx, "udp4", "127.0.0.1:0")
			if err != nil {
				return err
			}
			return pc.Close()
		}
	}
	nlc := (&ListenConfig{Index: index}).NetListenConfig()
	interleave(b, 32, "floor", listen(&net.ListenConfig{Control: floorControl(index)}),
		namedFunc{"ifbind", listen(&ListenConfig{Index: index})},
		namedFunc{"follow", listen(&ListenConfig{Binding: m.Follow("lo")})},
		namedFunc{"nethook", listen(nlc)},
	)
}
