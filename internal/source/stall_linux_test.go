package source

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/probes"
)

// fakeMaps is the kernel's in-flight maps for the tracker's unit test.
type fakeMaps struct {
	entries []probes.InFlight
	forgot  []uint32
}

func (f *fakeMaps) InFlight(buf []probes.InFlight) ([]probes.InFlight, error) {
	return append(buf, f.entries...), nil
}

func (f *fakeMaps) ForgetInFlight(call string, tid uint32) error {
	f.forgot = append(f.forgot, tid)
	f.entries = slices.DeleteFunc(f.entries, func(e probes.InFlight) bool { return e.Task.TID == tid && e.Call == call })
	return nil
}

const sec = uint64(time.Second)

// TestStallTracker drives the tracker with a fake clock, maps and wchan:
// each stalled call is reported once while it runs, then its end; a call
// under the threshold, a reclaim that got its memory and a dead task's
// entry are never reported and the last two are forgotten.
func TestStallTracker(t *testing.T) {
	base := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	clock := func(ns uint64) time.Time { return base.Add(time.Duration(ns)) }
	maps := &fakeMaps{}
	wchans := map[uint32]string{}
	tr := newStallTracker(time.Second, maps, clock)
	tr.wchan = func(pid, tid uint32) (string, error) {
		w, ok := wchans[tid]
		if !ok {
			return "", os.ErrNotExist
		}
		return w, nil
	}
	tr.procVisible = true
	tr.memcg = func(id uint64) (*event.StallMemcg, error) {
		return &event.StallMemcg{Path: "/parent", LimitBytes: 1 << 20, UsageBytes: 1 << 20}, nil
	}
	var got []event.Stall
	scan := func(now uint64) {
		t.Helper()
		got = got[:0]
		if err := tr.scan(now, func(s *event.Stall) { got = append(got, *s) }); err != nil {
			t.Fatal(err)
		}
	}
	task := func(tid uint32, comm string) event.Task {
		return event.Task{PID: 100, TID: tid, Comm: comm, CgroupID: 7}
	}
	maps.entries = []probes.InFlight{
		{Call: "unshare", Task: task(1, "unshare"), Flags: 0x40000000, EnterNs: 10 * sec},                       // stalls
		{Call: "clone", Task: task(2, "fast"), EnterNs: 11*sec + sec/2},                                         // under the threshold at 12 s
		{Call: probes.CallMemcgOOMWait, Task: task(3, "runc:[2:INIT]"), EnterNs: 10 * sec},                      // waits
		{Call: probes.CallMemcgOOMWait, Task: task(4, "reclaimer"), EnterNs: 10 * sec},                          // got its memory
		{Call: "setns", Task: task(5, "ghost"), EnterNs: 5 * sec},                                               // died mid-call
		{Call: probes.CallMemcgOOMWait, Task: task(6, "young"), EnterNs: 11*sec + 900*uint64(time.Millisecond)}, // too recent to ask
	}
	wchans[1] = "rtnl_lock"
	wchans[2] = "0"
	wchans[3] = probes.MemcgOOMWaitFunc
	wchans[4] = "0"
	wchans[6] = "0"

	scan(12 * sec)
	if len(got) != 2 {
		t.Fatalf("scan at 12 s: %d stalls, want unshare and the OOM wait: %+v", len(got), got)
	}
	slices.SortFunc(got, func(a, b event.Stall) int { return int(a.Task.TID) - int(b.Task.TID) })
	if g := got[0]; g.Call != "unshare" || !g.Running() || g.Duration != 2*time.Second || g.Wchan != "rtnl_lock" ||
		!g.Enter.Equal(clock(10*sec)) || g.Flags != 0x40000000 || g.Task.Comm != "unshare" || g.Task.CgroupID != 7 {
		t.Errorf("unshare stall: %+v", g)
	}
	if g := got[1]; g.Call != probes.CallMemcgOOMWait || !g.Running() || g.Duration != 2*time.Second || g.Wchan != probes.MemcgOOMWaitFunc ||
		g.Memcg == nil || g.Memcg.Path != "/parent" {
		t.Errorf("OOM wait stall: %+v", g)
	}
	slices.Sort(maps.forgot)
	if !slices.Equal(maps.forgot, []uint32{4, 5}) {
		t.Errorf("forgotten entries %v, want the reclaimer that got its memory (4) and the dead task (5)", maps.forgot)
	}

	// Still stuck a scan later: nothing new.
	scan(12*sec + sec/4)
	if len(got) != 0 {
		t.Fatalf("second scan reported again: %+v", got)
	}
	if tr.inFlight() != 2 {
		t.Fatalf("in flight %d, want 2", tr.inFlight())
	}

	// The unshare returns: its exit record ends it; the OOM wait resumes.
	end := tr.exit(&event.NsSyscall{Time: clock(13 * sec), Task: task(1, "unshare"), Syscall: "unshare",
		Enter: clock(10 * sec), Latency: 3 * time.Second, Errno: 0})
	if end == nil || end.End != event.StallReturned || end.Duration != 3*time.Second || end.Errno != 0 {
		t.Fatalf("exit: %+v", end)
	}
	maps.entries = slices.DeleteFunc(maps.entries, func(e probes.InFlight) bool { return e.Task.TID <= 2 }) // the fast clone returned too
	wchans[3] = "0"
	scan(13*sec + sec/2)
	if len(got) != 1 || got[0].End != event.StallResumed || got[0].Task.TID != 3 || got[0].Duration != 3500*time.Millisecond || got[0].Memcg != nil {
		t.Fatalf("after the limit was raised: %+v", got)
	}
	if tr.inFlight() != 0 {
		t.Fatalf("in flight %d after both ended", tr.inFlight())
	}

	// A call under the threshold at its exit is no stall's end.
	if e := tr.exit(&event.NsSyscall{Task: task(2, "fast"), Syscall: "clone", Latency: time.Second / 2}); e != nil {
		t.Errorf("fast clone exit gave %+v", e)
	}

	// A reported call whose exit record never comes (dropped) ends as lost
	// a second after its entry left the map; one whose task died, exited.
	maps.entries = []probes.InFlight{
		{Call: "clone3", Task: task(8, "dropped"), EnterNs: 20 * sec},
		{Call: "unshare", Task: task(9, "killed"), EnterNs: 20 * sec},
	}
	wchans[8], wchans[9] = "do_wait", "rwsem_down_write_slowpath"
	scan(22 * sec)
	if len(got) != 2 {
		t.Fatalf("at 22 s: %+v", got)
	}
	maps.entries = nil
	delete(wchans, 9)
	scan(22*sec + sec/4) // missing: wait for the exit record
	if len(got) != 0 {
		t.Fatalf("ended before the grace period: %+v", got)
	}
	scan(23*sec + sec/2)
	slices.SortFunc(got, func(a, b event.Stall) int { return int(a.Task.TID) - int(b.Task.TID) })
	if len(got) != 2 || got[0].End != event.StallLost || got[1].End != event.StallExited {
		t.Fatalf("ends after the grace period: %+v", got)
	}
}

