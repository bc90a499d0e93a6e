package kernlog

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/kmsg"
)

// Hook is the synthetic hook of events read from the kernel log.
const Hook = "kmsg"

// Epoch anchors logs that carry no date: a printk uptime of 12.5 s is
// Epoch + 12.5 s. It is a fixed value, not "now", so a log explains the
// same way every time, and it is far from any real incident, so nobody
// mistakes it for one.
var Epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Options tune a Converter.
type Options struct {
	// Source names the log in the events ("/dev/kmsg", a file, "-").
	Source string
	// Year is given to syslog and journalctl dates, which print none; 0
	// puts them in Epoch's year.
	Year int
	// Boot is the wall time of boot for live logs: uptime is added to it.
	// Zero: uptime is added to Epoch.
	Boot time.Time
	// NoSlab leaves out the SlabCreate events: a BPF slab_create hook is
	// attached and reports the same failures itself.
	NoSlab bool
	// Window groups reports of one task into one failure when they are at
	// most this far apart (default 5 s), and Lines when at most this many
	// input lines apart (default 40).
	Window time.Duration
	Lines  int
}

// Basis says how event times were derived, for the reader of an explain.
type Basis string

const (
	BasisWall   Basis = "wall"   // the log's own dates
	BasisUptime Basis = "uptime" // printk uptime after Epoch (or boot, live)
	BasisNone   Basis = "none"   // the log has no times at all
)

// Converter turns reports into events. It is not safe for concurrent use.
type Converter struct {
	opt   Options
	emit  func(event.Event)
	group []kmsg.Report
	last  time.Time // the newest event time emitted: times never go back
	basis map[Basis]bool
	// Reports counts the reports read, Unreadable those with a part that
	// could not be read.
	Reports, Unreadable int
}

// NewConverter returns a Converter emitting to emit.
func NewConverter(o Options, emit func(event.Event)) *Converter {
	if o.Window <= 0 {
		o.Window = 5 * time.Second
	}
	if o.Lines <= 0 {
		o.Lines = 40
	}
	return &Converter{opt: o, emit: emit, basis: map[Basis]bool{}}
}

// Add takes the next report. Reports of one failure are held until the
// next report shows the failure is complete, or Flush.
func (c *Converter) Add(r kmsg.Report) {
	c.Reports++
	if len(r.Unreadable) > 0 {
		c.Unreadable++
	}
	if len(c.group) > 0 && !c.joins(r) {
		c.Flush()
	}
	c.group = append(c.group, r)
}

// Pending reports whether a group is held back.
func (c *Converter) Pending() bool { return len(c.group) > 0 }

// Flush emits the held group.
func (c *Converter) Flush() {
	if len(c.group) == 0 {
		return
	}
	g := c.group
	c.group = nil
	task := groupTask(g)
	for i := range g {
		c.report(&g[i], task, i < len(g)-1)
	}
}

// Bases lists how the times emitted so far were derived.
func (c *Converter) Bases() []Basis {
	var out []Basis
	for _, b := range []Basis{BasisWall, BasisUptime, BasisNone} {
		if c.basis[b] {
			out = append(out, b)
		}
	}
	return out
}

// joins reports whether r belongs to the failure of the held group: the
// same task close by, a report that names no task right after it (the
// caller's "Unable to create nf_conn slab cache", SLUB's lines, a Mem-Info
// the parser could not tie to its header), or anything after a lone
// "callbacks suppressed" line, which the ratelimit prints just before the
// report it lets through.
func (c *Converter) joins(r kmsg.Report) bool {
	last := c.group[len(c.group)-1]
	if r.Lines.First-last.Lines.Last > c.opt.Lines {
		return false
	}
	if a, b := c.when(last), c.when(r); !a.IsZero() && !b.IsZero() && b.Sub(a) > c.opt.Window {
		return false
	}
	if len(c.group) == 1 && last.Kind == kmsg.KindCallbacksSuppressed {
		return r.Kind != kmsg.KindCallbacksSuppressed
	}
	pid := groupTask(c.group).PID
	switch {
	case r.Task.PID >= 0 && pid != 0:
		return uint32(r.Task.PID) == pid && !hasKind(c.group, r.Kind)
	case r.Task.PID >= 0:
		return false
	}
	switch r.Kind {
	case kmsg.KindConntrackSlab, kmsg.KindSLUBAllocFailure, kmsg.KindSLABAllocFailure:
		return true
	case kmsg.KindMemInfo:
		for _, x := range c.group {
			if x.MemInfo != nil {
				return false
			}
		}
		return true
	}
	return false
}

func hasKind(g []kmsg.Report, k kmsg.Kind) bool {
	return slices.ContainsFunc(g, func(r kmsg.Report) bool { return r.Kind == k })
}

// groupTask is the first task a report of the group names.
func groupTask(g []kmsg.Report) event.Task {
	for _, r := range g {
		if r.Task.PID >= 0 && (r.Task.Comm != "" || r.Task.PID > 0) {
			// The kernel prints current->pid: the thread's id.
			return event.Task{PID: uint32(r.Task.PID), TID: uint32(r.Task.PID), Comm: r.Task.Comm}
		}
	}
	return event.Task{}
}

// when is the report's time by the rules of the package doc; zero when the
// log says nothing.
func (c *Converter) when(r kmsg.Report) time.Time {
	ts := r.Time
	if !ts.Wall.IsZero() {
		w := ts.Wall
		if w.Year() == 0 {
			y := c.opt.Year
			if y == 0 {
				y = Epoch.Year()
			}
			w = time.Date(y, w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), w.Location())
		}
		return w.UTC()
	}
	if ts.HaveUptime {
		base := c.opt.Boot
		if base.IsZero() {
			base = Epoch
		}
		return base.Add(ts.Uptime).UTC()
	}
	return time.Time{}
}

