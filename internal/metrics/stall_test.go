package metrics

import (
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
)

// A stall counts once, from its running report on; the in-flight gauge is
// 1 while it lasts and 0 after its end; a stall seen only at its end
// counts too. Every call's series exists from the start.
func TestStalls(t *testing.T) {
	at := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	task := event.Task{PID: 1, TID: 2, Comm: "runc:[2:INIT]", CgroupID: 7}
	wait := &event.Stall{Time: at, Task: task, Call: event.CallMemcgOOMWait, Enter: at.Add(-time.Second), Duration: time.Second}
	f := scrape(t, NewRegistry(&lockedState{}, Options{}))
	f.want(t, 0, "fragscope_stalls_total", "call", "memcg_oom_wait")
	f.want(t, 0, "fragscope_stalls_in_flight", "call", "unshare")

	l := &lockedState{s: State{Agg: newAgg()}}
	reg := NewRegistry(l, Options{})
	l.add(aggtest.Start(), wait)
	f = scrape(t, reg)
	f.want(t, 1, "fragscope_stalls_total", "call", "memcg_oom_wait")
	f.want(t, 1, "fragscope_stalls_in_flight", "call", "memcg_oom_wait")

	end := *wait
	end.Time, end.Duration, end.End = at.Add(2*time.Second), 3*time.Second, event.StallResumed
	l.add(&end, &event.Stall{Time: at, Task: task, Call: "unshare", Enter: at.Add(-time.Second),
		Duration: time.Second, End: event.StallReturned})
	f = scrape(t, reg)
	f.want(t, 1, "fragscope_stalls_total", "call", "memcg_oom_wait")
	f.want(t, 0, "fragscope_stalls_in_flight", "call", "memcg_oom_wait")
	f.want(t, 1, "fragscope_stalls_total", "call", "unshare")
	f.want(t, 0, "fragscope_stalls_in_flight", "call", "unshare")
}