// Without the host's tasks in /proc (a pod without hostPID) no wchan can
// be read: a memcg candidate is a stall while its cgroup is under OOM and
// ends when it is not; a namespace syscall is reported by age alone.
func TestStallTrackerWithoutHostPids(t *testing.T) {
	base := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	clock := func(ns uint64) time.Time { return base.Add(time.Duration(ns)) }
	maps := &fakeMaps{}
	tr := newStallTracker(time.Second, maps, clock)
	tr.procVisible = false
	tr.wchan = func(pid, tid uint32) (string, error) {
		t.Errorf("wchan of %d read without host pids", tid)
		return "", os.ErrNotExist
	}
	underOOM := map[uint64]bool{7: true}
	tr.memcg = func(id uint64) (*event.StallMemcg, error) {
		if !underOOM[id] {
			return nil, nil
		}
		return &event.StallMemcg{Path: "/parent", LimitBytes: 1 << 20}, nil
	}
	maps.entries = []probes.InFlight{
		{Call: probes.CallMemcgOOMWait, Task: event.Task{PID: 1, TID: 1, CgroupID: 7}, EnterNs: 10 * sec},
		{Call: probes.CallMemcgOOMWait, Task: event.Task{PID: 2, TID: 2, CgroupID: 8}, EnterNs: 10 * sec}, // its cgroup is fine
		// The same cgroup's latest reclaimer: it stands for the wait.
		{Call: probes.CallMemcgOOMWait, Task: event.Task{PID: 4, TID: 4, CgroupID: 7}, EnterNs: 10*sec + sec/2},
		{Call: "unshare", Task: event.Task{PID: 3, TID: 3, CgroupID: 8}, EnterNs: 10 * sec},
	}
	var got []event.Stall
	scan := func(now uint64) {
		got = got[:0]
		tr.scan(now, func(s *event.Stall) { got = append(got, *s) })
	}
	scan(12 * sec)
	slices.SortFunc(got, func(a, b event.Stall) int { return int(a.Task.TID) - int(b.Task.TID) })
	if len(got) != 2 || got[0].Call != "unshare" || got[0].Wchan != "" || got[1].Task.TID != 4 || got[1].Memcg == nil {
		t.Fatalf("at 12 s: %+v", got)
	}
	slices.Sort(maps.forgot)
	if !slices.Equal(maps.forgot, []uint32{1, 2}) {
		t.Errorf("forgotten %v, want the earlier reclaimer of cgroup 7 and the candidate whose cgroup is not under OOM", maps.forgot)
	}
	scan(13 * sec) // still under OOM, unshare still in the map
	if len(got) != 0 {
		t.Fatalf("at 13 s: %+v", got)
	}
	underOOM[7] = false
	scan(14 * sec)
	if len(got) != 1 || got[0].End != event.StallResumed || got[0].Task.TID != 4 || got[0].Duration != 3500*time.Millisecond {
		t.Fatalf("after the cgroup left OOM: %+v", got)
	}

	// A wait whose cgroup is removed (the container ended) ends as exited.
	underOOM[7] = true
	maps.entries = append(maps.entries[len(maps.entries)-1:], // the unshare goes on
		probes.InFlight{Call: probes.CallMemcgOOMWait, Task: event.Task{PID: 1, TID: 1, CgroupID: 7}, EnterNs: 20 * sec})
	scan(22 * sec)
	if len(got) != 1 || !got[0].Running() {
		t.Fatalf("at 22 s: %+v", got)
	}
	tr.memcg = func(uint64) (*event.StallMemcg, error) { return nil, os.ErrNotExist }
	scan(23 * sec)
	if len(got) != 1 || got[0].End != event.StallExited {
		t.Fatalf("after the cgroup was removed: %+v", got)
	}
}

// oomRoot names the highest cgroup under OOM above the task's: the one
// whose limit was hit (the kernel marks its whole subtree).
func TestOOMRoot(t *testing.T) {
	root := t.TempDir()
	write := func(rel, oom string) {
		d := filepath.Join(root, rel)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "memory.oom_control"), []byte("oom_kill_disable 1\nunder_oom "+oom+"\noom_kill 0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".", "0")
	write("parent", "1")
	write("parent/ctr", "1")
	write("other", "0")
	dir := func(p string) (string, bool) { return filepath.Join(root, p), true }
	if p, err := oomRoot(dir, "/parent/ctr"); err != nil || p != "/parent" {
		t.Errorf("oomRoot(/parent/ctr) = %q, %v; want /parent", p, err)
	}
	if p, err := oomRoot(dir, "/other"); p != "" || err != nil {
		t.Errorf("a cgroup not under OOM: %q, %v", p, err)
	}
	if _, err := oomRoot(dir, "/gone"); err == nil {
		t.Error("a cgroup that does not exist gave no error")
	}
}
