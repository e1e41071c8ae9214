package ifbind

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// cmsg builds one control message as the kernel lays it out.
func cmsg(level, typ int, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	if unix.SizeofCmsghdr == 16 {
		binary.NativeEndian.PutUint64(b, uint64(unix.CmsgLen(len(data))))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(unix.CmsgLen(len(data))))
	}
	binary.NativeEndian.PutUint32(b[unix.SizeofCmsghdr-8:], uint32(level))
	binary.NativeEndian.PutUint32(b[unix.SizeofCmsghdr-4:], uint32(typ))
	copy(b[unix.CmsgLen(0):], data)
	return b
}

func pktinfo4(index int32, spec, dst [4]byte) []byte {
	b := make([]byte, unix.SizeofInet4Pktinfo)
	binary.NativeEndian.PutUint32(b, uint32(index))
	copy(b[4:], spec[:])
	copy(b[8:], dst[:])
	return cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, b)
}

func pktinfo6(index int32, dst [16]byte) []byte {
	b := make([]byte, unix.SizeofInet6Pktinfo)
	copy(b, dst[:])
	binary.NativeEndian.PutUint32(b[16:], uint32(index))
	return cmsg(unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, b)
}

// ingressOracle decodes oob with x/sys/unix's allocating parser, as
// parseIngress must.
func ingressOracle(oob []byte) (Ingress, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return Ingress{}, false
	}
	var in Ingress
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= unix.SizeofInet4Pktinfo:
			in.Index = int(int32(binary.NativeEndian.Uint32(m.Data)))
			in.Local = netip.AddrFrom4([4]byte(m.Data[4:8]))
			in.Dst = netip.AddrFrom4([4]byte(m.Data[8:12]))
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo:
			in.Dst = netip.AddrFrom16([16]byte(m.Data[:16])).Unmap()
			in.Index = int(int32(binary.NativeEndian.Uint32(m.Data[16:])))
			if !in.Dst.Is4() {
				in.Local = in.Dst
				if in.Dst.IsMulticast() {
					in.Local = netip.Addr{}
				}
			}
		}
	}
	return in, true
}

func TestParseIngress(t *testing.T) {
	v6 := netip.MustParseAddr("ff02::db8:0:1").As16()
	mapped := netip.MustParseAddr("::ffff:192.0.2.1").As16()
	bcast := netip.MustParseAddr("::ffff:192.0.2.255").As16()
	uni := netip.MustParseAddr("2001:db8::1").As16()
	for _, tc := range []struct {
		name string
		oob  []byte
		want Ingress
	}{
		{"empty", nil, Ingress{}},
		{"IP_PKTINFO", pktinfo4(3, [4]byte{192, 0, 2, 1}, [4]byte{255, 255, 255, 255}),
			Ingress{Index: 3, Dst: netip.MustParseAddr("255.255.255.255"), Local: netip.MustParseAddr("192.0.2.1")}},
		{"IPV6_PKTINFO", pktinfo6(7, v6), Ingress{Index: 7, Dst: netip.AddrFrom16(v6)}},
		{"IPV6_PKTINFO v4-mapped", pktinfo6(2, mapped), Ingress{Index: 2, Dst: netip.MustParseAddr("192.0.2.1")}},
		{"IPV6_PKTINFO unicast", pktinfo6(4, uni), Ingress{Index: 4, Dst: netip.AddrFrom16(uni), Local: netip.AddrFrom16(uni)}},
		{"IP_PKTINFO then IPV6_PKTINFO v4-mapped", append(pktinfo4(2, [4]byte{192, 0, 2, 1}, [4]byte{192, 0, 2, 255}), pktinfo6(2, bcast)...),
			Ingress{Index: 2, Dst: netip.MustParseAddr("192.0.2.255"), Local: netip.MustParseAddr("192.0.2.1")}},
		{"after another message", append(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMP, make([]byte, 16)), pktinfo6(9, v6)...),
			Ingress{Index: 9, Dst: netip.AddrFrom16(v6)}},
		{"truncated", pktinfo6(9, v6)[:unix.CmsgLen(8)], Ingress{}},
		{"short data", cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, make([]byte, 4)), Ingress{}},
	} {
		if got := parseIngress(tc.oob); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// FuzzParseIngress checks that parseIngress never panics, and that it
// agrees with x/sys/unix's parser wherever that one accepts the buffer.
// Seeds are in testdata/fuzz/FuzzParseIngress and below.
func FuzzParseIngress(f *testing.F) {
	f.Add(pktinfo4(3, [4]byte{192, 0, 2, 1}, [4]byte{192, 0, 2, 255}))
	f.Add(pktinfo6(7, netip.MustParseAddr("2001:db8::1").As16()))
	f.Add(append(pktinfo4(1, [4]byte{}, [4]byte{127, 0, 0, 1}), pktinfo6(2, [16]byte{})...))
	f.Fuzz(func(t *testing.T, oob []byte) {
		got := parseIngress(oob)
		if want, ok := ingressOracle(oob); ok && got != want {
			t.Errorf("parseIngress(%x) = %+v, x/sys/unix says %+v", oob, got, want)
		}
	})
}

// oobOracle says, with x/sys/unix's allocating parser, whether oob holds an
// IP_PKTINFO or IPV6_PKTINFO naming another interface than index, as
// checkOOB must.
func oobOracle(oob []byte, index int) (foreign, ok bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return false, false
	}
	for _, m := range msgs {
		oif := 0
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= 4:
			oif = int(int32(binary.NativeEndian.Uint32(m.Data)))
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo:
			oif = int(int32(binary.NativeEndian.Uint32(m.Data[16:])))
		}
		if oif != 0 && oif != index {
			return true, true
		}
	}
	return false, true
}

