package ifbind

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ifbind/ifbind/internal/testnet"
	"golang.org/x/net/ipv4"
)

// Ports of the peer servers of BenchmarkUDP.
const (
	benchEchoPort = 7300
	benchSinkPort = 7301
)

// benchServe runs, in s's peer, a UDP server on port that echoes every
// datagram (echo) or drops it, until b ends.
func benchServe(b *testing.B, s *testnet.Side, port int, echo bool) {
	b.Helper()
	var c *net.UDPConn
	err := s.Peer.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp4", &net.UDPAddr{Port: port})
		return err
	})
	if err != nil {
		b.Fatalf("failed to serve in peer %s: %v", s.Name, err)
	}
	c.SetReadBuffer(4 << 20)
	b.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if echo {
				c.WriteToUDPAddrPort(buf[:n], from)
			}
		}
	}()
}

// blast sends datagrams from s's peer to each of dsts in turn until stop
// is closed.
func blast(b *testing.B, s *testnet.Side, dsts []netip.AddrPort, stop <-chan struct{}, wg *sync.WaitGroup) {
	b.Helper()
	var c *net.UDPConn
	err := s.Peer.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp4", nil)
		return err
	})
	if err != nil {
		b.Fatalf("failed to make a sender in peer %s: %v", s.Name, err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer c.Close()
		msg := make([]byte, 64)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for range 64 {
				for _, dst := range dsts {
					c.WriteToUDPAddrPort(msg, dst)
				}
			}
		}
	}()
}

