package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/fragscope/fragscope/internal/testutil"
)

// SIGINT ends watch cleanly: exit 0 and the final summary printed.
func TestWatchSIGINTSummary(t *testing.T) {
	requireRoot(t)
	bin := buildBinary(t)
	ready := filepath.Join(t.TempDir(), "ready")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "watch", "--interval", "200ms", "--ready-file", ready)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitReady(t, cmd, ready, &stderr)
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("watch after SIGINT: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "fragscope session summary") {
		t.Errorf("no final summary after SIGINT:\n%s", stdout.String())
	}
}

// Without privileges: one line naming every missing capability and the
// fix, and a non-zero exit.
func TestWatchUnprivileged(t *testing.T) {
	requireRoot(t) // root is needed to drop to nobody
	bin := buildBinary(t)
	cmd := exec.Command(bin, "watch", "--duration", "1s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("watch as nobody succeeded:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "CAP_BPF") || !strings.Contains(lines[0], "CAP_PERFMON") || !strings.Contains(lines[0], "sudo") {
		t.Errorf("want one line naming CAP_BPF and CAP_PERFMON with the fix, got:\n%s", out)
	}
}
