package ifbind

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// A Link is a network interface as it was when it was looked up: its index,
// which is what a Dialer or ListenConfig binds to, and the name and hardware
// address it had then. A Link is a plain value, safe to copy and share; it
// does not follow later changes to the interface.
type Link struct {
	Index        int
	Name         string
	HardwareAddr net.HardwareAddr // nil for links without one, such as loopback
}

// String returns the link's name and index, as in "eth0 (index 2)".
func (l Link) String() string {
	return l.Name + " (index " + strconv.Itoa(l.Index) + ")"
}

// LookupLink returns the link that spec names: a decimal index ("3"), a
// hardware address ("02:00:5e:10:00:01"), or else a name or alternative
// name ("eth0", "enp0s31f6"). It is the form command lines and
// configuration files take. A spec that names no link is an error for
// which errors.Is(err, syscall.ENODEV) holds on Linux.
func LookupLink(spec string) (Link, error) {
	kind, index, mac, err := parseLinkSpec(spec)
	if err != nil {
		return Link{}, err
	}
	switch kind {
	case specIndex:
		return LinkByIndex(index)
	case specHardwareAddr:
		return LinkByHardwareAddr(mac)
	}
	return LinkByName(spec)
}

type specKind int

const (
	specName specKind = iota
	specIndex
	specHardwareAddr
)

// parseLinkSpec tells which kind of link spec is: all digits make an index,
// a MAC-48 or EUI-64 in colon or hyphen form a hardware address, anything
// else that is a valid interface name a name.
func parseLinkSpec(spec string) (kind specKind, index int, mac net.HardwareAddr, err error) {
	if spec == "" {
		return 0, 0, nil, errors.New("ifbind: empty link spec")
	}
	if isDigits(spec) {
		index, err := strconv.Atoi(spec)
		if err != nil || index <= 0 {
			return 0, 0, nil, fmt.Errorf("ifbind: link spec %q: not a valid interface index", spec)
		}
		return specIndex, index, nil, nil
	}
	if strings.ContainsAny(spec, ":-") {
		if mac, err := net.ParseMAC(spec); err == nil && !strings.Contains(spec, ".") {
			return specHardwareAddr, 0, mac, nil
		}
	}
	// Linux takes names of 1 to 15 bytes without '/', ':' is allowed
	// but not whitespace. Altnames may be up to 127 bytes.
	if len(spec) > 127 || strings.ContainsAny(spec, "/ \t\n\x00") || spec == "." || spec == ".." {
		return 0, 0, nil, fmt.Errorf("ifbind: link spec %q: not a valid interface name", spec)
	}
	return specName, 0, nil, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
