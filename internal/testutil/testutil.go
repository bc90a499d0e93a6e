// Package testutil holds what the privileged tests share: the rule for when
// a test that needs root may skip.
package testutil

import (
	"os"
	"testing"

	"github.com/cilium/ebpf/rlimit"
)

// RequireRoot skips a test that needs root only outside CI: CI runs as root
// and must exercise the privileged paths, so there a missing privilege is a
// failure, never a skip. As root it also lifts the memlock limit that
// kernels before 5.11 charge BPF maps against.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		if err := rlimit.RemoveMemlock(); err != nil {
			tb.Fatalf("remove memlock limit: %v", err)
		}
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatal("this test needs root, and CI=true: a missing privilege is a failure here")
	}
	tb.Skip("needs root (set CI=true to make this a failure)")
}
