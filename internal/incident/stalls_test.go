package incident

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// The seed stream with stalls: the cgroup reclaimed and compacted in the
// seconds before the clone, the failing task compacted right before its
// failure. The incident says both; stalls of another cgroup, of the task
// long before, and after the failure stay out.
func TestIncidentStalls(t *testing.T) {
	evs := seedStream(t)
	n := len(evs) - 5 // before the failing clone's evidence
	stalls := []event.Event{
		&event.MemStalls{Time: seedClone.Add(-20 * time.Second), Stalls: []event.StallHist{ // out of the window
			{CgroupID: podCgroup, Kind: event.StallDirectReclaim, Count: 100, TotalNs: 1e9}}},
		&event.MemStalls{Time: seedClone.Add(-time.Second), Stalls: []event.StallHist{
			{CgroupID: podCgroup, Kind: event.StallDirectCompaction, Order: 6, Count: 3, TotalNs: 3e6},
			{CgroupID: podCgroup, Kind: event.StallMemcgReclaim, Count: 5, TotalNs: 5e6, Reclaimed: 40},
			{CgroupID: dockerCgroup, Kind: event.StallMemcgReclaim, Count: 9, TotalNs: 9e6}},
			PSI: []event.PSIDelta{{CgroupID: podCgroup, SomeUs: 7000, FullUs: 2000}, {CgroupID: 0, SomeUs: 1}}},
	}
	task := &event.TaskMemStalls{Time: seedClone.Add(2 * time.Millisecond), Task: runc, Stalls: []event.RecentStall{
		{End: seedClone.Add(-30 * time.Second), Duration: time.Millisecond, Kind: event.StallDirectReclaim}, // too old
		{End: seedClone.Add(time.Millisecond), Duration: 800 * time.Microsecond, Kind: event.StallDirectCompaction,
			Order: 6, Result: "complete"},
	}, Cgroup: []event.StallHist{{CgroupID: podCgroup, Kind: event.StallMemcgReclaim, Count: 2, TotalNs: 2e6}}}
	var all []event.Event
	all = append(all, evs[:n]...)
	all = append(all, stalls...)
	all = append(all, task)   // read at the failure, emitted before it
	all = append(all, evs[n]) // the AllocFail
	all = append(all, evs[n+1:]...)
	inc := one(t, run(New(nil), all))
	s := inc.Stalls
	if s == nil {
		t.Fatal("no stalls in the incident")
	}
	if len(s.Task) != 1 || s.Task[0].Kind != event.StallDirectCompaction || s.Task[0].Result != "complete" {
		t.Errorf("task stalls %+v", s.Task)
	}
	want := []CgroupStall{{Kind: event.StallDirectCompaction, Count: 3, Total: 3 * time.Millisecond},
		{Kind: event.StallMemcgReclaim, Count: 7, Total: 7 * time.Millisecond, Reclaimed: 40}}
	if !slices.Equal(s.Cgroup, want) {
		t.Errorf("cgroup stalls %+v, want %+v", s.Cgroup, want)
	}
	if s.PSISomeUs != 7000 || s.PSIFullUs != 2000 {
		t.Errorf("psi %d/%d", s.PSISomeUs, s.PSIFullUs)
	}
	text := strings.Join(strings.Fields(render(t, inc)), " ") // unwrapped
	for _, w := range []string{"stalls in the 10s before the failure:", "task: direct_compaction order 6, 800µs",
		"result complete", "cgroup: direct_compaction 3 stalls 3ms; memcg_reclaim 7 stalls 7ms (40 pages reclaimed)",
		"memory pressure some 7ms full 2ms"} {
		if !strings.Contains(text, w) {
			t.Errorf("text lacks %q:\n%s", w, text)
		}
	}
}
