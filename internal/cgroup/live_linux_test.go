package cgroup

import (
	"encoding/binary"
	"fmt"
	"github.com/fragscope/fragscope/internal/testutil"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func requireRoot(tb testing.TB) { testutil.RequireRoot(tb) }

type liveHierarchy struct {
	name, mount, hierarchy string
}

// liveHierarchies returns both hierarchies with their mount points from
// this host's mountinfo; a hierarchy that is not mounted has mount "".
func liveHierarchies(tb testing.TB) []liveHierarchy {
	tb.Helper()
	_, m, err := Detect()
	if err != nil {
		tb.Fatal(err)
	}
	return []liveHierarchy{
		{"v2", m.V2, HierarchyV2},
		{"v1-memory", m.Memory, HierarchyMemory},
	}
}

// mkcgroups creates the directories (cgroups) below base, registering
// their removal first, and returns the id of each.
func mkcgroups(tb testing.TB, base string, rels ...string) map[string]uint64 {
	tb.Helper()
	tb.Cleanup(func() { rmcgroups(tb, base) })
	ids := make(map[string]uint64, len(rels))
	for _, rel := range rels {
		p := filepath.Join(base, rel)
		if err := os.MkdirAll(p, 0o755); err != nil {
			tb.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			tb.Fatal(err)
		}
		ids[rel] = st.Ino
	}
	return ids
}

// rmcgroups removes base and the cgroups below it, deepest first: rmdir
// works on a cgroup with no tasks and no children, and the files inside a
// cgroup directory are not removed one by one (they cannot be).
func rmcgroups(tb testing.TB, base string) {
	var dirs []string
	filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	for _, d := range dirs {
		if err := unix.Rmdir(d); err != nil && err != unix.ENOENT {
			tb.Errorf("rmdir %s: %v", d, err)
		}
	}
}

// kernelCgroupID returns the id the kernel gives the cgroup at p through a
// file handle (the handle of a cgroupfs directory is its u64 kernfs id, the
// value bpf_get_current_cgroup_id returns): an independent check that the
// inode is the id.
func kernelCgroupID(p string) (uint64, error) {
	h, _, err := unix.NameToHandleAt(unix.AT_FDCWD, p, 0)
	if err != nil {
		return 0, err
	}
	if b := h.Bytes(); len(b) == 8 {
		return binary.NativeEndian.Uint64(b), nil
	}
	return 0, fmt.Errorf("file handle of %d bytes", h.Size())
}

const (
	testPodUID = "5f1c4b2e-0d3a-4c8e-9a61-2b7f3d9e8c10"
	testCtrID  = "8d2f6a0be1c34f5e9a7d3c2b1e0f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f"
)

func TestLiveResolver(t *testing.T) {
	requireRoot(t)
	for _, h := range liveHierarchies(t) {
		t.Run(h.name, func(t *testing.T) {
			if h.mount == "" {
				t.Skipf("hierarchy %s is not mounted on this host", h.name)
			}
			testLiveResolver(t, h)
		})
	}
}

func testLiveResolver(t *testing.T, h liveHierarchy) {
	name := fmt.Sprintf("fragscope-test-%d", os.Getpid())
	base := filepath.Join(h.mount, name)
	podSlice := "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
		strings.ReplaceAll(testPodUID, "-", "_") + ".slice"
	ctr := podSlice + "/cri-containerd-" + testCtrID + ".scope"
	ids := mkcgroups(t, base, ctr, "system.slice")

	for rel, id := range ids {
		kid, err := kernelCgroupID(filepath.Join(base, rel))
		if err != nil {
			t.Logf("no file handle for %s (%v): inode not cross-checked", rel, err)
			continue
		}
		if kid != id {
			t.Errorf("%s: inode %d, kernel cgroup id %d", rel, id, kid)
		}
	}

	r := NewResolver(h.mount, h.hierarchy)
	clock := &fakeClock{t: time.Unix(1000, 0)}
	r.now = clock.now

	if p, removed, ok := r.Path(1); !ok || removed || p != "/" {
		t.Errorf("id 1 (the root) = %q %v %v", p, removed, ok)
	}
	want := "/" + name + "/" + ctr
	if p, removed, ok := r.Path(ids[ctr]); !ok || removed || p != want {
		t.Errorf("container scope = %q %v %v, want %q", p, removed, ok, want)
	}

	// Rate limiting: ids that do not exist, many of them, cost one walk
	// per interval however many are asked for.
	walks := r.Stats().Walks
	for id := uint64(1 << 50); id < 1<<50+500; id++ {
		if _, _, ok := r.Path(id); ok {
			t.Fatalf("nonexistent id %d resolved", id)
		}
	}
	if got := r.Stats().Walks - walks; got != 0 {
		t.Errorf("500 unknown ids within the interval: %d walks, want 0", got)
	}
	clock.advance(DefaultMinWalkInterval)
	for id := uint64(1 << 50); id < 1<<50+500; id++ {
		r.Path(id)
	}
	if got := r.Stats().Walks - walks; got != 1 {
		t.Errorf("500 unknown ids after the interval: %d walks, want 1", got)
	}
	late := mkcgroups(t, base, podSlice+"/crio-conmon-x.scope")[podSlice+"/crio-conmon-x.scope"]
	if _, _, ok := r.Path(late); ok {
		t.Error("a new cgroup resolved without a walk")
	}
	clock.advance(DefaultMinWalkInterval)
	if p, _, ok := r.Path(late); !ok || p != "/"+name+"/"+podSlice+"/crio-conmon-x.scope" {
		t.Errorf("new cgroup after the interval = %q %v", p, ok)
	}

	// Removal keeps the last path; Sweep notices it.
	if err := unix.Rmdir(filepath.Join(base, ctr)); err != nil {
		t.Fatal(err)
	}
	walks = r.Stats().Walks
	if err := r.Sweep(); err != nil {
		t.Fatal(err)
	}
	if r.Stats().Walks != walks+1 {
		t.Error("Sweep did not walk after a removal")
	}
	if p, removed, ok := r.Path(ids[ctr]); !ok || !removed || p != want {
		t.Errorf("removed container scope = %q %v %v, want %q removed", p, removed, ok, want)
	}
	var gotRemoval bool
	for _, u := range r.Updates() {
		if u.ID == ids[ctr] && u.Removed {
			gotRemoval = u.Path == want
		}
	}
	if !gotRemoval {
		t.Error("no removal update for the container scope")
	}
	s := r.Stats()
	t.Logf("%s at %s: %d cgroups", h.hierarchy, h.mount, s.LastWalkDirs)
}

// TestLiveWalkersAgree checks the getdents walk against the portable one
// on both hierarchies with a kubelet-shaped tree in them: same ids, same
// paths.
func TestLiveWalkersAgree(t *testing.T) {
	requireRoot(t)
	for _, h := range liveHierarchies(t) {
		t.Run(h.name, func(t *testing.T) {
			if h.mount == "" {
				t.Skipf("hierarchy %s is not mounted on this host", h.name)
			}
			mkcgroups(t, filepath.Join(h.mount, fmt.Sprintf("fragscope-test-%d", os.Getpid())), kubeletTree(10, 2)...)
			fast, err := walk(h.mount)
			if err != nil {
				t.Fatal(err)
			}
			slow, err := walkStat(h.mount)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(fast, slow) {
				t.Errorf("walks differ: getdents %d dirs, WalkDir %d dirs", len(fast), len(slow))
			}
			if len(fast) < 10*3+4 {
				t.Errorf("%d dirs, want at least the 34 created", len(fast))
			}
		})
	}
}
