package trace

import (
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
)

// mem_stalls (binary) and task_mem_stalls (JSON) records come back as they
// were written, every field set; a truncated mem_stalls payload is an
// error, not a shorter event.
func TestMemStallsRoundTrip(t *testing.T) {
	ms := &event.MemStalls{Time: aggtest.At(2 * time.Second), Overflow: 3,
		Stalls: []event.StallHist{
			{CgroupID: 1001, Kind: event.StallDirectCompaction, Order: 9, Count: 4, TotalNs: 4e6, Retries: 2, GiveUps: 1,
				Results: []event.ResultCount{{Result: "complete", Count: 3}, {Result: "success", Count: 1}}},
			{CgroupID: 1002, Kind: event.StallMemcgReclaim, Count: 7, TotalNs: 7e5, Reclaimed: 320},
		},
		Zones: []event.ZoneCompaction{{Node: 0, Zone: "Normal", ZoneStart: 0x100000, Direct: true, Count: 4, TotalNs: 3e6,
			Results: []event.ResultCount{{Result: "complete", Count: 4}}}},
		PSI: []event.PSIDelta{{CgroupID: 0, SomeUs: 900, FullUs: 100}, {CgroupID: 1002, SomeUs: 700, FullUs: 50}},
	}
	ms.Stalls[0].Buckets[12], ms.Stalls[0].Buckets[20] = 3, 1
	ms.Stalls[1].Buckets[15] = 7
	ms.Zones[0].Buckets[21] = 4
	ms.KcompactdWakes[9] = 2
	ts := &event.TaskMemStalls{Time: aggtest.At(3 * time.Second), Task: event.Task{PID: 5, TID: 6, Comm: "java", CgroupID: 1001},
		Stalls: []event.RecentStall{{End: aggtest.At(2900 * time.Millisecond), Duration: 5 * time.Millisecond,
			Kind: event.StallDirectCompaction, Order: 9, GFP: 0x140cca, Result: "complete"}}}
	evs := []event.Event{aggtest.Start(), ms, ts}
	_, b := record(t, evs)
	got, tail := readAll(t, b)
	if tail != nil || len(got) != len(evs) {
		t.Fatalf("read %d events (tail %v), wrote %d", len(got), tail, len(evs))
	}
	for i, ev := range evs {
		if want := render(t, ev); got[i] != want {
			t.Errorf("event %d:\n got %s\nwant %s", i, got[i], want)
		}
	}
	var e encoder
	e.memStalls(ms)
	for n := 0; n < len(e.buf); n++ {
		d := decoder{buf: e.buf[:n]}
		if ev := d.memStalls(); ev != nil && d.err == nil {
			t.Fatalf("a payload cut to %d of %d bytes decoded", n, len(e.buf))
		}
	}
}