func TestCheckOOB(t *testing.T) {
	v6 := netip.MustParseAddr("2001:db8::1").As16()
	for _, tc := range []struct {
		name string
		oob  []byte
		want bool // refused
	}{
		{"empty", nil, false},
		{"IP_PKTINFO of the binding", pktinfo4(3, [4]byte{}, [4]byte{}), false},
		{"IP_PKTINFO of none", pktinfo4(0, [4]byte{192, 0, 2, 1}, [4]byte{}), false},
		{"IP_PKTINFO of another", pktinfo4(4, [4]byte{}, [4]byte{}), true},
		{"IPV6_PKTINFO of another", pktinfo6(4, v6), true},
		{"IPV6_PKTINFO of the binding", pktinfo6(3, v6), false},
		{"another after a timestamp", append(cmsg(unix.SOL_SOCKET, unix.SO_TIMESTAMP, make([]byte, 16)), pktinfo4(9, [4]byte{}, [4]byte{})...), true},
	} {
		err := checkOOB(tc.oob, 3)
		if got := err != nil; got != tc.want {
			t.Errorf("%s: checkOOB = %v, want refused %v", tc.name, err, tc.want)
		}
		var be *BindError
		if err != nil && (!errors.As(err, &be) || be.Index != 3 || !errors.Is(err, syscall.EINVAL)) {
			t.Errorf("%s: got %v, want a *BindError for 3, EINVAL", tc.name, err)
		}
	}
}

// FuzzCheckOOB checks that checkOOB never panics, and that it refuses
// exactly what x/sys/unix's parser finds naming another interface,
// wherever that parser accepts the buffer.
func FuzzCheckOOB(f *testing.F) {
	f.Add(pktinfo4(3, [4]byte{192, 0, 2, 1}, [4]byte{}))
	f.Add(pktinfo4(4, [4]byte{}, [4]byte{}))
	f.Add(pktinfo6(4, netip.MustParseAddr("2001:db8::1").As16()))
	f.Add(append(pktinfo4(3, [4]byte{}, [4]byte{}), pktinfo6(5, [16]byte{})...))
	f.Fuzz(func(t *testing.T, oob []byte) {
		err := checkOOB(oob, 3)
		if foreign, ok := oobOracle(oob, 3); ok && foreign != (err != nil) {
			t.Errorf("checkOOB(%x) = %v, x/sys/unix finds another interface: %v", oob, err, foreign)
		}
	})
}
