package container

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseRuncArgs(t *testing.T) {
	for _, tc := range []struct {
		cmd, id, root string
	}{
		{"runc --root /tmp/state run ctr2", "ctr2", "/tmp/state"},
		{"/usr/sbin/runc run -b /b --pid-file /p --no-pivot web", "web", "/run/runc"},
		// containerd-shim-runc-v2's call (containerd 1.6).
		{"runc --root /run/containerd/runc/default --log /run/containerd/io.containerd.runtime.v2.task/default/c1/log.json --log-format json create --bundle /run/containerd/io.containerd.runtime.v2.task/default/c1 --pid-file /run/containerd/io.containerd.runtime.v2.task/default/c1/init.pid c1", "c1", "/run/containerd/runc/default"},
		{"runc --root=/x run --detach=true d1", "d1", "/x"},
		{"runc list", "", ""},
		{"runc exec c1 sh", "", ""},
		{"sh -c runc run x", "", ""},
	} {
		id, root, ok := parseRuncArgs(strings.Fields(tc.cmd))
		if id != tc.id || (ok && root != tc.root) || ok != (tc.id != "") {
			t.Errorf("%q: got %q %q %v, want %q %q", tc.cmd, id, root, ok, tc.id, tc.root)
		}
	}
}

// A fake /proc: runc:[1:CHILD] (pid 30) is a child of `runc run` (20) under
// a shell (10).
func TestRuncProcess(t *testing.T) {
	proc := t.TempDir()
	for pid, v := range map[int][2]string{
		30: {"Name:\trunc:[1:CHILD]\nPPid:\t20\n", "runc\x00init\x00"},
		20: {"Name:\trunc\nPPid:\t10\n", "runc\x00--root\x00/tmp/s\x00run\x00ctr2\x00"},
		10: {"Name:\tsh\nPPid:\t1\n", "sh\x00"},
		40: {"Name:\tbash\nPPid:\t10\n", "bash\x00"},
	} {
		dir := filepath.Join(proc, strconv.Itoa(pid))
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "status"), []byte(v[0]), 0o644)
		os.WriteFile(filepath.Join(dir, "cmdline"), []byte(v[1]), 0o644)
	}
	if id, root, ok := RuncProcess(proc, 30); !ok || id != "ctr2" || root != "/tmp/s" {
		t.Errorf("got %q %q %v", id, root, ok)
	}
	if _, _, ok := RuncProcess(proc, 40); ok {
		t.Error("a shell's child is not a runc container")
	}
	if _, _, ok := RuncProcess(proc, 99); ok {
		t.Error("a vanished task names nothing")
	}
}