func (c *Converter) stamp(r *kmsg.Report) time.Time {
	t := c.when(*r)
	switch {
	case t.IsZero():
		c.basis[BasisNone] = true
		t = c.last
		if t.IsZero() {
			t = Epoch
		}
	case !r.Time.Wall.IsZero():
		c.basis[BasisWall] = true
	default:
		c.basis[BasisUptime] = true
	}
	if t.Before(c.last) {
		t = c.last // two CPUs, or a log pasted out of order: the stream stays ordered
	}
	c.last = t
	return t
}

// report emits the events of one report; more says the group goes on.
func (c *Converter) report(r *kmsg.Report, task event.Task, more bool) {
	t := c.stamp(r)
	frames := Frames(r.Trace)
	if allocFailure(r) {
		c.emit(&event.AllocFail{
			Time: t, Task: task, Order: uint8(r.Order), GFP: r.GFP, Migratetype: migratetype(r),
			Stack: frames, Hook: Hook,
		})
	}
	haveMem := r.MemInfo != nil && len(r.MemInfo.Zones) > 0
	if haveMem {
		s := r.MemInfo.Snapshot(t)
		for i := range s.Zones {
			if s.Zones[i].FreeBlocks == nil {
				// No free-list line: empty, as a recording decodes it, so
				// explain and a replay of its recording print the same.
				s.Zones[i].FreeBlocks = []uint64{}
			}
		}
		c.emit(&event.MemSnapshot{Reason: "failure", Snapshot: &s})
	}
	if r.Kind == kmsg.KindSlabCreateFailure && r.Slab != nil && !c.opt.NoSlab {
		c.emit(&event.SlabCreate{Time: t, Task: task, Name: r.Slab.Name, Failed: true})
	}
	kr := &event.KernelReport{
		Time: t, Task: task, ReportKind: string(r.Kind), Header: r.Header, Source: c.opt.Source,
		FirstLine: r.Lines.First, LastLine: r.Lines.Last, KernelRelease: r.Kernel.Release,
		Order: r.Order, GFP: r.GFP, HaveGFP: r.HaveGFP, GFPNames: r.GFPNames, Trace: frames,
		HaveMemInfo: haveMem, Suppressed: r.Suppressed, SuppressedBy: r.SuppressedBy,
		Unreadable: r.Unreadable, More: more,
	}
	if r.Slab != nil {
		kr.Slab = r.Slab.Name
	} else if r.SlabAlloc != nil && len(r.SlabAlloc.Caches) > 0 {
		kr.Slab = r.SlabAlloc.Caches[0].Name // the cache SLUB/SLAB could not grow
	}
	if o := r.OOM; o != nil {
		ko := &event.OOM{Constraint: o.Constraint, Memcg: o.OOMMemcg}
		if m := o.Memcg; m != nil {
			if ko.Memcg == "" {
				ko.Memcg = m.Path
			}
			for _, x := range m.Counters {
				ko.Counters = append(ko.Counters, event.MemcgCounter{Name: x.Name, UsageKB: x.UsageKB, LimitKB: x.LimitKB, Failcnt: x.Failcnt})
			}
		}
		if o.Killed != nil {
			ko.KilledPID, ko.KilledComm = o.Killed.PID, o.Killed.Comm
		}
		kr.OOM = ko
	}
	c.emit(kr)
}

// allocFailure reports whether r is a failed page allocation with its
// order and mode: warn_alloc's report, or the order-0 page allocation a
// vmalloc failure made (kernels before 4.9 print both; the parser merged them).
func allocFailure(r *kmsg.Report) bool {
	switch r.Kind {
	case kmsg.KindPageAllocFailure, kmsg.KindVmallocFailure:
		return r.Order >= 0 && r.Order < event.Orders && r.HaveGFP
	}
	return false
}

// migratetype is the free list the request wanted, when the printed flag
// names say it (gfp_migratetype: __GFP_MOVABLE, __GFP_RECLAIMABLE, else
// unmovable); -1 when no names were printed, since the bit values differ
// by era and the converter does not guess them.
func migratetype(r *kmsg.Report) int8 {
	if len(r.GFPNames) == 0 {
		return -1
	}
	idx := func(name string) int8 {
		mts := Migratetypes(r.Kernel.Release)
		return int8(slices.IndexFunc(mts, func(m string) bool { return strings.EqualFold(m, name) }))
	}
	for _, n := range r.GFPNames {
		if strings.Contains(n, "MOVABLE") {
			return idx("Movable")
		}
		if strings.Contains(n, "RECLAIMABLE") {
			return idx("Reclaimable")
		}
	}
	return idx("Unmovable")
}

// Frames formats a call trace the way live stacks are formatted
// (kallsyms.FormatFrame): "func+0xoff/0xsize [module]", innermost first.
// Unreliable ("? ") frames are kept, marked with a leading "? " as printed.
func Frames(tr []kmsg.Frame) []string {
	if len(tr) == 0 {
		return nil
	}
	out := make([]string, 0, len(tr))
	for _, f := range tr {
		s := f.Func
		if f.Size != 0 {
			s += fmt.Sprintf("+%#x/%#x", f.Offset, f.Size)
		} else if f.Offset != 0 {
			s += fmt.Sprintf("+%#x", f.Offset)
		}
		if f.Module != "" {
			s += " [" + f.Module + "]"
		}
		if f.Unreliable {
			s = "? " + s
		}
		out = append(out, s)
	}
	return out
}
