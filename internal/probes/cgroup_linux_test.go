package probes

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const ringChildEnv = "FRAGSCOPE_TEST_RING_CHILD"

// cgroupDir creates a cgroup under root and returns it with its id, the
// inode number of its directory (what the kernel's cgroup ids are).
func cgroupDir(t *testing.T, root string) (string, uint64) {
	t.Helper()
	if _, err := os.Stat(root); err != nil {
		t.Skipf("no cgroup hierarchy at %s on this machine", root)
	}
	dir := filepath.Join(root, fmt.Sprintf("fragscope-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return dir, st.Ino
}

// A child in its own cgroup sets up 8 AF_PACKET ring blocks of 256 KiB
// (order-6 unmovable allocations); the per-cgroup counters must put them
// on that cgroup, in both attribution modes.
func TestCgroupAttribution(t *testing.T) {
	if os.Getenv(ringChildEnv) != "" {
		t.Skip("child mode runs in TestRingChild")
	}
	requireRoot(t)
	for _, mode := range []struct {
		name string
		root string
		v1   bool
	}{
		{"v2", cgroup2Root(), false},
		{"v1-memory", "/sys/fs/cgroup/memory", true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			if mode.root == "" {
				t.Skip("no cgroup2 hierarchy mounted")
			}
			dir, id := cgroupDir(t, mode.root)
			s := openSet(t, Options{Hooks: []Hook{HookPageAlloc}, CgroupV1Memory: mode.v1})
			cmd := exec.Command(os.Args[0], "-test.run", "^TestRingChild$")
			cmd.Env = append(os.Environ(), ringChildEnv+"="+dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			counts, overflow, err := s.CgroupAllocs()
			if err != nil {
				t.Fatal(err)
			}
			c, ok := counts[id]
			if !ok {
				t.Fatalf("no counters for cgroup %d (%s); %d cgroups seen, overflow %d", id, dir, len(counts), overflow)
			}
			if c.Unmovable[6] < 8 || c.HighOrder < 8 {
				t.Errorf("cgroup %s: unmovable order-6 %d, high-order %d; want >= 8 each", dir, c.Unmovable[6], c.HighOrder)
			}
			// The batched read (5.6+) and the entry-by-entry one of older
			// kernels see the same counters for the child's cgroup.
			it := &cgroupBatch{unsupported: true}
			var iterated []pageallocCgroupAlloc
			if err := it.read(s.cgroupAllocs, func(cg uint64, perCPU []pageallocCgroupAlloc) {
				if cg == id {
					iterated = append([]pageallocCgroupAlloc(nil), perCPU...)
				}
			}); err != nil {
				t.Fatal(err)
			}
			var sum uint64
			for _, v := range iterated {
				sum += v.Unmovable[6]
			}
			if sum != c.Unmovable[6] {
				t.Errorf("iterated read: order-6 %d, batched read %d", sum, c.Unmovable[6])
			}
			// Misattribution would put the child's blocks on the cgroup it
			// was started in, this test's own, before it moved. (Other
			// cgroups are left alone: packages tested beside this one set
			// up rings of the same size in theirs.)
			if own, ok := ownCgroupID(mode.root, mode.v1); ok && own != id {
				if oc := counts[own]; c.Unmovable[6] > 0 && oc.Unmovable[6] == c.Unmovable[6] {
					t.Errorf("this test's own cgroup %d has the child's order-6 count %d: misattributed?", own, c.Unmovable[6])
				}
			}
		})
	}
}

func cgroup2Root() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if i := strings.Index(line, " - cgroup2 "); i >= 0 {
			return strings.Fields(line)[4]
		}
	}
	return ""
}

// TestRingChild joins the cgroup named by the environment and sets up the
// rings; it is the child of TestCgroupAttribution.
func TestRingChild(t *testing.T) {
	dir := os.Getenv(ringChildEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestCgroupAttribution")
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		t.Fatal(err)
	}
	packetRing(t, 256<<10, 8)
}

// More cgroups than the map holds: the extra ones are counted as overflow,
// not lost silently, and the ones that fit keep their counts.
func TestCgroupMapFull(t *testing.T) {
	if os.Getenv(ringChildEnv) != "" {
		t.Skip("child mode runs in TestRingChild")
	}
	requireRoot(t)
	root := cgroup2Root()
	if root == "" {
		t.Skip("no cgroup2 hierarchy mounted")
	}
	base, _ := cgroupDir(t, root)
	// Room for one entry: the first cgroup to allocate takes it.
	s := openSet(t, Options{Hooks: []Hook{HookPageAlloc}, CgroupMapEntries: 1})
	var ids []uint64
	for i := 0; i < 3; i++ {
		dir := filepath.Join(base, fmt.Sprintf("c%d", i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(dir) })
		var st syscall.Stat_t
		syscall.Stat(dir, &st)
		ids = append(ids, st.Ino)
		cmd := exec.Command(os.Args[0], "-test.run", "^TestRingChild$")
		cmd.Env = append(os.Environ(), ringChildEnv+"="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
	}
	counts, overflow, err := s.CgroupAllocs()
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 1 {
		t.Errorf("map of 1 entry holds %d cgroups", len(counts))
	}
	if overflow == 0 {
		t.Error("no overflow counted although cgroups outnumbered the map")
	}
	attributed := 0
	for _, id := range ids {
		if c, ok := counts[id]; ok && c.Unmovable[6] >= 8 {
			attributed++
		}
	}
	t.Logf("map entries %d, overflow %d, children attributed %d of %d", len(counts), overflow, attributed, len(ids))
}

// ownCgroupID is the id (directory inode) of this process's cgroup in the
// hierarchy mounted at root: its memory line on v1, its 0:: line on v2.
func ownCgroupID(root string, v1 bool) (uint64, bool) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if (v1 && slices.Contains(strings.Split(parts[1], ","), "memory")) || (!v1 && parts[0] == "0") {
			var st syscall.Stat_t
			if syscall.Stat(filepath.Join(root, parts[2]), &st) != nil {
				return 0, false
			}
			return st.Ino, true
		}
	}
	return 0, false
}