// BenchmarkUDP compares a UDP conn bound by ListenUDP to a plain one from
// net.ListenUDP over the same veth, with 64-byte datagrams:
//
//   - op=send: the conn sends to a sink in its peer.
//   - op=recv: the conn reads a flood from its peer.
//   - op=roundtrip: the conn sends to an echo server in its peer and reads
//     the answer; conn=bound+ingress reads it through an IngressReader,
//     conn=bound+xnet-cm through x/net's ipv4.PacketConn, for comparison.
//   - conn=paired: a plain and a bound conn in turns, datagram by datagram,
//     reporting the median time of each and their ratio (bound/plain);
//     op=deliver there is the peer sending to each conn in turn.
//
// Run with:
//
//	go test -run '^$' -bench BenchmarkUDP -benchmem -count 6 -benchtime 50000x .
func BenchmarkUDP(b *testing.B) {
	tp := testnet.New(b)
	tp.WaitReady(b)
	for _, s := range tp.Sides() {
		benchServe(b, s, benchEchoPort, true)
		benchServe(b, s, benchSinkPort, false)
	}
	open := func(b *testing.B, bound bool) *net.UDPConn {
		var c *net.UDPConn
		var err error
		if bound {
			c, err = (&ListenConfig{Index: tp.A.Index}).ListenUDP(context.Background(), "udp4", netip.AddrPort{})
		} else {
			c, err = net.ListenUDP("udp4", nil)
		}
		if err != nil {
			b.Fatal(err)
		}
		c.SetReadBuffer(4 << 20)
		b.Cleanup(func() { c.Close() })
		return c
	}
	conns := []struct {
		name  string
		bound bool
	}{{"plain", false}, {"bound", true}}
	msg, buf := make([]byte, 64), make([]byte, 1500)
	sink := netip.AddrPortFrom(testnet.PeerV4, benchSinkPort)
	echo := netip.AddrPortFrom(testnet.PeerV4, benchEchoPort)

	for _, cc := range conns {
		b.Run("op=send/conn="+cc.name, func(b *testing.B) {
			c := open(b, cc.bound)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.WriteToUDPAddrPort(msg, sink); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, cc := range conns {
		b.Run("op=recv/conn="+cc.name, func(b *testing.B) {
			c := open(b, cc.bound)
			dst := netip.AddrPortFrom(testnet.ClientV4, c.LocalAddr().(*net.UDPAddr).AddrPort().Port())
			stop, wg := make(chan struct{}), &sync.WaitGroup{}
			blast(b, tp.A, []netip.AddrPort{dst}, stop, wg)
			c.SetReadDeadline(time.Now().Add(time.Minute)) // fail, not hang
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
		})
	}
	for _, cc := range conns {
		b.Run("op=roundtrip/conn="+cc.name, func(b *testing.B) {
			c := open(b, cc.bound)
			b.ReportAllocs()
			for b.Loop() {
				if err := roundTrip(c, msg, echo, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// The machine these run on is shared, and its load swings more between
	// two runs than a setsockopt could cost: these alternate a plain and
	// a bound conn, datagram by datagram and in turns, so that both see the
	// same load, and report the ratio of their median times, which bursts
	// of other work do not move.
	for _, op := range []string{"send", "deliver", "roundtrip"} {
		b.Run("op="+op+"/conn=paired", func(b *testing.B) {
			cs := [2]*net.UDPConn{open(b, false), open(b, true)}
			spent := [2][]time.Duration{make([]time.Duration, b.N), make([]time.Duration, b.N)}
			// deliver: a peer sends to both conns in turn, and its
			// write carries the receiving kernel's work (veth hands
			// the datagram to the client's stack in the sender's
			// context): the socket lookup that binding changes, and
			// the queueing. The conns drain all the while.
			var peer *net.UDPConn
			var dsts []netip.AddrPort
			if op == "deliver" {
				if err := tp.A.Peer.Do(func() error {
					var err error
					peer, err = net.ListenUDP("udp4", nil)
					return err
				}); err != nil {
					b.Fatal(err)
				}
				defer peer.Close()
				for _, c := range cs {
					dsts = append(dsts, netip.AddrPortFrom(testnet.ClientV4, c.LocalAddr().(*net.UDPAddr).AddrPort().Port()))
					go func() {
						buf := make([]byte, 1500)
						for {
							if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
								return
							}
						}
					}()
				}
			}
			b.ResetTimer()
			for n := range b.N {
				for j := range cs {
					i := (n & 1) ^ j // alternate which goes first, too
					start := time.Now()
					var err error
					switch op {
					case "send":
						_, err = cs[i].WriteToUDPAddrPort(msg, sink)
					case "deliver":
						_, err = peer.WriteToUDPAddrPort(msg, dsts[i])
					default:
						err = roundTrip(cs[i], msg, echo, buf)
					}
					spent[i][n] = time.Since(start)
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			b.StopTimer()
			plain, bound := median(spent[0]), median(spent[1])
			b.ReportMetric(float64(plain.Nanoseconds()), "plain-median-ns")
			b.ReportMetric(float64(bound.Nanoseconds()), "bound-median-ns")
			b.ReportMetric(float64(bound)/float64(plain), "bound/plain")
		})
	}
	b.Run("op=roundtrip/conn=bound+ingress", func(b *testing.B) {
		c := open(b, true)
		r, err := NewIngressReader(c)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.WriteToUDPAddrPort(msg, echo); err != nil {
				b.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, _, in, err := r.ReadFrom(buf); err != nil || in.Index != tp.A.Index {
				b.Fatal(in, err)
			}
		}
	})
	b.Run("op=roundtrip/conn=bound+xnet-cm", func(b *testing.B) {
		c := open(b, true)
		p := ipv4.NewPacketConn(c)
		if err := p.SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true); err != nil {
			b.Fatal(err)
		}
		dst := net.UDPAddrFromAddrPort(echo)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.WriteToUDPAddrPort(msg, echo); err != nil {
				b.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, cm, _, err := p.ReadFrom(buf); err != nil || cm.IfIndex != tp.A.Index {
				b.Fatal(cm, err, dst)
			}
		}
	})
}

// roundTrip sends msg to an echo server and reads the answer, sending again
// when none comes within a second: a loaded machine may drop one.
func roundTrip(c *net.UDPConn, msg []byte, echo netip.AddrPort, buf []byte) error {
	var err error
	for range 5 {
		if _, err = c.WriteToUDPAddrPort(msg, echo); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, _, err = c.ReadFromUDPAddrPort(buf); err == nil {
			return nil
		}
	}
	return err
}

// median returns the median of ds, which it sorts.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkReply compares IngressReader.Reply, which checks the ingress
// against the binding and builds its IP_PKTINFO per datagram, with the
// floor: WriteMsgUDPAddrPort with a control message built once by hand,
// on the same bound conn, to a sink in its peer. conn=paired alternates
// the two datagram by datagram and reports the ratio of their medians.
//
//	go test -run '^$' -bench BenchmarkReply -benchmem -count 6 -benchtime 50000x .
func BenchmarkReply(b *testing.B) {
	tp := testnet.New(b)
	tp.WaitReady(b)
	benchServe(b, tp.A, benchSinkPort, false)
	c, err := (&ListenConfig{Index: tp.A.Index}).ListenUDP(context.Background(), "udp4", netip.AddrPort{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r, err := NewIngressReader(c)
	if err != nil {
		b.Fatal(err)
	}
	sink := netip.AddrPortFrom(testnet.PeerV4, benchSinkPort)
	in := Ingress{Index: tp.A.Index, Dst: testnet.ClientV4, Local: testnet.ClientV4}
	oob := (&ipv4.ControlMessage{IfIndex: tp.A.Index, Src: testnet.ClientV4.AsSlice()}).Marshal()
	msg := make([]byte, 64)
	send := [2]func() error{
		func() error { _, _, err := c.WriteMsgUDPAddrPort(msg, oob, sink); return err },
		func() error { _, err := r.Reply(msg, sink, in); return err },
	}
	for i, name := range []string{"floor", "reply"} {
		b.Run("conn="+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := send[i](); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("conn=paired", func(b *testing.B) {
		spent := [2][]time.Duration{make([]time.Duration, b.N), make([]time.Duration, b.N)}
		for n := range b.N {
			for j := range send {
				i := (n & 1) ^ j
				start := time.Now()
				err := send[i]()
				spent[i][n] = time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		floor, reply := median(spent[0]), median(spent[1])
		b.ReportMetric(float64(floor.Nanoseconds()), "floor-median-ns")
		b.ReportMetric(float64(reply.Nanoseconds()), "reply-median-ns")
		b.ReportMetric(float64(reply)/float64(floor), "reply/floor")
	})
}
