package ifbind

import (
	"slices"
	"testing"
)

func TestCloseNames(t *testing.T) {
	names := []string{"eth0", "ens1", "enp0s31f6", "lo", "wlan0", "eth0", "docker0", "ethernet-uplink"}
	each := func(yield func(string) bool) {
		for _, n := range names {
			if !yield(n) {
				return
			}
		}
	}
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"eth1", []string{"eth0", "ens1"}},
		{"eth", []string{"eth0", "ethernet-uplink"}},
		{"enp0s31f7", []string{"enp0s31f6"}},
		{"xyzzy", nil},
		{"eth0", nil}, // an exact match is not "close"
		{"wlan1", []string{"wlan0"}},
	} {
		if got := closeNames(tc.name, each); !slices.Equal(got, tc.want) {
			t.Errorf("closeNames(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b  string
		limit int
		want  int
	}{
		{"eth0", "eth1", 3, 1},
		{"eth0", "eth0", 3, 0},
		{"kitten", "sitting", 3, 3},
		{"kitten", "sitting", 2, 3}, // above the limit: limit+1
		{"a", "abcdef", 2, 3},
	} {
		if got := editDistance(tc.a, tc.b, tc.limit); got != tc.want {
			t.Errorf("editDistance(%q, %q, %d) = %d, want %d", tc.a, tc.b, tc.limit, got, tc.want)
		}
	}
}
