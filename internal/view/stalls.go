package view

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// stallTime renders a stalled time compactly: "0", "850us", "12.3ms", "4.1s".
func stallTime(ns uint64) string {
	if ns == 0 {
		return "0"
	}
	d := time.Duration(ns)
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%dus", d/time.Microsecond)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// writeMemStalls is the watch panel of who suffers: the interval's and the
// session's direct compaction and reclaim stalls by kind and order, the
// cgroups that stalled longest with their memory pressure, and the
// kernel's own compaction counters and fragmentation score. Nothing when
// no stall hook ran and no snapshot had the counters.
func writeMemStalls(b *bytes.Buffer, agg *aggregate.Aggregator, withInterval bool) {
	sess := agg.SessionMemStalls()
	var iv aggregate.MemStalls
	if withInterval {
		iv = agg.IntervalMemStalls()
	}
	ms := agg.Snapshot()
	haveVM := ms != nil && ms.Snapshot != nil && ms.Snapshot.Compaction != nil
	if sess.Zero() && !haveVM {
		return
	}
	b.WriteString("Stalls: direct compaction and reclaim (count, time, p50/p99 bucket bounds)")
	if withInterval {
		b.WriteString(", interval | session")
	}
	b.WriteString("\n")
	if sess.Overflow > 0 {
		fmt.Fprintf(b, "!! %d stalls not counted (kernel stall map full)\n", sess.Overflow)
	}
	find := func(l []aggregate.StallStat, kind string, order int) *aggregate.StallStat {
		for i := range l {
			if l[i].Kind == kind && l[i].Order == order {
				return &l[i]
			}
		}
		return nil
	}
	for i := range sess.ByOrder {
		s := &sess.ByOrder[i]
		prefix := fmt.Sprintf("  %-17s order %2d  ", s.Kind, s.Order)
		line := ""
		if withInterval {
			if x := find(iv.ByOrder, s.Kind, s.Order); x != nil {
				line += memStallLine(x) + " | "
			} else {
				line += "- | "
			}
		}
		line += memStallLine(s)
		if len(s.Results) > 0 {
			var r []string
			for _, n := range s.Results {
				r = append(r, fmt.Sprintf("%s %d", n.Name, n.Count))
			}
			line += "; " + strings.Join(r, ", ")
		}
		if s.Retries > 0 || s.GiveUps > 0 {
			line += fmt.Sprintf("; retried %d, gave up %d", s.Retries, s.GiveUps)
		}
		wrap(b, prefix, line)
	}
	psi := map[uint64]aggregate.PSI{}
	for _, p := range sess.PSI {
		psi[p.CgroupID] = p
	}
	psiShown := map[uint64]bool{} // once per cgroup, on its first row
	for i, s := range sess.ByCgroup {
		if i == topN {
			break
		}
		st := agg.CgroupStat(s.CgroupID)
		line := memStallLine(&s)
		if p, ok := psi[s.CgroupID]; ok && !psiShown[s.CgroupID] {
			psiShown[s.CgroupID] = true
			line += fmt.Sprintf("; PSI some %s full %s", stallTime(p.SomeUs*1000), stallTime(p.FullUs*1000))
		}
		wrap(b, fmt.Sprintf("  %-36s %-17s ", shortenPath(st.Label(), 36), s.Kind), line)
	}
	var wakes uint64
	for _, n := range sess.KcompactdWakes {
		wakes += n
	}
	if wakes > 0 {
		fmt.Fprintf(b, "  kcompactd wakes %d\n", wakes)
	}
	for _, z := range sess.Zones {
		who := "by kcompactd or proactive"
		if z.Direct {
			who = "direct"
		}
		fmt.Fprintf(b, "  zone compaction node %d %-7s %-25s %d runs, %s\n", z.Node, z.Zone, who, z.Count, stallTime(z.TotalNs))
	}
	if p, ok := psi[0]; ok {
		fmt.Fprintf(b, "  system memory PSI some %s full %s\n", stallTime(p.SomeUs*1000), stallTime(p.FullUs*1000))
	}
	if haveVM {
		writeKernelCompaction(b, ms.Snapshot, sess)
	}
}

func memStallLine(s *aggregate.StallStat) string {
	l := fmt.Sprintf("%d, %s, %s/%s", s.Count, stallTime(s.TotalNs), stallTime(uint64(s.Quantile(0.5))), stallTime(uint64(s.Quantile(0.99))))
	if s.Reclaimed > 0 {
		l += fmt.Sprintf(", %d pages reclaimed", s.Reclaimed)
	}
	return l
}

// writeKernelCompaction is /proc/vmstat's view of compaction over the
// session and the kernel's proactive-compaction score beside fragscope's
// extfrag indices.
func writeKernelCompaction(b *bytes.Buffer, s *snapshot.Snapshot, sess aggregate.MemStalls) {
	if c := sess.Compaction; c != nil {
		wrap(b, "  kernel (session): ", fmt.Sprintf("compact_stall %d, compact_fail %d, compact_success %d, thp_fault_fallback %d (charge %d)",
			c.CompactStall, c.CompactFail, c.CompactSuccess, c.THPFaultFallback, c.THPFaultFallbackCharge))
	}
	var scores []string
	for _, n := range s.FragmentationScores() {
		scores = append(scores, fmt.Sprintf("node %d %d", n.Node, n.Score))
	}
	if len(scores) == 0 {
		return
	}
	line := fmt.Sprintf("(extfrag at order %d, as kcompactd weighs it) %s", snapshot.PMDOrder(s.PageSize), strings.Join(scores, ", "))
	if p := s.CompactionProactiveness; p != nil {
		if *p == 0 {
			line += "; proactive compaction off"
		} else {
			lo, hi := snapshot.ProactiveMarks(*p)
			line += fmt.Sprintf("; proactive compaction above %d, down to %d (proactiveness %d)", hi, lo, *p)
		}
	}
	wrap(b, "  fragmentation score ", line)
}
