//go:build !linux

package ifbind

import (
	"context"
	"fmt"
)

// monitorConfig holds what tests change about a Monitor; nothing outside
// Linux.
type monitorConfig struct{}

func newMonitor(context.Context, monitorConfig) (*Monitor, error) {
	return nil, fmt.Errorf("ifbind: %w", unsupportedError("the link monitor (netlink)"))
}

func newMonitorAt(context.Context, *nsRef) (*Monitor, error) {
	return newMonitor(context.Background(), monitorConfig{})
}
