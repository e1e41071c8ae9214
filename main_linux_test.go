package ifbind

import (
	"testing"

	"github.com/ifbind/ifbind/internal/testnet"
)

func TestMain(m *testing.M) {
	// The descriptor of the namespace threads go back to is opened once
	// and kept: open it now, so that no test is blamed for it.
	homeNetns()
	testnet.Main(m)
}
