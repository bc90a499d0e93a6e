package incident

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/gfp"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// This file builds a SYNTHETIC event stream of the seed incident
// (shared/notes/incident.md): every number is the write-up's, the event
// framing (times, cgroup ids, ticks) is invented.

var t0 = time.Date(2017, 3, 2, 10, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// 3.10 migratetypes (RECLAIMABLE and MOVABLE swapped in 4.4).
const (
	mtUnmovable   = 0
	mtReclaimable = 1
	mtMovable     = 2
)

const (
	seedGFP      = 0x10c0d0 // GFP_KERNEL|__GFP_COMP|__GFP_ZERO|__GFP_KMEMCG on 3.10
	cloneNewNet  = 0x40000000
	sigchld      = 0x11
	podCgroup    = 1001
	dockerCgroup = 1002
	buildCgroup  = 1003
	seedSlab     = "nf_conntrack_ffff8803eef66180"
)

// seedStack is the failing allocation's call chain, innermost first, as the
// kernel printed it.
var seedStack = []string{
	"warn_alloc_failed", "__alloc_pages_slowpath", "__alloc_pages_nodemask",
	"alloc_pages_current", "__get_free_pages", "kmalloc_order_trace", "__kmalloc",
	"memcg_register_cache", "kmem_cache_create_memcg", "kmem_cache_create",
	"nf_conntrack_init_net", "nf_conntrack_pernet_init", "ops_init", "setup_net",
	"copy_net_ns", "create_new_namespaces", "copy_namespaces", "copy_process",
	"do_fork", "SyS_clone",
}

var runc = event.Task{PID: 18377, TID: 18377, Comm: "exe", CgroupID: podCgroup, NetnsIno: 4026531956}

func parseGFP(t testing.TB, name string) []event.Flag {
	t.Helper()
	f, err := os.Open(filepath.Join("../../testdata/gfp", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := gfp.ParseTracefsFormat(f)
	if err != nil {
		t.Fatal(err)
	}
	return flags
}

// allHooks is every hook attached except alloc_fexit, which is opt-in.
func allHooks() []event.HookStatus {
	return []event.HookStatus{
		{Hook: "page_alloc", Mechanism: "tracepoint", Target: "kmem:mm_page_alloc", Attached: true},
		{Hook: "alloc_fexit", Mechanism: "fentry", Reason: "not requested"},
		{Hook: "extfrag", Mechanism: "tracepoint", Target: "kmem:mm_page_alloc_extfrag", Attached: true},
		{Hook: "slab_create", Mechanism: "kprobe", Target: "kmem_cache_create", Attached: true},
		{Hook: "netns", Mechanism: "kprobe", Target: "copy_net_ns", Attached: true},
		{Hook: "ns_syscall", Mechanism: "tracepoint", Target: "syscalls:sys_exit_clone", Attached: true},
	}
}

func start310(t testing.TB, hooks []event.HookStatus) *event.Start {
	return &event.Start{
		Time: t0, Hostname: "node-7", KernelRelease: "3.10.0-514.el7.x86_64", PageSize: 4096,
		PageblockOrder: 9, Version: "test", Hooks: hooks,
		GFPFlags:     parseGFP(t, "mm_page_alloc-3.10.format"),
		Migratetypes: []string{"Unmovable", "Reclaimable", "Movable", "Reserve", "Isolate"},
	}
}

// seedZones is the kernel's Mem-Info at the failure, in pages (kB / 4):
// the free lists (DMA from buddyinfo, which Mem-Info repeats), the zones'
// free counters, watermarks and managed sizes.
func seedZones() []snapshot.Zone {
	return []snapshot.Zone{
		{Node: 0, Name: "DMA", FreeBlocks: []uint64{1, 0, 0, 1, 2, 1, 1, 0, 1, 1, 3},
			NrFree: 15908 / 4, Managed: 15908 / 4, Min: 64 / 4, Low: 80 / 4, High: 96 / 4, HaveWatermarks: true},
		{Node: 0, Name: "DMA32", FreeBlocks: []uint64{19160, 6346, 35, 7, 0, 0, 0, 0, 0, 0, 0},
			NrFree: 127248 / 4, Managed: 2884252 / 4, Min: 11976 / 4, Low: 14968 / 4, High: 17964 / 4,
			HaveWatermarks: true},
		{Node: 0, Name: "Normal", FreeBlocks: []uint64{34178, 20118, 412, 115, 46, 6, 0, 0, 0, 0, 0},
			NrFree: 311184 / 4, Managed: 13366888 / 4, Min: 55536 / 4, Low: 69420 / 4, High: 83304 / 4,
			HaveWatermarks: true},
	}
}

func memSnap(t time.Time, reason string, zones []snapshot.Zone) *event.MemSnapshot {
	th := 500
	return &event.MemSnapshot{Reason: reason, Snapshot: &snapshot.Snapshot{
		Time: t, PageSize: 4096, Zones: zones, ExtfragThreshold: &th, PageblockOrder: 9}}
}

func tick(t time.Time, counts map[uint64]uint64) *event.Tick {
	tk := &event.Tick{Time: t, Interval: 10 * time.Second}
	for _, id := range []uint64{podCgroup, dockerCgroup, buildCgroup, 1004, 1005, 1006} {
		if n := counts[id]; n > 0 {
			// Two keys per cgroup, to check they are summed, and a
			// non-fragmenting key that must not count.
			tk.Extfrag = append(tk.Extfrag,
				event.ExtfragCount{ExtfragKey: event.ExtfragKey{CgroupID: id, FallbackOrder: 2,
					AllocMT: mtUnmovable, FallbackMT: mtMovable, Fragmenting: true}, Count: n - n/2},
				event.ExtfragCount{ExtfragKey: event.ExtfragKey{CgroupID: id, FallbackOrder: 3,
					AllocMT: mtReclaimable, FallbackMT: mtMovable, Fragmenting: true}, Count: n / 2},
				event.ExtfragCount{ExtfragKey: event.ExtfragKey{CgroupID: id, FallbackOrder: 9,
					AllocMT: mtMovable, FallbackMT: mtUnmovable}, Count: 1000})
		}
	}
	return tk
}

// seedClone is the moment runc's clone entered.
var seedClone = at(80*time.Second + 100*time.Millisecond)

// seedStream is the SYNTHETIC stream: a session start, cgroup paths, ticks
// every 10 s with fragmenting fallbacks (the one at 10 s falls outside the
// 60 s window before the failure), then the failing clone with its evidence
// in the order a live session delivers it.
func seedStream(t testing.TB) []event.Event {
	in := event.SyscallRef{Syscall: "clone", Enter: seedClone}
	evs := []event.Event{
		start310(t, allHooks()),
		&event.CgroupPath{Time: t0, ID: podCgroup, Path: "/kubepods/besteffort/pod5f7e/3c1d"},
		&event.CgroupPath{Time: t0, ID: dockerCgroup, Path: "/system.slice/docker.service"},
		&event.CgroupPath{Time: t0, ID: buildCgroup, Path: "/kubepods/burstable/pod9a2b/77e0", Removed: true},
		memSnap(t0, "start", seedZones()),
		tick(at(10*time.Second), map[uint64]uint64{dockerCgroup: 100000}), // outside the window
	}
	for s := 20; s <= 80; s += 10 {
		evs = append(evs, tick(at(time.Duration(s)*time.Second),
			map[uint64]uint64{podCgroup: 30, buildCgroup: 120, dockerCgroup: 5, 1004: 1, 1005: 2, 1006: 3}),
			memSnap(at(time.Duration(s)*time.Second), "interval", seedZones()))
	}
	evs = append(evs,
		&event.AllocFail{Time: seedClone.Add(2 * time.Millisecond), Task: runc, Order: 6, GFP: seedGFP,
			Migratetype: mtUnmovable, Stack: seedStack, Hook: "page_alloc", In: in},
		memSnap(seedClone.Add(3*time.Millisecond), "failure", seedZones()),
		&event.SlabCreate{Time: seedClone.Add(4 * time.Millisecond), Task: runc, Name: seedSlab, Size: 320,
			Failed: true, Latency: 2 * time.Millisecond, In: in},
		&event.NetnsCreate{Time: seedClone.Add(5 * time.Millisecond), Task: runc, Errno: 12,
			Latency: 4 * time.Millisecond, In: in},
		&event.NsSyscall{Time: seedClone.Add(6 * time.Millisecond), Task: runc, Syscall: "clone",
			Flags: cloneNewNet | sigchld, Errno: 12, Enter: seedClone, Latency: 6 * time.Millisecond},
	)
	return evs
}

func run(c *Correlator, evs []event.Event) []*Incident {
	var out []*Incident
	for _, ev := range evs {
		if inc := c.Add(ev); inc != nil {
			out = append(out, inc)
		}
	}
	return out
}
