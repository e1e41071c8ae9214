package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const envTest = "IFBIND_SANDBOX_TEST"

func netns(t *testing.T) uint64 {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &st); err != nil {
		t.Fatalf("failed to stat the network namespace: %v", err)
	}
	return st.Ino
}

// TestStart runs this test again through Start and checks that the child
// ran in another network namespace, of the kind root gets (a network
// namespace) or anyone else gets (user and network namespaces, root in
// them), and was told which.
func TestStart(t *testing.T) {
	if mode := os.Getenv(envTest); mode != "" {
		fmt.Printf("mode=%s netns=%d uid=%d\n", mode, netns(t), os.Geteuid())
		return
	}
	var out strings.Builder
	cmd, err := Start(envTest, []string{"-test.run=^TestStart$"}, func(cmd *exec.Cmd) { cmd.Stdout = &out })
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("failed to start in new namespaces: %v", err)
		}
		t.Skipf("no namespaces here: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child failed: %v\n%s", err, out.String())
	}
	var mode string
	var ns uint64
	var uid int
	if _, err := fmt.Sscanf(out.String(), "mode=%s netns=%d uid=%d", &mode, &ns, &uid); err != nil {
		t.Fatalf("failed to read the child's report: %v\n%s", err, out.String())
	}
	want := "user+net"
	if os.Geteuid() == 0 {
		want = "net"
	}
	if mode != want || ns == netns(t) || uid != 0 {
		t.Errorf("child: mode %s, netns %d, uid %d; want mode %s, a netns other than %d, uid 0", mode, ns, uid, want, netns(t))
	}
}
