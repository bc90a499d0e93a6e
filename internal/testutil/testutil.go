// Package testutil holds what the privileged tests share: the rules for
// when a test that needs root, or a program CI installs, may skip.
package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

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

// RequireTools returns the paths of the programs a test drives, skipping
// the test when one is missing, except under CI=true, where .ci/run
// installs pkgs (the Debian packages named in the messages) and a missing
// program is a failure.
func RequireTools(tb testing.TB, pkgs string, tools ...string) map[string]string {
	tb.Helper()
	paths := make(map[string]string, len(tools))
	for _, b := range tools {
		p, err := exec.LookPath(b)
		if err != nil {
			if os.Getenv("CI") == "true" {
				tb.Fatalf("%s not found: CI installs %s", b, pkgs)
			}
			tb.Skipf("%s not found (apt-get install %s)", b, pkgs)
		}
		paths[b] = p
	}
	return paths
}

// StartRecorder starts the fragscope binary with args plus --ready-file and
// waits until it has attached and written the file, so what the test does
// next is seen. The process is killed at cleanup unless the test waited for
// it; its stderr is returned for failure messages.
func StartRecorder(tb testing.TB, bin string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	tb.Helper()
	ready := filepath.Join(tb.TempDir(), "ready")
	var stderr bytes.Buffer
	cmd := exec.Command(bin, append(args, "--ready-file", ready)...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	WaitReady(tb, cmd, ready, &stderr)
	return cmd, &stderr
}

// WaitReady waits up to 30 s for cmd's --ready-file, killing cmd and
// failing the test with its stderr if it never appears.
func WaitReady(tb testing.TB, cmd *exec.Cmd, ready string, stderr *bytes.Buffer) {
	tb.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			return
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			tb.Fatalf("%s never wrote its ready file; stderr:\n%s", filepath.Base(cmd.Path), stderr.String())
		}
	}
}
