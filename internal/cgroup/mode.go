package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Mode is the cgroup layout of a host, as far as memory attribution cares.
type Mode string

const (
	// ModeAuto is the --cgroup-mode default: use what DetectMode finds.
	ModeAuto Mode = "auto"
	// ModeV1 is a pure cgroup v1 host (CentOS 7): the memory controller is a
	// v1 hierarchy and there is no cgroup2 mount.
	ModeV1 Mode = "v1"
	// ModeHybrid has v1 controllers, memory among them, plus a cgroup2 mount
	// that holds no controllers (systemd's "unified" mount). The kernel
	// charges memory to the v1 memory cgroup, so attribution works as on v1.
	ModeHybrid Mode = "hybrid"
	// ModeV2 is a unified host: memory is a cgroup2 controller and
	// bpf_get_current_cgroup_id names the charged cgroup.
	ModeV2 Mode = "v2"
)

// MemoryV1 reports whether the charged cgroup is a v1 memory cgroup, so the
// BPF side must read task->cgroups->subsys[memory_cgrp_id] instead of using
// bpf_get_current_cgroup_id (which names the v2 cgroup, almost always the
// root on v1 and hybrid hosts).
func (m Mode) MemoryV1() bool { return m == ModeV1 || m == ModeHybrid }

// ParseMode parses a --cgroup-mode value: "auto" (or empty), "v1" or "v2".
// "v1" means the v1 memory hierarchy whether or not a cgroup2 mount exists,
// so there is no separate "hybrid" override.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "auto":
		return ModeAuto, nil
	case "v1":
		return ModeV1, nil
	case "v2":
		return ModeV2, nil
	}
	return "", fmt.Errorf("invalid cgroup mode %q: want auto, v1 or v2", s)
}

// Mounts holds where the two hierarchies fragscope can attribute to are
// mounted; "" when absent. The *Root fields are the mount's root inside its
// hierarchy (the fourth field of mountinfo): "/" on a host, a cgroup path
// when fragscope runs inside a container with a namespaced cgroupfs.
type Mounts struct {
	V2         string // cgroup2 mount point, e.g. /sys/fs/cgroup or /sys/fs/cgroup/unified
	V2Root     string
	Memory     string // v1 memory controller mount point, e.g. /sys/fs/cgroup/memory
	MemoryRoot string
}

// Hierarchy returns the mount point, the hierarchy name ("memory" or "v2",
// as NewResolver takes it) and the mount's root for the ids mode reports.
func (m Mounts) Hierarchy(mode Mode) (mountPoint, hierarchy, root string, err error) {
	switch mode {
	case ModeV1, ModeHybrid:
		if m.Memory == "" {
			return "", "", "", errors.New("cgroup mode " + string(mode) + ": no cgroup v1 memory hierarchy mounted")
		}
		return m.Memory, HierarchyMemory, m.MemoryRoot, nil
	case ModeV2:
		if m.V2 == "" {
			return "", "", "", errors.New("cgroup mode v2: no cgroup2 hierarchy mounted")
		}
		return m.V2, HierarchyV2, m.V2Root, nil
	}
	return "", "", "", fmt.Errorf("cgroup mode %q has no hierarchy", mode)
}

// Select returns the mode to attribute by: detected when override is
// ModeAuto, otherwise the override, provided its hierarchy is mounted.
// Overriding "v1" on a hybrid host yields ModeHybrid (same attribution).
func Select(override, detected Mode, m Mounts) (Mode, error) {
	mode := override
	switch override {
	case ModeAuto, "":
		mode = detected
	case ModeV1:
		if m.V2 != "" {
			mode = ModeHybrid
		}
	}
	if _, _, _, err := m.Hierarchy(mode); err != nil {
		return "", err
	}
	return mode, nil
}

// DetectMode reads a mountinfo file (proc(5)) and returns the host's mode
// and the mount points. A cgroup2 mount with a v1 memory mount is hybrid;
// without one it is v2. When a hierarchy is mounted more than once (bind
// mounts), the mount of its root ("/") wins over subtree mounts, and the
// first one otherwise; a later mount on the same mount point shadows the
// earlier one (a DaemonSet's hostPath over the runtime's own cgroupfs).
func DetectMode(mountinfo io.Reader) (Mode, Mounts, error) {
	var m Mounts
	sc := bufio.NewScanner(mountinfo)
	// Lines are short, but option strings of overlay mounts can run to a
	// few KiB; 1 MiB keeps one pathological line from failing detection.
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f := strings.Fields(pre)
		g := strings.Fields(post)
		if len(f) < 5 || len(g) < 1 {
			continue
		}
		root, point := nsRoot(unescape(f[3])), unescape(f[4])
		switch g[0] {
		case "cgroup2":
			if m.V2 == "" || point == m.V2 || (m.V2Root != "/" && root == "/") {
				m.V2, m.V2Root = point, root
			}
		case "cgroup":
			if len(g) < 3 || !hasOption(g[2], "memory") {
				continue
			}
			if m.Memory == "" || point == m.Memory || (m.MemoryRoot != "/" && root == "/") {
				m.Memory, m.MemoryRoot = point, root
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", m, fmt.Errorf("mountinfo line %d: %w", n+1, err)
	}
	switch {
	case m.Memory != "" && m.V2 != "":
		return ModeHybrid, m, nil
	case m.Memory != "":
		return ModeV1, m, nil
	case m.V2 != "":
		return ModeV2, m, nil
	}
	return "", m, errors.New("no cgroup2 mount and no cgroup v1 memory mount in mountinfo")
}

// Detect runs DetectMode on /proc/self/mountinfo.
func Detect() (Mode, Mounts, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", Mounts{}, fmt.Errorf("detect cgroup mode: %w", err)
	}
	defer f.Close()
	mode, m, err := DetectMode(f)
	if err != nil {
		return "", m, fmt.Errorf("detect cgroup mode: %w", err)
	}
	return mode, m, nil
}

// hasOption reports whether the comma-separated super options list opt;
// v1 mounts name their controllers there ("rw,memory", "rw,cpu,cpuacct").
func hasOption(opts, opt string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// unescape undoes the kernel's octal escapes of space, tab, newline and
// backslash in mountinfo paths (seq_path with " \t\n\\").
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// nsRoot reads a cgroupfs mount's root as mountinfo shows it. Inside a
// cgroup namespace (containerd and CRI-O give each container one on cgroup
// v2 nodes) the root is shown relative to the namespace's root, and a
// hostPath mount of the node's /sys/fs/cgroup then reads "/../..": an
// ancestor of the namespace root. The whole hierarchy is what a node agent
// mounts, so such a root is taken as the hierarchy's root; the depth of the
// namespace cannot be seen from inside it.
func nsRoot(root string) string {
	if root == "/.." || strings.HasPrefix(root, "/../") {
		for _, part := range strings.Split(strings.Trim(root, "/"), "/") {
			if part != ".." {
				return root
			}
		}
		return "/"
	}
	return root
}
