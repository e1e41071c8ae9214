//go:build !linux

package ifbind

import (
	"context"
	"errors"
	"net"
	"testing"
)

func TestMonitorUnsupported(t *testing.T) {
	m, err := NewMonitor(context.Background())
	if !errors.Is(err, ErrUnsupported) || m != nil {
		t.Fatalf("NewMonitor: got %v, %v; want nil and ErrUnsupported", m, err)
	}
	var zero Monitor
	d := &Dialer{Binding: zero.Follow("eth0")}
	if _, err := d.Dial("udp", "127.0.0.1:9"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("dial through the zero Monitor: got %v, want net.ErrClosed", err)
	}
	if _, err := LinkByAlias("uplink"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("LinkByAlias: got %v, want ErrUnsupported", err)
	}
}
