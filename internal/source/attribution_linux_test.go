package source

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/cgroup"
	"github.com/fragscope/fragscope/internal/container"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/probes"
	"github.com/fragscope/fragscope/internal/snapshot"
	"github.com/fragscope/fragscope/internal/workload"
)

const workChildEnv = "FRAGSCOPE_TEST_WORK_CHILD"

const (
	podUID      = "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9"
	ctrUnmovID  = "aa11223344556677889900aabbccddeeff00112233445566778899aabbccddee"
	ctrMovingID = "bb11223344556677889900aabbccddeeff00112233445566778899aabbccddee"
)

// kubeletTree creates, under root, the systemd-driver layout kubelet makes
// for a burstable pod with two containerd containers, and returns the two
// container cgroups.
func kubeletTree(t *testing.T, root string) (unmov, moving string) {
	t.Helper()
	base := filepath.Join(root, fmt.Sprintf("fragscope-test-%d", os.Getpid()))
	pod := filepath.Join(base, "kubepods.slice", "kubepods-burstable.slice",
		"kubepods-burstable-pod"+underscores(podUID)+".slice")
	unmov = filepath.Join(pod, "cri-containerd-"+ctrUnmovID+".scope")
	moving = filepath.Join(pod, "cri-containerd-"+ctrMovingID+".scope")
	for _, d := range []string{unmov, moving} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("create cgroup: %v", err)
		}
	}
	t.Cleanup(func() {
		for _, d := range []string{unmov, moving, pod, filepath.Dir(pod), filepath.Dir(filepath.Dir(pod)), base} {
			os.Remove(d)
		}
	})
	return unmov, moving
}

func underscores(s string) string {
	b := []byte(s)
	for i := range b {
		if b[i] == '-' {
			b[i] = '_'
		}
	}
	return string(b)
}

