package ifbind_test

import (
	"errors"
	"fmt"
	"log"
	"syscall"

	"github.com/ifbind/ifbind"
)

// List the links of this network namespace, as `ifbind links` does.
func ExampleLinks() {
	links, err := ifbind.Links()
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range links {
		fmt.Printf("%d %s up=%v mtu=%d type=%s altnames=%v\n", l.Index, l.Name, l.Up(), l.MTU, l.Type, l.Altnames)
	}
}

// A name no link has is ENODEV; the message suggests close names, found
// when it is printed.
func ExampleLinkByName() {
	l, err := ifbind.LinkByName("eth1")
	if errors.Is(err, syscall.ENODEV) {
		log.Fatal(err) // "ifbind: no link named eth1; did you mean eth0 or ens1?"
	}
	if err != nil {
		log.Fatal(err)
	}
	d := &ifbind.Dialer{Index: l.Index}
	_ = d
}
