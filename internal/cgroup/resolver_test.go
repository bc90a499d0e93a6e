package cgroup

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// These tests walk an ordinary directory tree: directory inodes stand in
// for cgroup ids, so the cache, removal, rate limiting and eviction logic
// run without root. live_linux_test.go repeats the essentials on cgroupfs.

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestResolver(root string, opts ...Option) (*Resolver, *fakeClock) {
	r := NewResolver(root, HierarchyV2, opts...)
	c := &fakeClock{t: time.Unix(1000, 0)}
	r.now = c.now
	return r, c
}

func mkdirIno(t *testing.T, dir string) uint64 {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return statIno(t, dir)
}

func statIno(t *testing.T, p string) uint64 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	ino, ok := inode(fi)
	if !ok {
		t.Fatal("no inode")
	}
	return ino
}

func TestResolverTree(t *testing.T) {
	root := t.TempDir()
	pod := filepath.Join(root, "kubepods.slice", "kubepods-burstable.slice", "kubepods-burstable-pod1_2.slice")
	podID := mkdirIno(t, pod)
	ctrID := mkdirIno(t, filepath.Join(pod, "cri-containerd-abc.scope"))
	if err := os.WriteFile(filepath.Join(pod, "memory.stat"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r, clock := newTestResolver(root)

	if p, removed, ok := r.Path(statIno(t, root)); !ok || removed || p != "/" {
		t.Errorf("root = %q %v %v", p, removed, ok)
	}
	wantCtr := "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice/cri-containerd-abc.scope"
	if p, removed, ok := r.Path(ctrID); !ok || removed || p != wantCtr {
		t.Errorf("container = %q %v %v", p, removed, ok)
	}
	if r.Stats().Walks != 1 {
		t.Errorf("walks = %d, want 1: the second id was in the first walk", r.Stats().Walks)
	}
	if _, _, ok := r.Path(statIno(t, filepath.Join(pod, "memory.stat"))); ok {
		t.Error("a file's inode resolved as a cgroup")
	}

	// A new cgroup resolves on the next miss once the interval has passed.
	clock.advance(time.Second)
	newID := mkdirIno(t, filepath.Join(root, "system.slice"))
	if p, _, ok := r.Path(newID); !ok || p != "/system.slice" {
		t.Errorf("new cgroup = %q %v", p, ok)
	}

	// Removal: the path stays, marked removed, and a lookup of the
	// removed id does not need a walk.
	if err := os.Remove(filepath.Join(pod, "cri-containerd-abc.scope")); err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	walks := r.Stats().Walks
	if p, removed, ok := r.Path(ctrID); !ok || !removed || p != wantCtr {
		t.Errorf("removed container = %q %v %v", p, removed, ok)
	}
	if p, removed, ok := r.Path(podID); !ok || removed || p != filepath.Dir(wantCtr) {
		t.Errorf("pod = %q %v %v", p, removed, ok)
	}
	if r.Stats().Walks != walks {
		t.Error("cached ids caused a walk")
	}
	if s := r.Stats(); s.Removed != 1 || s.LastErr != nil {
		t.Errorf("stats %+v", s)
	}

	got := r.Updates()
	want := []Update{
		{statIno(t, root), "/", false},
		{ctrID, wantCtr, false},
		{newID, "/system.slice", false},
		{ctrID, wantCtr, true},
		{podID, filepath.Dir(wantCtr), false},
	}
	if !slices.Equal(got, want) {
		t.Errorf("updates\n got %v\nwant %v", got, want)
	}
	if u := r.Updates(); len(u) != 0 {
		t.Errorf("updates not drained: %v", u)
	}
	// Removal of a cgroup nobody asked for is not announced.
	if err := os.Remove(filepath.Join(root, "system.slice")); err != nil {
		t.Fatal(err)
	}
	r.Refresh()
	if u := r.Updates(); !slices.Equal(u, []Update{{newID, "/system.slice", true}}) {
		t.Errorf("after removing an announced cgroup: %v", u)
	}
}

func TestResolverRename(t *testing.T) {
	root := t.TempDir()
	id := mkdirIno(t, filepath.Join(root, "a"))
	r, _ := newTestResolver(root)
	r.Path(id)
	r.Updates()
	if err := os.Rename(filepath.Join(root, "a"), filepath.Join(root, "b")); err != nil {
		t.Fatal(err)
	}
	r.Refresh()
	if p, removed, ok := r.Path(id); p != "/b" || removed || !ok {
		t.Errorf("renamed = %q %v %v", p, removed, ok)
	}
	if u := r.Updates(); !slices.Equal(u, []Update{{id, "/b", false}}) {
		t.Errorf("rename updates %v", u)
	}
}

func TestResolverRateLimit(t *testing.T) {
	root := t.TempDir()
	mkdirIno(t, filepath.Join(root, "a"))
	r, clock := newTestResolver(root)
	// A burst of unknown ids costs one walk...
	for id := uint64(1 << 40); id < 1<<40+1000; id++ {
		if _, _, ok := r.Path(id); ok {
			t.Fatalf("unknown id %d resolved", id)
		}
	}
	if w := r.Stats().Walks; w != 1 {
		t.Fatalf("1000 unknown ids: %d walks, want 1", w)
	}
	// ...and a cgroup created meanwhile waits for the interval to pass.
	late := mkdirIno(t, filepath.Join(root, "late"))
	clock.advance(999 * time.Millisecond)
	if _, _, ok := r.Path(late); ok {
		t.Error("resolved before the interval passed")
	}
	clock.advance(time.Millisecond)
	if p, _, ok := r.Path(late); !ok || p != "/late" {
		t.Errorf("after the interval: %q %v", p, ok)
	}
	if w := r.Stats().Walks; w != 2 {
		t.Errorf("walks = %d, want 2", w)
	}
}

func TestResolverMissingRoot(t *testing.T) {
	root := t.TempDir()
	id := mkdirIno(t, filepath.Join(root, "a"))
	r, _ := newTestResolver(root)
	r.Path(id)
	// The mount disappears (or becomes unreadable): an error, and the
	// cached cgroups are not declared removed on its account.
	if err := os.Remove(filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(root); err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(); err == nil {
		t.Fatal("walk of a missing root: want an error")
	}
	if _, removed, ok := r.Path(id); !ok || removed {
		t.Errorf("after a failed walk: removed=%v ok=%v", removed, ok)
	}
}

func TestResolverEviction(t *testing.T) {
	root := t.TempDir()
	ids := map[string]uint64{}
	for _, n := range []string{"a", "b", "c", "d"} {
		ids[n] = mkdirIno(t, filepath.Join(root, n))
	}
	// Limit 5: root + 4 directories fill it.
	r, _ := newTestResolver(root, WithCacheSize(5))
	// The new directories are made outside the tree before a and b are
	// removed, then moved in: an ordinary file system reuses freed inode
	// numbers at once, which kernfs does not do with cgroup ids.
	staging := t.TempDir()
	for _, n := range []string{"e", "f", "g"} {
		ids[n] = mkdirIno(t, filepath.Join(staging, n))
	}
	r.Path(ids["a"])
	r.Path(ids["b"])
	r.Path(ids["c"])
	os.Remove(filepath.Join(root, "a"))
	r.Refresh()
	os.Remove(filepath.Join(root, "b"))
	r.Refresh()
	// Three new cgroups: the removed ones go first, a before b (longer
	// gone), then a never-asked live one (d or a new one, not c).
	for _, n := range []string{"e", "f", "g"} {
		if err := os.Rename(filepath.Join(staging, n), filepath.Join(root, n)); err != nil {
			t.Fatal(err)
		}
	}
	r.Refresh()
	s := r.Stats()
	if s.Entries != 5 || s.Evicted != 3 || s.Removed != 0 {
		t.Errorf("stats %+v, want 5 entries, 3 evicted, none removed", s)
	}
	r.mu.Lock()
	_, hasA := r.cache[ids["a"]]
	_, hasB := r.cache[ids["b"]]
	_, hasC := r.cache[ids["c"]]
	r.mu.Unlock()
	if hasA || hasB || !hasC {
		t.Errorf("kept a %v b %v c %v; want c only", hasA, hasB, hasC)
	}
	// An asked-for live id survives any number of new cgroups.
	for i := range 20 {
		mkdirIno(t, filepath.Join(root, "n", string(rune('a'+i))))
	}
	r.Refresh()
	if p, _, ok := r.Path(ids["c"]); !ok || p != "/c" {
		t.Errorf("queried live id evicted: %q %v", p, ok)
	}
	if n := r.Stats().Entries; n > 5 {
		t.Errorf("%d entries over the limit 5", n)
	}
}

func TestResolverMountRoot(t *testing.T) {
	root := t.TempDir()
	id := mkdirIno(t, filepath.Join(root, "x.scope"))
	r, _ := newTestResolver(root, WithMountRoot("/kubepods.slice/kubepods-podu.slice"))
	if p, _, ok := r.Path(id); !ok || p != "/kubepods.slice/kubepods-podu.slice/x.scope" {
		t.Errorf("path under a subtree mount = %q %v", p, ok)
	}
}

func TestWalkersAgreeTree(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a/b/c", "a/d", "e", "with space/x"} {
		mkdirIno(t, filepath.Join(root, d))
	}
	os.WriteFile(filepath.Join(root, "a", "file"), nil, 0o644)
	os.Symlink(filepath.Join(root, "e"), filepath.Join(root, "a", "link"))
	fast, err := walk(root)
	if err != nil {
		t.Fatal(err)
	}
	slow, err := walkStat(root)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(fast, slow) || len(fast) != 8 {
		t.Errorf("walks differ:\n%v\n%v", fast, slow)
	}
	if _, err := walk(filepath.Join(root, "missing")); err == nil {
		t.Error("walk of a missing root: want an error")
	}
	if _, err := walk(filepath.Join(root, "a", "file")); err == nil {
		t.Error("walk of a file: want an error")
	}
}

func TestResolverSweep(t *testing.T) {
	root := t.TempDir()
	a := mkdirIno(t, filepath.Join(root, "a"))
	b := mkdirIno(t, filepath.Join(root, "b"))
	c := mkdirIno(t, filepath.Join(root, "c"))
	r, _ := newTestResolver(root)
	r.Path(a)
	r.Path(b)
	r.Updates()
	walks := r.Stats().Walks
	// Nothing announced changed: no walk.
	if err := r.Sweep(); err != nil || r.Stats().Walks != walks {
		t.Fatalf("sweep with nothing removed: %v, %d walks", err, r.Stats().Walks-walks)
	}
	// c was never announced: its removal alone does not cost a walk.
	os.Remove(filepath.Join(root, "c"))
	r.Sweep()
	if r.Stats().Walks != walks {
		t.Error("removal of an unannounced cgroup caused a walk")
	}
	os.Remove(filepath.Join(root, "a"))
	os.Rename(filepath.Join(root, "b"), filepath.Join(root, "b2"))
	if err := r.Sweep(); err != nil {
		t.Fatal(err)
	}
	want := []Update{{a, "/a", true}, {b, "/b2", false}}
	got := r.Updates()
	slices.SortFunc(got, func(x, y Update) int { return strings.Compare(x.Path, y.Path) })
	if !slices.Equal(got, want) {
		t.Errorf("sweep updates %v, want %v", got, want)
	}
	if _, removed, _ := r.Path(c); !removed {
		t.Error("the walk the sweep started did not mark c removed")
	}
}

func TestResolverWalkCostBackoff(t *testing.T) {
	root := t.TempDir()
	r, clock := newTestResolver(root)
	r.Path(1 << 40)
	r.stats.LastWalk = 100 * time.Millisecond // as if the walk had been slow
	clock.advance(time.Second)
	r.Path(1 << 40)
	if w := r.Stats().Walks; w != 1 {
		t.Errorf("walked again 1 s after a 100 ms walk: %d walks", w)
	}
	clock.advance(time.Second)
	r.Path(1 << 40)
	if w := r.Stats().Walks; w != 2 {
		t.Errorf("no walk 2 s (20x) after a 100 ms walk: %d walks", w)
	}
}

// Learn: an id read from a task's /proc line fills the cache when no walk
// can (the cgroup was removed first); a live path must match the id.
func TestResolverLearn(t *testing.T) {
	root := t.TempDir()
	ino := mkdirIno(t, filepath.Join(root, "parent", "ctr"))
	r, _ := newTestResolver(root, WithMinWalkInterval(time.Hour))
	r.Refresh()
	other := mkdirIno(t, filepath.Join(root, "late"))
	r.Learn(other+1000, "/late") // a live path with another inode: ignored
	if _, _, ok := r.Path(other + 1000); ok {
		t.Error("a live path whose inode is not the id was learned")
	}
	r.Learn(other, "/late")
	if p, removed, ok := r.Path(other); !ok || p != "/late" || removed {
		t.Errorf("live path: %q %v %v", p, removed, ok)
	}
	r.Learn(424242, "/parent/gone")
	if p, removed, ok := r.Path(424242); !ok || p != "/parent/gone" || !removed {
		t.Errorf("removed path: %q %v %v", p, removed, ok)
	}
	r.Learn(ino, "/elsewhere") // known ids stay as the walk found them
	if p, _, _ := r.Path(ino); p != "/parent/ctr" {
		t.Errorf("known id relearned as %q", p)
	}
}
