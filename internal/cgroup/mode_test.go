package cgroup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openFixture(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "testdata", "cgroup", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestDetectMode(t *testing.T) {
	tests := []struct {
		fixture string
		mode    Mode
		mounts  Mounts
	}{
		{"mountinfo-centos7", ModeV1, Mounts{Memory: "/sys/fs/cgroup/memory", MemoryRoot: "/"}},
		{"mountinfo-hybrid", ModeHybrid, Mounts{
			V2: "/sys/fs/cgroup/unified", V2Root: "/",
			Memory: "/sys/fs/cgroup/memory", MemoryRoot: "/",
		}},
		// The kubelet volume mounts a subtree of the same hierarchy after
		// the host's mount; the root mount must win.
		{"mountinfo-v2", ModeV2, Mounts{V2: "/sys/fs/cgroup", V2Root: "/"}},
		{"mountinfo-v2-container", ModeV2, Mounts{
			V2:     "/host/sys/fs/cgroup v2",
			V2Root: "/kubepods.slice/kubepods-pod5f1c4b2e_0d3a_4c8e_9a61_2b7f3d9e8c10.slice",
		}},
		// containerd on a v2 node: the container's own cgroupfs in its
		// cgroup namespace ("/"), shadowed by the DaemonSet's hostPath of
		// the node's, which the namespace shows as "/../../..".
		{"mountinfo-v2-cgroupns", ModeV2, Mounts{V2: "/sys/fs/cgroup", V2Root: "/"}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			mode, m, err := DetectMode(openFixture(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if mode != tt.mode || m != tt.mounts {
				t.Errorf("DetectMode = %s %+v, want %s %+v", mode, m, tt.mode, tt.mounts)
			}
		})
	}
}

func TestNsRoot(t *testing.T) {
	for in, want := range map[string]string{
		"/": "/", "/..": "/", "/../../..": "/", "/kubepods": "/kubepods",
		"/../kubepods": "/../kubepods", "/..x": "/..x",
	} {
		if got := nsRoot(in); got != want {
			t.Errorf("nsRoot(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDetectModeNone(t *testing.T) {
	if _, _, err := DetectMode(openFixture(t, "mountinfo-none")); err == nil {
		t.Fatal("no cgroup mounts: want an error")
	}
	// Garbage and truncated lines are skipped, not fatal.
	mode, m, err := DetectMode(strings.NewReader("x\n1 2 3\n\n - cgroup2\n41 31 0:38 / /cg rw - cgroup2 cgroup2 rw\n"))
	if err != nil || mode != ModeV2 || m.V2 != "/cg" {
		t.Fatalf("DetectMode = %s %+v %v", mode, m, err)
	}
}

func TestParseModeSelect(t *testing.T) {
	for in, want := range map[string]Mode{"": ModeAuto, "auto": ModeAuto, "v1": ModeV1, "v2": ModeV2} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"hybrid", "V2", "cgroup2", "1"} {
		if _, err := ParseMode(bad); err == nil {
			t.Errorf("ParseMode(%q): want error", bad)
		}
	}

	hybrid := Mounts{V2: "/sys/fs/cgroup/unified", V2Root: "/", Memory: "/sys/fs/cgroup/memory", MemoryRoot: "/"}
	v1only := Mounts{Memory: "/sys/fs/cgroup/memory", MemoryRoot: "/"}
	v2only := Mounts{V2: "/sys/fs/cgroup", V2Root: "/"}
	tests := []struct {
		override, detected Mode
		m                  Mounts
		want               Mode
		err                bool
	}{
		{ModeAuto, ModeHybrid, hybrid, ModeHybrid, false},
		{ModeV2, ModeHybrid, hybrid, ModeV2, false},
		{ModeV1, ModeHybrid, hybrid, ModeHybrid, false},
		{ModeV1, ModeV1, v1only, ModeV1, false},
		{ModeAuto, ModeV2, v2only, ModeV2, false},
		{ModeV1, ModeV2, v2only, "", true},
		{ModeV2, ModeV1, v1only, "", true},
	}
	for _, tt := range tests {
		got, err := Select(tt.override, tt.detected, tt.m)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("Select(%s, %s) = %q, %v; want %q, error %v", tt.override, tt.detected, got, err, tt.want, tt.err)
		}
	}

	mp, h, root, err := hybrid.Hierarchy(ModeHybrid)
	if err != nil || mp != "/sys/fs/cgroup/memory" || h != HierarchyMemory || root != "/" {
		t.Errorf("Hierarchy(hybrid) = %q %q %q %v", mp, h, root, err)
	}
	mp, h, _, err = hybrid.Hierarchy(ModeV2)
	if err != nil || mp != "/sys/fs/cgroup/unified" || h != HierarchyV2 {
		t.Errorf("Hierarchy(v2) = %q %q %v", mp, h, err)
	}
	if !ModeV1.MemoryV1() || !ModeHybrid.MemoryV1() || ModeV2.MemoryV1() {
		t.Error("MemoryV1: v1 and hybrid attribute to the v1 memory cgroup, v2 does not")
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:  "/a b",
		`/a\134b`:  `/a\b`,
		`/a\011`:   "/a\t",
		`/plain`:   "/plain",
		`/trail\0`: `/trail\0`,
		`/x\999`:   `/x\999`,
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDetectLive checks detection on this machine against what the
// project's machines are known to have: hybrid, memory at
// /sys/fs/cgroup/memory, cgroup2 at /sys/fs/cgroup/unified. Elsewhere it
// only checks that detection succeeds and names a mounted hierarchy.
func TestDetectLive(t *testing.T) {
	mode, m, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mode %s, mounts %+v", mode, m)
	mp, _, _, err := m.Hierarchy(mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mp); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err == nil {
		if _, err := os.Stat("/sys/fs/cgroup/memory/memory.stat"); err == nil && mode != ModeHybrid {
			t.Errorf("unified and v1 memory both mounted, detected %s", mode)
		}
	}
}
