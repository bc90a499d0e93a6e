package view_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/view"
)

// stallSession is a hung container start as the live source reports it:
// runc init in the memcg OOM wait, an unshare stuck behind it, their ends,
// and a clone that crossed the threshold between two scans (end only).
func stallSession() []event.Event {
	t0 := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	const ctr = "/kubepods/burstable/pod0f5b3c1e-1111-4222-8333-944445555666/4b1c0a9e8f7d6c5b4a3928171615141312111009080706050403020100ffeedd"
	initTask := event.Task{PID: 4242, TID: 4242, Comm: "runc:[2:INIT]", CgroupID: 77}
	unshareTask := event.Task{PID: 4300, TID: 4301, Comm: "unshare", CgroupID: 77}
	return []event.Event{
		&event.Start{Time: t0, Hostname: "node-a", KernelRelease: "6.18.0", PageSize: 4096, PageblockOrder: 9, Version: "test",
			Hooks: []event.HookStatus{{Hook: "ns_syscall", Mechanism: "tracepoint", Target: "syscalls/sys_{enter,exit}_{clone,clone3,unshare,setns}", Attached: true},
				{Hook: "memcg_oom_wait", Mechanism: "tracepoint", Target: "vmscan/mm_vmscan_memcg_reclaim_end", Attached: true}}},
		&event.CgroupPath{Time: at(1200), ID: 77, Path: ctr},
		&event.Stall{Time: at(1250), Task: initTask, Call: event.CallMemcgOOMWait, Enter: at(10),
			Duration: 1240 * time.Millisecond, Wchan: "mem_cgroup_oom_synchronize",
			Memcg: &event.StallMemcg{Path: "/kubepods/burstable", LimitBytes: 1 << 20, UsageBytes: 1 << 20}},
		&event.Stall{Time: at(1500), Task: unshareTask, Call: "unshare", Flags: 0x40000000, Enter: at(400),
			Duration: 1100 * time.Millisecond, Wchan: "rtnl_lock"},
		&event.Tick{Time: at(2000), Interval: 2 * time.Second},
		&event.Stall{Time: at(2600), Task: unshareTask, Call: "unshare", Flags: 0x40000000, Enter: at(400),
			Duration: 2200 * time.Millisecond, End: event.StallReturned, Errno: 12},
		&event.Stall{Time: at(2750), Task: event.Task{PID: 9, TID: 9, Comm: "containerd", CgroupID: 3}, Call: "clone",
			Flags: 0x40000011, Enter: at(1500), Duration: 1250 * time.Millisecond, End: event.StallReturned},
		&event.Tick{Time: at(3000), Interval: time.Second},
		&event.Stall{Time: at(3250), Task: initTask, Call: event.CallMemcgOOMWait, Enter: at(10),
			Duration: 3240 * time.Millisecond, End: event.StallResumed},
		&event.Tick{Time: at(4000), Interval: time.Second},
	}
}

func TestStallGolden(t *testing.T) {
	var term, js, inc bytes.Buffer
	run(t, view.NewTerminal(&term, false), stallSession())
	golden(t, "stall.txt", term.Bytes())
	run(t, view.NewJSON(&js), stallSession())
	golden(t, "stall.ndjson", js.Bytes())
	reports := &view.IncidentReports{W: &inc}
	run(t, view.IncidentsOnly(reports), stallSession())
	golden(t, "stall-incidents.txt", inc.Bytes())
	if reports.Stalls != 5 || reports.Count != 0 {
		t.Errorf("incidents view: %d stalls, %d incidents; want 5 and 0", reports.Stalls, reports.Count)
	}
}
