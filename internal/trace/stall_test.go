package trace

import (
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// Stalls are recorded as JSON records (rare, free to grow fields) and read
// back as they were written, running report and end alike.
func TestStallRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC)
	task := event.Task{PID: 4242, TID: 4243, Comm: "runc:[2:INIT]", CgroupID: 77}
	stalls := []*event.Stall{
		{Time: at, Task: task, Call: event.CallMemcgOOMWait, Enter: at.Add(-1200 * time.Millisecond),
			Duration: 1200 * time.Millisecond, Wchan: "mem_cgroup_oom_synchronize",
			Memcg: &event.StallMemcg{Path: "/parent", LimitBytes: 1 << 20, UsageBytes: 1 << 20}},
		{Time: at.Add(time.Second), Task: task, Call: "unshare", Flags: 0x40000000, Enter: at.Add(-time.Second),
			Duration: 2 * time.Second, End: event.StallReturned, Errno: 12},
	}
	var evs []event.Event
	for _, s := range stalls {
		evs = append(evs, s)
	}
	r := writeRead(t, evs...)
	for _, want := range stalls {
		ev, err := r.Next()
		if err != nil || !reflect.DeepEqual(ev, want) {
			t.Fatalf("stall read back as %+v (%v), want %+v", ev, err, want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("want the end, got %v", err)
	}
}
