package incident

import (
	"bufio"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// StallWindow is how far before a failure the task's and its cgroup's
// compaction and reclaim stalls are gathered.
const StallWindow = 10 * time.Second

// Stalls is what the failing task and its cgroup went through in direct
// compaction and reclaim in the StallWindow before the failure: how long
// the allocator tried before it gave up.
type Stalls struct {
	Window time.Duration `json:"window_ns"`
	// Task is the failing task's own stalls, oldest first (the kernel keeps
	// its last 8).
	Task []event.RecentStall `json:"task,omitempty"`
	// Cgroup sums the cgroup's stalls per kind over the intervals that
	// closed in the window, and the failure's own interval when it closed
	// before the incident did.
	Cgroup []CgroupStall `json:"cgroup,omitempty"`
	// PSISomeUs and PSIFullUs are the cgroup's memory.pressure growth over
	// the same intervals (cgroup v2 only; 0 where unknown).
	PSISomeUs uint64 `json:"psi_some_us,omitempty"`
	PSIFullUs uint64 `json:"psi_full_us,omitempty"`
}

// CgroupStall is one kind of stall of the failing task's cgroup.
type CgroupStall struct {
	Kind      string        `json:"kind"`
	Count     uint64        `json:"count"`
	Total     time.Duration `json:"total_ns"`
	Reclaimed uint64        `json:"reclaimed_pages,omitempty"`
}

// stallRec is one interval's stalls, kept for the window.
type stallRec struct {
	t      time.Time
	stalls []event.StallHist
	psi    []event.PSIDelta
}

func (c *Correlator) addStalls(e *event.MemStalls) {
	// Drop what fell out of the window: intervals arrive in time order.
	i := 0
	for i < len(c.stallRecs) && e.Time.Sub(c.stallRecs[i].t) > StallWindow {
		i++
	}
	c.stallRecs = c.stallRecs[i:]
	c.stallRecs = append(c.stallRecs, stallRec{t: e.Time, stalls: slices.Clone(e.Stalls), psi: slices.Clone(e.PSI)})
}

// maxTaskStalls bounds the tasks whose latest stalls are kept for an
// incident that may close later (a kernel-log report of the failure).
const maxTaskStalls = 256

// addTaskStalls keeps the latest stalls read for a thread's failure: the
// source emits them before the failure's event, whose incident may close
// at once (a failed namespace syscall) or later (its exit, a kernel log
// report).
func (c *Correlator) addTaskStalls(e *event.TaskMemStalls) {
	if c.taskStalls == nil {
		c.taskStalls = map[uint32]event.TaskMemStalls{}
	}
	if len(c.taskStalls) >= maxTaskStalls {
		for tid, t := range c.taskStalls {
			if e.Time.Sub(t.Time) > StallWindow {
				delete(c.taskStalls, tid)
			}
		}
		if len(c.taskStalls) >= maxTaskStalls {
			return // a storm of failing tasks: the pending ones keep theirs
		}
	}
	c.taskStalls[e.Task.TID] = event.TaskMemStalls{Time: e.Time, Task: e.Task, Stalls: slices.Clone(e.Stalls),
		Cgroup: slices.Clone(e.Cgroup)}
}

// stallsFor gathers the stalls of an incident of task t closed at `at`:
// the task's from its failure's read, its cgroup's from the intervals in
// the window and the failure's own interval so far.
func (c *Correlator) stallsFor(t event.Task, at time.Time) *Stalls {
	cgroup := t.CgroupID
	s := &Stalls{Window: StallWindow}
	ts, ok := c.taskStalls[t.TID]
	if ok && (at.Sub(ts.Time) > StallWindow || ts.Time.Sub(at) > time.Second) {
		ok = false // an older failure's, or a later one's
	}
	if ok {
		for _, r := range ts.Stalls {
			if !r.End.After(at.Add(time.Millisecond)) && at.Sub(r.End) <= StallWindow {
				s.Task = append(s.Task, r)
			}
		}
	}
	byKind := map[string]*CgroupStall{}
	var kinds []string
	add := func(h *event.StallHist) {
		if h.CgroupID != cgroup || h.Count == 0 {
			return
		}
		k := byKind[h.Kind]
		if k == nil {
			k = &CgroupStall{Kind: h.Kind}
			byKind[h.Kind] = k
			kinds = append(kinds, h.Kind)
		}
		k.Count += h.Count
		k.Total += time.Duration(h.TotalNs)
		k.Reclaimed += h.Reclaimed
	}
	closed := false // the failure's own interval has its mem_stalls already
	for _, rec := range c.stallRecs {
		if at.Sub(rec.t) > StallWindow || rec.t.Sub(at) > 2*time.Second {
			continue
		}
		closed = closed || (ok && !rec.t.Before(ts.Time))
		for i := range rec.stalls {
			add(&rec.stalls[i])
		}
		for _, x := range rec.psi {
			if x.CgroupID == cgroup && cgroup != 0 {
				s.PSISomeUs += x.SomeUs
				s.PSIFullUs += x.FullUs
			}
		}
	}
	// The failure's interval so far, as read at the failure, unless its
	// mem_stalls came before the incident closed (it holds the same).
	if ok && !closed {
		for i := range ts.Cgroup {
			add(&ts.Cgroup[i])
		}
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		s.Cgroup = append(s.Cgroup, *byKind[k])
	}
	if len(s.Task) == 0 && len(s.Cgroup) == 0 {
		return nil
	}
	return s
}

func writeStalls(bw *bufio.Writer, inc *Incident) {
	s := inc.Stalls
	if s == nil {
		return
	}
	fmt.Fprintf(bw, "stalls in the %s before the failure:\n", seconds(s.Window))
	for _, r := range s.Task {
		line := fmt.Sprintf("  task: %s order %d, %s, ended %s before", r.Kind, r.Order, r.Duration,
			inc.Time.Sub(r.End).Round(time.Microsecond))
		if r.Result != "" {
			line += ", result " + r.Result
		}
		if r.Reclaimed > 0 {
			line += fmt.Sprintf(", %d pages reclaimed", r.Reclaimed)
		}
		wrap(bw, line, "", "    ")
	}
	var parts []string
	for _, c := range s.Cgroup {
		x := fmt.Sprintf("%s %d stalls %s", c.Kind, c.Count, c.Total.Round(time.Microsecond))
		if c.Reclaimed > 0 {
			x += fmt.Sprintf(" (%d pages reclaimed)", c.Reclaimed)
		}
		parts = append(parts, x)
	}
	if len(parts) > 0 {
		line := "  cgroup: " + strings.Join(parts, "; ")
		if s.PSISomeUs > 0 || s.PSIFullUs > 0 {
			line += fmt.Sprintf("; memory pressure some %s full %s",
				(time.Duration(s.PSISomeUs) * time.Microsecond).Round(time.Microsecond),
				(time.Duration(s.PSIFullUs) * time.Microsecond).Round(time.Microsecond))
		}
		wrap(bw, line, "", "    ")
	}
}
