// Package aggtest builds synthetic event sequences for tests and benchmarks
// of the aggregator and the views. The numbers are the seed incident's
// (shared/notes/incident.md): a 3.10 kernel whose Normal zone has no free
// block above order 3, a runc clone(CLONE_NEWNET) failing on an order-6
// allocation made for the nf_conntrack slab cache of the new netns.
package aggtest

import (
	"fmt"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/gfp"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// T0 is the session start; every event time is an offset from it.
var T0 = time.Date(2017, 3, 2, 10, 0, 0, 0, time.UTC)

// At returns T0 plus d.
func At(d time.Duration) time.Time { return T0.Add(d) }

// Migratetype values of 3.10 (enum migratetype before RECLAIMABLE and
// MOVABLE were swapped in 4.4).
const (
	Unmovable   = 0
	Reclaimable = 1
	Movable     = 2
)

// SeedGFP is the seed's failing mode:0x10c0d0,
// GFP_KERNEL|__GFP_COMP|__GFP_ZERO|__GFP_KMEMCG on 3.10.
const SeedGFP = 0x10c0d0

// Cgroup ids used by the sequence.
const (
	PodCgroup    = 1001 // the pod whose runc clone fails
	DockerCgroup = 1002
)

// SeedStack is the failing allocation's call chain from the seed's log.
var SeedStack = []string{
	"warn_alloc_failed", "__alloc_pages_slowpath", "__alloc_pages_nodemask",
	"alloc_pages_current", "__get_free_pages", "kmalloc_order_trace", "__kmalloc",
	"memcg_register_cache", "kmem_cache_create_memcg", "kmem_cache_create",
	"nf_conntrack_init_net", "nf_conntrack_pernet_init", "ops_init", "setup_net",
	"copy_net_ns", "create_new_namespaces", "copy_namespaces", "copy_process",
	"do_fork", "SyS_clone",
}

// Start returns the session metadata of a 3.10 kernel: its gfp table as the
// tracefs format of mm_page_alloc lists it (combinations first) and its
// migratetype names. The gfp table is RHEL 7's own (3.10.0-514.el7), as
// internal/gfp generates it from that tree's headers.
func Start() *event.Start {
	return &event.Start{
		Time:           T0,
		Hostname:       "node-7",
		KernelRelease:  "3.10.0-514.el7.x86_64",
		BootID:         "2f1c0c8e-0000-4000-8000-000000000001",
		PageSize:       4096,
		PageblockOrder: 9,
		Version:        "test",
		Hooks: []event.HookStatus{
			{Hook: "alloc_fail", Mechanism: "tracepoint", Target: "kmem:mm_page_alloc", Attached: true},
			{Hook: "slab_create", Mechanism: "kprobe", Target: "kmem_cache_create", Attached: true},
			{Hook: "extfrag", Mechanism: "tracepoint", Target: "kmem:mm_page_alloc_extfrag", Attached: true},
		},
		GFPFlags:     el7GFP(),
		Migratetypes: []string{"Unmovable", "Reclaimable", "Movable", "Reserve", "Isolate"},
	}
}

func el7GFP() []event.Flag {
	flags, _, ok := gfp.ForRelease("3.10.0-514.el7.x86_64")
	if !ok {
		panic("aggtest: no gfp table for 3.10.0-514.el7")
	}
	return flags
}

// Zones returns the failing node's /proc/buddyinfo with the watermarks of
// the kernel's Mem-Info (kB / 4). Managed sizes are plausible for 16 GB.
func Zones() []snapshot.Zone {
	return []snapshot.Zone{
		{Node: 0, Name: "DMA", FreeBlocks: []uint64{1, 0, 0, 1, 2, 1, 1, 0, 1, 1, 3},
			Managed: 3976, Min: 33, Low: 41, High: 49, HaveWatermarks: true},
		{Node: 0, Name: "DMA32", FreeBlocks: []uint64{8409, 8079, 1340, 74, 6, 0, 0, 0, 0, 0, 0},
			Managed: 759000, Min: 2994, Low: 3742, High: 4491, HaveWatermarks: true},
		{Node: 0, Name: "Normal", FreeBlocks: []uint64{40153, 12774, 302, 17, 0, 0, 0, 0, 0, 0, 0},
			Managed: 3370000, Min: 13884, Low: 17355, High: 20826, HaveWatermarks: true},
	}
}

// FailureZones is the picture at the second of the failure, from the
// kernel's Mem-Info dump in the seed log: Normal's largest free order is 5,
// so the order-6 request could not be served.
func FailureZones() []snapshot.Zone {
	z := Zones()
	z[1].FreeBlocks = []uint64{19160, 6346, 35, 7, 0, 0, 0, 0, 0, 0, 0}
	z[2].FreeBlocks = []uint64{34178, 20118, 412, 115, 46, 6, 0, 0, 0, 0, 0}
	return z
}

// Snapshot returns a MemSnapshot of Zones at t; a "failure" snapshot holds
// FailureZones.
func Snapshot(t time.Time, reason string) *event.MemSnapshot {
	zones := Zones()
	if reason == "failure" {
		zones = FailureZones()
	}
	return &event.MemSnapshot{Reason: reason, Snapshot: &snapshot.Snapshot{Time: t, PageSize: 4096, Zones: zones}}
}

// Runc is the task of the seed's failing clone, inside the pod's cgroup.
var Runc = event.Task{PID: 18377, TID: 18377, Comm: "exe", CgroupID: PodCgroup, NetnsIno: 4026531956}

// ConntrackCache returns the name of the n-th per-netns nf_conntrack cache.
func ConntrackCache(n int) string { return fmt.Sprintf("nf_conntrack_ffff8803eef6%04x", 0x6180+n*0x40) }

// Session returns a short session modelled on the seed:
//
//	interval 1 (0-5s):  8 nf_conntrack caches created, allocations counted, extfrag by two cgroups
//	interval 2 (5-10s): runc's clone(CLONE_NEWNET) fails on an order-6 allocation: alloc failure,
//	                    failure snapshot, failed slab creation, failed copy_net_ns, failed clone;
//	                    an unshare(CLONE_NEWNET) fails with ENOSPC; 3 events dropped
//	interval 3 (10-15s): quiet
func Session() []event.Event {
	clone := At(5*time.Second + 100*time.Millisecond)
	evs := []event.Event{
		Start(),
		&event.CgroupPath{Time: T0, ID: PodCgroup, Path: "/kubepods/besteffort/pod5f7e/3c1d"},
		&event.CgroupPath{Time: T0, ID: DockerCgroup, Path: "/system.slice/docker.service"},
		Snapshot(T0, "start"),
	}
	for i := range 8 {
		evs = append(evs, &event.SlabCreate{
			Time: At(time.Duration(i+1) * 500 * time.Millisecond), Task: event.Task{PID: uint32(2000 + i), TID: uint32(2000 + i), Comm: "exe", CgroupID: PodCgroup, NetnsIno: 4026531956},
			Name: ConntrackCache(i), Size: 320, Latency: 40 * time.Microsecond,
			In: event.SyscallRef{Syscall: "clone", Enter: At(time.Duration(i+1) * 500 * time.Millisecond)},
		})
	}
	tick1 := &event.Tick{
		Time: At(5 * time.Second), Interval: 5 * time.Second,
		Extfrag: []event.ExtfragCount{
			{ExtfragKey: event.ExtfragKey{CgroupID: PodCgroup, AllocOrder: 0, FallbackOrder: 2, AllocMT: Unmovable, FallbackMT: Movable, Fragmenting: true}, Count: 30},
			{ExtfragKey: event.ExtfragKey{CgroupID: DockerCgroup, AllocOrder: 0, FallbackOrder: 9, AllocMT: Movable, FallbackMT: Unmovable}, Count: 4},
		},
	}
	tick1.Allocs[0][Unmovable] = 1000
	tick1.Allocs[0][Movable] = 5000
	tick1.Allocs[1][Unmovable] = 200
	tick1.Allocs[3][Unmovable] = 50
	evs = append(evs, tick1,
		&event.AllocFail{
			Time: clone.Add(2 * time.Millisecond), Task: Runc, Order: 6, GFP: SeedGFP,
			Migratetype: Unmovable, Stack: SeedStack, Hook: "tracepoint",
			In: event.SyscallRef{Syscall: "clone", Enter: clone},
		},
		Snapshot(clone.Add(3*time.Millisecond), "failure"),
		&event.SlabCreate{
			Time: clone.Add(4 * time.Millisecond), Task: Runc, Name: "nf_conntrack_ffff8803eef66180",
			Size: 320, Failed: true, Latency: 2 * time.Millisecond, In: event.SyscallRef{Syscall: "clone", Enter: clone},
		},
		&event.NetnsCreate{
			Time: clone.Add(5 * time.Millisecond), Task: Runc, Errno: -12, Latency: 4 * time.Millisecond,
			In: event.SyscallRef{Syscall: "clone", Enter: clone},
		},
		&event.NsSyscall{
			Time: clone.Add(6 * time.Millisecond), Task: Runc, Syscall: "clone",
			Flags: 0x6c020000 | 0x11, // NEWNS|NEWUTS|NEWIPC|NEWPID|NEWNET, SIGCHLD
			Errno: 12, Enter: clone, Latency: 6 * time.Millisecond,
		},
		&event.NsSyscall{
			Time: At(7 * time.Second), Task: event.Task{PID: 3001, TID: 3001, Comm: "unshare", CgroupID: DockerCgroup, NetnsIno: 4026531956},
			Syscall: "unshare", Flags: 0x40000000, Errno: 28, Enter: At(7 * time.Second).Add(-time.Millisecond), Latency: time.Millisecond,
		},
	)
	tick2 := &event.Tick{
		Time: At(10 * time.Second), Interval: 5 * time.Second, Drops: 3,
		Extfrag: []event.ExtfragCount{
			{ExtfragKey: event.ExtfragKey{CgroupID: PodCgroup, AllocOrder: 0, FallbackOrder: 2, AllocMT: Unmovable, FallbackMT: Movable, Fragmenting: true}, Count: 10},
		},
	}
	tick2.Allocs[0][Unmovable] = 500
	evs = append(evs, tick2,
		Snapshot(At(10*time.Second), "interval"),
		&event.Tick{Time: At(15 * time.Second), Interval: 5 * time.Second},
	)
	return evs
}
