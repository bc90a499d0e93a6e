package report_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/report"
	"github.com/fragscope/fragscope/internal/snapshot"
)

type events []event.Event

func (es events) Run(_ context.Context, emit func(event.Event)) error {
	for _, e := range es {
		emit(e)
	}
	return nil
}

// A clone refused by its parent memory cgroup's limit (the readings the
// live source takes, kind memcg_state): the card names the cgroup chain
// and the refusing level, as the text incident does.
func TestCardNamesTheMemcgChain(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	enter := t0.Add(time.Second)
	const id = 17657
	task := event.Task{PID: 29082, TID: 29082, Comm: "runc:[1:CHILD]", CgroupID: id}
	zone := snapshot.Zone{Node: 0, Name: "Normal", FreeBlocks: []uint64{5000, 2000, 800, 300, 100, 40, 20, 10, 5, 2, 1},
		Managed: 4 << 20, Min: 10000, Low: 12000, High: 14000, HaveWatermarks: true}
	src := events{
		&event.Start{Time: t0, Hostname: "n", KernelRelease: "6.18.0", PageSize: 4096, PageblockOrder: 9,
			Hooks: []event.HookStatus{{Hook: "ns_syscall", Mechanism: "tracepoint", Attached: true},
				{Hook: "page_alloc", Mechanism: "raw_tp", Attached: true}}},
		&event.CgroupPath{Time: t0, ID: id, Path: "/fs-parent/ctr1"},
		&event.MemSnapshot{Reason: "start", Snapshot: &snapshot.Snapshot{Time: t0, PageSize: 4096, Zones: []snapshot.Zone{zone}}},
		&event.MemcgState{Time: enter.Add(2 * time.Millisecond), TID: task.TID, CgroupID: id, Reason: "failure", Version: 1, From: "proc",
			Levels: []event.MemcgLevel{
				{Path: "/fs-parent/ctr1", Limit: -1, Usage: 249856, HaveKmem: true, KmemLimit: -1},
				{Path: "/fs-parent", Limit: 262144, Usage: 262144, Failcnt: 341, HaveKmem: true, KmemLimit: -1},
			}},
		&event.NsSyscall{Time: enter.Add(time.Millisecond), Task: task, Syscall: "clone", Errno: -12, Enter: enter},
	}
	var buf bytes.Buffer
	if err := report.Render(context.Background(), src, report.Options{Title: "memcg", Input: report.InputRecording}, &buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{`data-cause="memcg_limit"`, `data-field="memcg"`, "/fs-parent limit 256 kB, usage 256 kB, failcnt 341 &lt;- refused"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %s", want)
		}
	}
}
