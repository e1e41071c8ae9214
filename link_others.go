//go:build !linux

package ifbind

import (
	"net"
	"slices"
)

// hasAliases tells whether links have aliases here.
const hasAliases = false

// kernelSource asks the operating system through the net package (there is
// no netlink outside Linux), which lists every interface for each lookup.
type kernelSource struct{}

func kernelLinks() linkSource { return kernelSource{} }

func (k kernelSource) linkByName(name string) (*Link, error) {
	return k.find(func(l Link) bool { return l.Name == name })
}

func (k kernelSource) linkByIndex(index int) (*Link, error) {
	return k.find(func(l Link) bool { return l.Index == index })
}

func (k kernelSource) find(match func(Link) bool) (*Link, error) {
	links, err := k.links()
	if err != nil {
		return nil, err
	}
	if i := slices.IndexFunc(links, match); i >= 0 {
		return &links[i], nil
	}
	return nil, nil
}

func (kernelSource) links() ([]Link, error) {
	ifis, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	links := make([]Link, len(ifis))
	for i, ifi := range ifis {
		links[i] = Link{Index: ifi.Index, Name: ifi.Name, HardwareAddr: ifi.HardwareAddr, Flags: ifi.Flags, MTU: ifi.MTU}
	}
	slices.SortFunc(links, func(a, b Link) int { return a.Index - b.Index })
	return links, nil
}

func (k kernelSource) later() linkSource { return k }
