package report

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// synthetic is a SYNTHETIC agent session of span: what a node's agent
// records at its defaults (a Tick and an interval snapshot every second,
// 40 pod cgroups with counters and extfrag keys), with free high-order
// blocks eroding and recovering, and every burstEvery a failing clone:
// an order-6 failure inside clone(CLONE_NEWNET), a failure snapshot and
// the syscall's ENOMEM exit, which the correlator makes an incident.
type synthetic struct {
	Span, BurstEvery time.Duration
	Seed             uint64
	// Failures records each non-duplicate failed allocation emitted.
	Failures []event.AllocFail
}

var synthStart = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func (s *synthetic) Run(ctx context.Context, emit func(event.Event)) error {
	rng := rand.New(rand.NewPCG(s.Seed, 1))
	emit(&event.Start{Time: synthStart, Hostname: "synthetic", KernelRelease: "6.12.0-synthetic", PageSize: 4096,
		PageblockOrder: 9, Version: "synthetic",
		Hooks: []event.HookStatus{{Hook: "page_alloc", Mechanism: "raw_tp", Attached: true}, {Hook: "extfrag", Mechanism: "raw_tp", Attached: true},
			{Hook: "ns_syscall", Mechanism: "tracepoint", Attached: true}},
		Migratetypes: []string{"Unmovable", "Movable", "Reclaimable", "HighAtomic", "CMA", "Isolate"}})
	const pods = 40
	for i := range pods {
		emit(&event.CgroupPath{Time: synthStart, ID: uint64(100 + i),
			Path: fmt.Sprintf("/kubepods/burstable/pod%08x-0000-4000-8000-%012x/%064x", i, i, i)})
	}
	zones := []snapshot.Zone{
		{Node: 0, Name: "DMA", Managed: 3840, Min: 32, Low: 40, High: 48, HaveWatermarks: true},
		{Node: 0, Name: "DMA32", Managed: 480000, Min: 2000, Low: 2500, High: 3000, HaveWatermarks: true},
		{Node: 0, Name: "Normal", Managed: 5800000, Min: 14000, Low: 17500, High: 21000, HaveWatermarks: true},
	}
	threshold := 500
	nextBurst := s.BurstEvery
	for sec := time.Second; sec <= s.Span; sec += time.Second {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		now := synthStart.Add(sec)
		tick := &event.Tick{Time: now, Interval: time.Second}
		for o := range 11 {
			tick.Allocs[o][1] = uint64(rng.IntN(20000) >> o)
			tick.Allocs[o][0] = uint64(rng.IntN(4000) >> o)
		}
		for i := range 6 {
			id := uint64(100 + rng.IntN(pods))
			tick.Extfrag = append(tick.Extfrag, event.ExtfragCount{ExtfragKey: event.ExtfragKey{CgroupID: id,
				AllocOrder: uint8(i % 4), FallbackOrder: uint8(4 + i%3), AllocMT: 0, FallbackMT: 1, Fragmenting: i%2 == 0},
				Count: uint64(rng.IntN(50))})
		}
		for i := range 8 {
			c := event.CgroupAlloc{CgroupID: uint64(100 + (int(sec/time.Second)+i)%pods), HighOrder: uint64(rng.IntN(100))}
			c.Unmovable[4] = uint64(rng.IntN(30))
			tick.Cgroups = append(tick.Cgroups, c)
		}
		emit(tick)
		// High orders erode over each hour and recover at compaction.
		phase := math.Mod(sec.Hours(), 1)
		snap := &snapshot.Snapshot{Time: now, PageSize: 4096, PageblockOrder: 9, ExtfragThreshold: &threshold,
			Zones: make([]snapshot.Zone, len(zones))}
		for zi, z := range zones {
			z.FreeBlocks = make([]uint64, 11)
			for o := range 11 {
				base := float64(z.Managed) / 50 / math.Pow(2, float64(o))
				if o >= 4 {
					base *= math.Max(0, 1-phase*1.3)
				}
				z.FreeBlocks[o] = uint64(base * (0.8 + 0.4*rng.Float64()))
			}
			snap.Zones[zi] = z
		}
		emit(&event.MemSnapshot{Reason: "interval", Snapshot: snap})
		if sec >= nextBurst {
			nextBurst += s.BurstEvery
			s.burst(now, snap, emit)
		}
	}
	return nil
}

func (s *synthetic) burst(now time.Time, snap *snapshot.Snapshot, emit func(event.Event)) {
	enter := now.Add(100 * time.Millisecond)
	task := event.Task{PID: 4242, TID: 4242, Comm: "runc:[2:INIT]", CgroupID: 100}
	in := event.SyscallRef{Syscall: "clone", Enter: enter}
	fail := event.AllocFail{Time: enter.Add(2 * time.Millisecond), Task: task, Order: 6, GFP: 0x10c0d0, Migratetype: 0,
		Hook: "tracepoint", In: in, Stack: []string{"__alloc_pages_noprof", "kmalloc_large", "kmem_cache_create"}}
	s.Failures = append(s.Failures, fail)
	emit(&fail)
	fs := *snap
	fs.Time = enter.Add(3 * time.Millisecond)
	emit(&event.MemSnapshot{Reason: "failure", Snapshot: &fs})
	emit(&event.NetnsCreate{Time: enter.Add(4 * time.Millisecond), Task: task, Errno: -12, Latency: 3 * time.Millisecond, In: in})
	emit(&event.NsSyscall{Time: enter.Add(5 * time.Millisecond), Task: task, Syscall: "clone", Flags: 0x40000000,
		Errno: 12, Enter: enter, Latency: 5 * time.Millisecond})
}
