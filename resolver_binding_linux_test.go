package ifbind

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/ifbind/ifbind/internal/testnet"
)

// TestNewResolverWithBinding: a Dialer that binds through a Binding gets a
// resolver too, but not for a link-local nameserver, whose zone would follow
// no link, nor with Index set as well.
func TestNewResolverWithBinding(t *testing.T) {
	testnet.Require(t)
	m, err := NewMonitor(context.Background())
	if err != nil {
		t.Fatalf("failed to start a monitor: %v", err)
	}
	defer m.Close()
	d := &Dialer{Binding: m.Follow("lo")}
	if _, err := NewResolver(d, "192.0.2.53"); err != nil {
		t.Errorf("NewResolver with a Binding: %v", err)
	}
	if _, err := NewResolver(d, "fe80::53"); err == nil || !strings.Contains(err.Error(), "link-local") {
		t.Errorf("NewResolver with a Binding and a link-local nameserver: got %v, want an error about it", err)
	}
	d.Index = 1
	if _, err := NewResolver(d, "192.0.2.53"); !errors.Is(err, syscall.EINVAL) || !errors.Is(err, errBothSet) {
		t.Errorf("NewResolver with Index and Binding: got %v, want errBothSet", err)
	}
}