func inode(t *testing.T, path string) uint64 {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// Kubelet-shaped cgroups, one container setting up AF_PACKET rings
// (unmovable order-6) and one populating anonymous memory (movable
// order-0): the counters land on the right container and pod, not the
// other; and a cgroup removed during the run keeps its path.
// attributionLive opens the page_alloc hook attributing to mode's
// hierarchy and a live source over it, ticking every 100 ms and sweeping
// for removed cgroups every sweep ticks. The set is closed with the test.
func attributionLive(t *testing.T, mode cgroup.Mode, mount, hier, root string, sweep int) (*probes.Set, *Live) {
	t.Helper()
	set, err := probes.Open(probes.Options{Hooks: []probes.Hook{probes.HookPageAlloc}, CgroupV1Memory: mode == cgroup.ModeV1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	return set, &Live{
		Set: set, Interval: 100 * time.Millisecond, SweepEvery: sweep,
		TakeSnapshot: func(string) (*snapshot.Snapshot, error) {
			return snapshot.TakeWith("", snapshot.Options{SkipPagetypeinfo: true})
		},
		Cgroups: cgroup.NewResolver(mount, hier, cgroup.WithMountRoot(root), cgroup.WithMinWalkInterval(10*time.Millisecond)),
	}
}

func TestAttributionToContainers(t *testing.T) {
	if os.Getenv(workChildEnv) != "" {
		t.Skip("child mode runs in TestWorkChild")
	}
	requireRoot(t)
	_, mounts, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []struct {
		name string
		mode cgroup.Mode
	}{{"v1-memory", cgroup.ModeV1}, {"v2", cgroup.ModeV2}} {
		t.Run(h.name, func(t *testing.T) {
			mount, hier, root, err := mounts.Hierarchy(h.mode)
			if err != nil {
				t.Skipf("hierarchy missing on this machine: %v", err)
			}
			unmov, moving := kubeletTree(t, mount)
			_, live := attributionLive(t, h.mode, mount, hier, root, 1)
			// Stands in for the CRI: the path gives the UID, the CRI the name.
			live.Pod = func(uid string) (string, string, bool) { return "web-" + uid[:4], "shop", uid == podUID }
			ctx, cancel := context.WithCancel(context.Background())
			var evs []event.Event
			done := make(chan error, 1)
			go func() { done <- live.Run(ctx, func(ev event.Event) { evs = append(evs, ev) }) }()
			time.Sleep(150 * time.Millisecond)
			for _, w := range []struct{ dir, kind string }{{unmov, "rings"}, {moving, "anon"}} {
				cmd := exec.Command(os.Args[0], "-test.run", "^TestWorkChild$")
				cmd.Env = append(os.Environ(), workChildEnv+"="+w.dir+","+w.kind)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("child %s: %v\n%s", w.kind, err, out)
				}
			}
			time.Sleep(250 * time.Millisecond)
			// Remove the ring container's cgroup while tracing.
			if err := os.Remove(unmov); err != nil {
				t.Fatalf("remove cgroup: %v", err)
			}
			time.Sleep(250 * time.Millisecond)
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}

			movingID := inode(t, moving)
			var unmovID uint64 // its directory is gone: learn the id from the announcements
			paths := map[uint64]event.CgroupPath{}
			totals := map[uint64]event.CgroupAlloc{}
			for _, ev := range evs {
				switch e := ev.(type) {
				case *event.CgroupPath:
					if e.Removed && paths[e.ID].Path == "" {
						t.Errorf("removal of cgroup %d announced without a path", e.ID)
					}
					paths[e.ID] = *e
					if filepath.Base(e.Path) == filepath.Base(unmov) {
						unmovID = e.ID
					}
				case *event.Tick:
					for _, c := range e.Cgroups {
						s := totals[c.CgroupID]
						s.Unmovable[6] += c.Unmovable[6]
						s.HighOrder += c.HighOrder
						totals[c.CgroupID] = s
					}
				}
			}
			if unmovID == 0 {
				t.Fatalf("the ring container's cgroup was never announced; paths: %v", paths)
			}
			p := paths[unmovID]
			if !p.Removed {
				t.Errorf("removed cgroup %d not marked removed: %+v", unmovID, p)
			}
			id := container.Parse(p.Path)
			if id.ContainerID != ctrUnmovID || id.PodUID != podUID || id.Runtime != container.RuntimeContainerd {
				t.Errorf("identity of %s = %+v", p.Path, id)
			}
			if p.PodName != "web-"+podUID[:4] || p.PodNamespace != "shop" {
				t.Errorf("pod name/namespace not carried: %+v", p)
			}
			if got := totals[unmovID].Unmovable[6]; got < 16 {
				t.Errorf("ring container: %d unmovable order-6 allocations, want >= 16", got)
			}
			if got := totals[movingID].Unmovable[6]; got != 0 {
				t.Errorf("anon container got %d unmovable order-6 allocations it did not make", got)
			}
		})
	}
}

// TestWorkChild joins a cgroup and runs one workload: "rings" (16 AF_PACKET
// blocks of 256 KiB, unmovable order 6) or "anon" (64 MiB populated).
func TestWorkChild(t *testing.T) {
	spec := os.Getenv(workChildEnv)
	if spec == "" {
		t.Skip("runs only as the child of TestAttributionToContainers")
	}
	var dir, kind string
	for i := len(spec) - 1; i >= 0; i-- {
		if spec[i] == ',' {
			dir, kind = spec[:i], spec[i+1:]
			break
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		t.Fatal(err)
	}
	switch kind {
	case "rings":
		fd, err := workload.PacketRing(256<<10, 16)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
	case "anon":
		b, err := unix.Mmap(-1, 0, 64<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
		if err != nil {
			t.Fatal(err)
		}
		unix.Munmap(b)
	}
}

// A cgroup that allocates and is removed before any walk sees it never gets
// a removal announcement; its kernel counters must still be forgotten, or
// short-lived cgroups fill the bounded map for good.
func TestVanishedCgroupForgotten(t *testing.T) {
	if os.Getenv(workChildEnv) != "" {
		t.Skip("child mode runs in TestWorkChild")
	}
	requireRoot(t)
	_, mounts, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	mode := cgroup.ModeV2
	if _, _, _, err := mounts.Hierarchy(cgroup.ModeV1); err == nil {
		mode = cgroup.ModeV1 // hybrid hosts attribute to the v1 memory cgroup
	}
	mount, hier, root, err := mounts.Hierarchy(mode)
	if err != nil {
		t.Skipf("hierarchy missing on this machine: %v", err)
	}
	set, live := attributionLive(t, mode, mount, hier, root, 2)
	// The cgroup comes, allocates and goes before the live source starts:
	// the kernel counted it, no walk will ever see it.
	dir := filepath.Join(mount, fmt.Sprintf("fragscope-vanish-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	id := inode(t, dir)
	cmd := exec.Command(os.Args[0], "-test.run", "^TestWorkChild$")
	cmd.Env = append(os.Environ(), workChildEnv+"="+dir+",rings")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(dir)
		t.Fatalf("child: %v\n%s", err, out)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var announced []uint64
	go func() {
		done <- live.Run(ctx, func(ev event.Event) {
			if p, ok := ev.(*event.CgroupPath); ok {
				announced = append(announced, p.ID)
			}
		})
	}()
	counts, _, err := set.CgroupAllocs()
	if err != nil {
		t.Fatal(err)
	}
	rings := counts[id].Unmovable[6]
	if rings < 16 {
		t.Fatalf("the child's 16 order-6 ring blocks were not counted for cgroup %d (%d): nothing to forget", id, rings)
	}
	// Forgotten: the entry with the child's ring blocks is deleted. (This
	// test reads the counters beside the live source's ticks; it is how a
	// race on the batch buffers of Set.CgroupAllocs was found.)
	deadline := time.Now().Add(5 * time.Second)
	for {
		counts, _, err := set.CgroupAllocs()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := counts[id]; !ok {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the live source ended before forgetting cgroup %d: %v", id, err)
		default:
		}
		if time.Now().After(deadline) {
			pth, rm, ok := live.Cgroups.Path(id)
			t.Fatalf("the vanished cgroup %d still holds its kernel map entry (%d order-6 allocations) after 5 s; resolver: %q %v %v; announced %v", id, rings, pth, rm, ok, announced)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if slices.Contains(announced, id) {
		t.Errorf("cgroup %d was resolved before it vanished: the test did not exercise the unseen path", id)
	}
}
