package incident

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// assembledLater is the /proc picture read after the failure once
// kcompactd, woken by it, has put an order-10 block together in Normal.
func assembledLater(t time.Time) *event.MemSnapshot {
	z := aggtest.FailureZones()
	z[2].FreeBlocks[10] = 1
	return &event.MemSnapshot{Reason: "failure", Snapshot: &snapshot.Snapshot{Time: t, PageSize: 4096, Zones: z}}
}

// atFailureStream is aggtest.Session with the kernel's capture of the
// fragmented free lists just before the order-6 failure and a /proc
// snapshot after it that shows a block assembled since; withCapture false
// leaves the capture out, other inserts a failure of another task outside
// any syscall between the capture and the clone's failure (which then has
// no capture of its own); lead is how long before the failure the capture
// is timed.
func atFailureStream(withCapture, other bool, lead time.Duration) []event.Event {
	var out []event.Event
	for _, ev := range aggtest.Session() {
		switch e := ev.(type) {
		case *event.AllocFail:
			if withCapture {
				out = append(out, &event.MemSnapshot{Reason: snapshot.ReasonAtFailure,
					Snapshot: &snapshot.Snapshot{Time: e.Time.Add(-lead), PageSize: 4096, Zones: aggtest.FailureZones()}})
			}
			if other {
				out = append(out, &event.AllocFail{Time: e.Time.Add(-time.Microsecond / 2), Order: 6, GFP: e.GFP,
					Task: event.Task{PID: 77, TID: 77, Comm: "other"}, Hook: "tracepoint"})
			}
		case *event.MemSnapshot:
			if e.Reason == "failure" {
				ev = assembledLater(e.Snapshot.Time)
			}
		}
		out = append(out, ev)
	}
	return out
}

func cloneIncident(t *testing.T, evs []event.Event) *Incident {
	t.Helper()
	incs := run(New(nil), evs)
	i := slices.IndexFunc(incs, func(inc *Incident) bool { return inc.Syscall.Name == "clone" })
	if i < 0 {
		t.Fatalf("no clone incident among %d", len(incs))
	}
	return incs[i]
}

// The kernel's capture decides the verdict when the failure has one, however
// much the /proc snapshot read after it differs; without one the /proc
// snapshot decides as before, and a capture another failure took, or one
// timed too long before the failure to be its own, is not used.
func TestVerdictFromAtFailureCapture(t *testing.T) {
	inc := cloneIncident(t, atFailureStream(true, false, time.Microsecond))
	if inc.Memory == nil || inc.Memory.Reason != snapshot.ReasonAtFailure {
		t.Fatalf("memory %+v, want the at-failure capture", inc.Memory)
	}
	if inc.Verdict.Cause != CauseFragmentation {
		t.Errorf("cause %s, want fragmentation; reasons %q", inc.Verdict.Cause, inc.Verdict.Reasons)
	}
	if n := zone(t, inc, "Normal"); n.LargestFreeOrder != 5 || n.Verdict != "fragmentation" {
		t.Errorf("Normal %+v", n)
	}
	if txt := strings.Join(strings.Fields(render(t, inc)), " "); !strings.Contains(txt, "captured by the kernel at the failure, 1µs before the allocation failed") {
		t.Errorf("text does not say where the picture came from:\n%s", txt)
	}

	for name, evs := range map[string][]event.Event{
		"no capture":               atFailureStream(false, false, 0),
		"capture of another alloc": atFailureStream(true, true, time.Microsecond),
		"capture 5 ms before":      atFailureStream(true, false, 5*time.Millisecond),
	} {
		inc := cloneIncident(t, evs)
		if inc.Memory == nil || inc.Memory.Reason != "failure" {
			t.Fatalf("%s: memory %+v, want the /proc failure snapshot", name, inc.Memory)
		}
		// /proc shows the order-10 block kcompactd assembled: the verdict
		// cannot be fragmentation, which is what the capture fixes.
		if inc.Verdict.Cause == CauseFragmentation || zone(t, inc, "Normal").Verdict != "ok" {
			t.Errorf("%s: cause %s, Normal %+v", name, inc.Verdict.Cause, zone(t, inc, "Normal"))
		}
	}
}
