//go:build !linux

package ifbind

import (
	"context"
	"errors"
	"testing"
)

func TestNetnsUnsupported(t *testing.T) {
	d := &Dialer{Index: 1, Netns: "blue"}
	if _, err := d.Dial("udp", "192.0.2.2:9"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("dial with Netns: got %v, want ErrUnsupported", err)
	}
	lc := &ListenConfig{Index: 1, Netns: "blue"}
	if _, err := lc.ListenPacket(context.Background(), "udp", ":0"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("listen with Netns: got %v, want ErrUnsupported", err)
	}
	if _, err := NewMonitorAt(context.Background(), "blue"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("NewMonitorAt: got %v, want ErrUnsupported", err)
	}
}
