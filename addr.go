package ifbind

import "net/netip"

// An ifAddr is one address of a link, as a Monitor last saw it.
type ifAddr struct {
	addr  netip.Addr
	bits  int
	flags uint32 // IFA_F_* of Linux
}

// The address flags usability reads. They are Linux's (IFA_F_*), and only
// the Linux Monitor fills an address table.
const (
	ifaDadFailed = 0x08 // duplicate address detection failed
	ifaTentative = 0x40 // duplicate address detection still runs
)

// canSource reports whether a socket may send from a, as the kernel would
// pick it as a source address: not while duplicate address detection runs
// on it, nor once it failed.
func (a ifAddr) canSource() bool {
	return a.flags&(ifaTentative|ifaDadFailed) == 0
}

// An addrTable maps a link's index to its addresses. It is immutable once a
// snapshot holds it: a change replaces the slice of the link it touches.
type addrTable map[int][]ifAddr
