package view

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/incident"
)

// stallCall is what the task is stuck in, as a reader names it.
func stallCall(e *event.Stall) string {
	if e.Call == event.CallMemcgOOMWait {
		return "the memcg OOM wait"
	}
	ns := aggregate.FormatNamespaces(aggregate.Namespaces(e.Call, e.Flags))
	return fmt.Sprintf("%s(%s)", e.Call, ns)
}

// stallLine is the one line a stall gets as it is reported: who, in what,
// for how long, where it sleeps, and its cgroup and container.
func stallLine(e *event.Stall, agg *aggregate.Aggregator) string {
	var b strings.Builder
	if e.Running() {
		fmt.Fprintf(&b, "%s in %s for %s so far (since %s)", task(e.Task), stallCall(e), round(e.Duration), clock(e.Enter))
		if e.Wchan != "" && e.Wchan != "0" {
			fmt.Fprintf(&b, ", sleeping in %s", e.Wchan)
		}
		if e.Call == event.CallMemcgOOMWait && e.Wchan == "" {
			b.WriteString(" (judged by its cgroup's under_oom, as /proc shows no host tasks here: the task named is the cgroup's latest to reclaim, maybe a sibling thread of the sleeper)")
		}
		if m := e.Memcg; m != nil {
			fmt.Fprintf(&b, ", for room in memory cgroup %s (usage %d KiB of its %d KiB limit, OOM killer disabled)",
				m.Path, m.UsageBytes>>10, m.LimitBytes>>10)
		}
	} else {
		fmt.Fprintf(&b, "%s %s %s after %s", task(e.Task), stallCall(e), stallEnd(e), round(e.Duration))
	}
	label := cgroup(agg, e.Task.CgroupID)
	if _, ok := agg.Session().Cgroup(e.Task.CgroupID); ok {
		label = "cgroup " + label
	}
	fmt.Fprintf(&b, "; tid %d, %s", e.Task.TID, label)
	if c := incident.ContainerOf(agg.Session(), e.Task.CgroupID); c != nil {
		b.WriteString("; " + incident.ContainerLine(c))
	}
	return b.String()
}

func stallEnd(e *event.Stall) string {
	switch e.End {
	case event.StallReturned:
		if e.Errno != 0 {
			return "returned " + aggregate.ErrnoName(aggregate.AbsErrno(e.Errno))
		}
		return "returned"
	case event.StallResumed:
		return "ended (the task left the wait)"
	case event.StallExited:
		if e.Call == event.CallMemcgOOMWait {
			return "ended: the task is gone (it left the wait and exited within a scan, or was killed in it)"
		}
		return "ended: the task exited inside it"
	case event.StallLost:
		return "ended unseen (its exit record was lost)"
	}
	return "ended (" + e.End + ")"
}

// round keeps a stall's duration readable: "3.2s", not "3.214159265s".
func round(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// writeStallNotice is a stall's line in a log.
func writeStallNotice(b *bytes.Buffer, e *event.Stall, agg *aggregate.Aggregator) {
	tag := " STALL        "
	if !e.Running() {
		tag = " STALL END    "
	}
	wrap(b, clock(e.Time)+tag, stallLine(e, agg))
}

// writeStalls is the screen's and the summary's section: the session's
// count by call, then the stalls still running, with how long they have
// lasted by now (on a tty the screen is redrawn, so this is where a hang
// stays visible).
func writeStalls(b *bytes.Buffer, agg *aggregate.Aggregator, now time.Time) {
	counts, running := agg.Stalls()
	if len(counts) == 0 {
		return
	}
	b.WriteString("\nSTALLS (past the stall threshold)\n  session:")
	for _, c := range counts {
		fmt.Fprintf(b, " %s %d", c.Call, c.Count)
	}
	b.WriteByte('\n')
	for i := range running {
		r := &running[i]
		if d := now.Sub(r.Enter); d > r.Duration {
			r.Duration = d
		}
		wrap(b, "  RUNNING ", stallLine(r, agg))
	}
}

type jsonStall struct {
	jsonHeader
	Task           jsonTask            `json:"task"`
	Container      *incident.Container `json:"container,omitempty"`
	Call           string              `json:"call"`
	Flags          uint64              `json:"flags"`
	NamespaceFlags string              `json:"namespace_flags,omitempty"`
	Enter          string              `json:"enter"`
	DurationNS     int64               `json:"duration_ns"`
	Running        bool                `json:"running"`
	End            string              `json:"end,omitempty"`
	Errno          int32               `json:"errno"`
	ErrnoName      string              `json:"errno_name,omitempty"`
	Wchan          string              `json:"wchan,omitempty"`
	Memcg          *jsonStallMemcg     `json:"memcg,omitempty"`
}

func jsonStallOf(e *event.Stall, agg *aggregate.Aggregator) jsonStall {
	j := jsonStall{
		jsonHeader: header(e), Task: taskOf(e.Task, agg),
		Container: incident.ContainerOf(agg.Session(), e.Task.CgroupID),
		Call:      e.Call, Flags: e.Flags, Enter: formatTime(e.Enter), DurationNS: int64(e.Duration),
		Running: e.Running(), End: e.End, Wchan: e.Wchan,
	}
	if m := e.Memcg; m != nil {
		j.Memcg = &jsonStallMemcg{Path: m.Path, LimitBytes: m.LimitBytes, UsageBytes: m.UsageBytes}
	}
	if e.Call != event.CallMemcgOOMWait {
		j.NamespaceFlags = aggregate.FormatNamespaces(aggregate.Namespaces(e.Call, e.Flags))
	}
	if e.End == event.StallReturned && e.Errno != 0 {
		j.Errno = aggregate.AbsErrno(e.Errno)
		j.ErrnoName = aggregate.ErrnoName(j.Errno)
	}
	return j
}

// jsonStallMemcg is the stall's "memcg" object (docs/json.md).
type jsonStallMemcg struct {
	Path       string `json:"path"`
	LimitBytes uint64 `json:"limit_bytes"`
	UsageBytes uint64 `json:"usage_bytes"`
}
