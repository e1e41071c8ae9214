package ifbind_test

import (
	"context"
	"errors"
	"log"
	"net/http"
	"time"

	"github.com/ifbind/ifbind"
)

// Several uplinks: Ethernet first, the LTE modem when Ethernet has no
// carrier or does not answer within FallbackDelay. Every connection is
// bound to the uplink it goes through, and UplinkOf tells which one.
func ExampleUplinks() {
	ctx := context.Background()
	m, err := ifbind.NewMonitor(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	u := &ifbind.Uplinks{
		Bindings: []ifbind.Binding{m.Follow("eth0"), m.Follow("wwan0")},
		Strategy: ifbind.Race,
	}
	u.Timeout = 10 * time.Second // the whole dial, every uplink included

	c, err := u.DialContext(ctx, "tcp", "192.0.2.10:443")
	var ue *ifbind.UplinksError
	if errors.As(err, &ue) {
		for _, a := range ue.Uplinks {
			log.Printf("%s: tried %v: %v", a.Binding, a.Tried, a.Err)
		}
	}
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if l, ok := ifbind.UplinkOf(c); ok {
		log.Printf("connected through %s", l) // "eth0 (index 2)"
		// Later traffic of this session can stay on it:
		// &ifbind.Dialer{Index: l.Index}.
	}

	// One HTTP client that fails over: each new connection goes through
	// the uplink the strategy picks then.
	client := &http.Client{Transport: ifbind.NewTransport(u)}
	resp, err := client.Get("https://example.com/")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
}
