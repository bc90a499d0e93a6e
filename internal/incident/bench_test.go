package incident

import (
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// BenchmarkAddNonIncident measures Add on the events of a replay that do
// not make an incident: allocation failures outside any watched syscall
// (the common case of a fragmented machine), with a Tick and an interval
// snapshot every 1000 events.
func BenchmarkAddNonIncident(b *testing.B) {
	c := New(nil)
	c.Add(start310(b, allHooks()))
	fail := &event.AllocFail{Task: runc, Order: 3, GFP: seedGFP, Stack: seedStack, Hook: "page_alloc"}
	tk := tick(t0, map[uint64]uint64{podCgroup: 30, dockerCgroup: 4, buildCgroup: 7})
	snap := memSnap(t0, "interval", seedZones())
	now := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now = now.Add(time.Millisecond)
		if i%1000 == 999 {
			tk.Time = now
			c.Add(tk)
			snap.Snapshot.Time = now
			c.Add(snap)
			continue
		}
		fail.Time = now
		c.Add(fail)
	}
}

// BenchmarkAddAllocFailOutside is the hot path alone.
func BenchmarkAddAllocFailOutside(b *testing.B) {
	c := New(nil)
	c.Add(start310(b, allHooks()))
	fail := &event.AllocFail{Time: t0, Task: runc, Order: 3, GFP: seedGFP, Stack: seedStack, Hook: "page_alloc"}
	b.ReportAllocs()
	for b.Loop() {
		c.Add(fail)
	}
}
