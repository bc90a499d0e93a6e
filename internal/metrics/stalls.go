package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/event"
)

var (
	descDirectCompaction = newDesc("direct_compaction_seconds",
		"Time the cgroup's tasks stalled in direct compaction (try_to_compact_pages), per stall; the members of the per-cgroup families have their own series, the rest are in cgroup=\"other\".",
		cgroupLabels...)
	descDirectReclaim = newDesc("direct_reclaim_seconds",
		"Time the cgroup's tasks stalled reclaiming memory themselves, per stall: reclaim=\"direct\" when the allocator reclaimed (vmscan direct reclaim), \"memcg\" when a memory cgroup's limit or memory.high did; members as for the other per-cgroup families.",
		append(append([]string(nil), cgroupLabels...), "reclaim")...)
	descVmstat = newDesc("vmstat_total",
		"The kernel's compaction and THP fault fallback counters since boot (/proc/vmstat), from the latest snapshot.",
		"counter")
	descFragScore = newDesc("fragmentation_score",
		"The kernel's proactive-compaction fragmentation score of the node (0-100: extfrag at the PMD order, weighted by zone size, as mm/compaction.c computes it), from the latest snapshot.",
		"node")
)

// stallBounds are the histograms' bucket bounds in log2 ns: 2^10 (1 us) to
// 2^34 (17 s), every second kernel bucket, to keep the series per cgroup
// at 14.
var stallBounds = func() (b []int) {
	for k := 10; k <= 34; k += 2 {
		b = append(b, k)
	}
	return b
}()

// stallFamily is one histogram series family: a desc and the stall kind it
// reads, plus the extra label value (the reclaim kind).
type stallFamily struct {
	desc  *prometheus.Desc
	kind  string
	extra string
}

var stallFamilies = []stallFamily{
	{descDirectCompaction, event.StallDirectCompaction, ""},
	{descDirectReclaim, event.StallDirectReclaim, "direct"},
	{descDirectReclaim, event.StallMemcgReclaim, "memcg"},
}

type histValue struct {
	count, sumNs uint64
	buckets      [event.StallBuckets]uint64
}

func (h *histValue) grow(cur, last *histValue) {
	if cur.count < last.count {
		return // a cgroup id made again: its growth is its new count
	}
	h.count += cur.count - last.count
	h.sumNs += cur.sumNs - last.sumNs
	for i := range h.buckets {
		if cur.buckets[i] >= last.buckets[i] {
			h.buckets[i] += cur.buckets[i] - last.buckets[i]
		}
	}
}

// stallHists exports the stall histograms of the cgroupSet's members and,
// in cgroup="other", the growth of everyone else's, by the rule the
// counter families follow (cgroups.go): no series goes down.
type stallHists struct {
	last  map[uint64]*[3]histValue // by cgroup, per stallFamilies
	other [3]histValue
	rows  []stallRow
}

type stallRow struct {
	labels cgroupLabelValues
	v      [3]histValue
}

func (h *stallHists) update(a *aggregate.Aggregator, set *cgroupSet, stats []aggregate.CgroupStat) {
	if h.last == nil {
		h.last = map[uint64]*[3]histValue{}
	}
	h.rows = h.rows[:0]
	seen := make(map[uint64]bool, len(stats))
	for i := range stats {
		st := &stats[i]
		seen[st.ID] = true
		var cur [3]histValue
		any := false
		for f, fam := range stallFamilies {
			s, ok := a.StallHistogram(st.ID, fam.kind)
			if !ok {
				continue
			}
			any = true
			cur[f] = histValue{count: s.Count, sumNs: s.TotalNs, buckets: s.Buckets}
		}
		last := h.last[st.ID]
		if last == nil {
			if !any {
				continue
			}
			last = &[3]histValue{}
			h.last[st.ID] = last
		}
		if cs := set.known[st.ID]; cs != nil && cs.exported {
			h.rows = append(h.rows, stallRow{cs.labels, cur})
		} else {
			for f := range cur {
				h.other[f].grow(&cur[f], &last[f])
			}
		}
		*last = cur
	}
	for id := range h.last {
		if !seen[id] {
			delete(h.last, id)
		}
	}
}

func (h *stallHists) emit(m *samples) {
	for _, r := range h.rows {
		for f, fam := range stallFamilies {
			if r.v[f].count == 0 {
				continue
			}
			m.histogram(fam, &r.v[f], r.labels[:]...)
		}
	}
	for f, fam := range stallFamilies {
		o := otherLabels // a copy: histogram rewrites its labels in place
		m.histogram(fam, &h.other[f], o[:]...)
	}
}

func (m *samples) histogram(fam stallFamily, v *histValue, labels ...string) {
	if fam.extra != "" {
		labels = append(labels, fam.extra)
	}
	for i, l := range labels {
		labels[i] = validLabel(l)
	}
	buckets := make(map[float64]uint64, len(stallBounds))
	var cum uint64
	k := 0
	for _, b := range stallBounds {
		for ; k < b && k < len(v.buckets); k++ { // kernel bucket k holds [2^k, 2^(k+1)) ns: below 2^b when k < b
			cum += v.buckets[k]
		}
		buckets[float64(uint64(1)<<b)/1e9] = cum
	}
	s, err := prometheus.NewConstHistogram(fam.desc, v.count, float64(v.sumNs)/1e9, buckets, labels...)
	if err != nil {
		s = prometheus.NewInvalidMetric(fam.desc, err)
	}
	*m = append(*m, s)
}

// kernelCompaction exports the latest snapshot's vmstat counters and
// fragmentation scores.
func kernelCompaction(m *samples, ms *event.MemSnapshot) {
	if ms == nil || ms.Snapshot == nil {
		return
	}
	s := ms.Snapshot
	if c := s.Compaction; c != nil {
		m.counter(descVmstat, c.CompactStall, "compact_stall")
		m.counter(descVmstat, c.CompactFail, "compact_fail")
		m.counter(descVmstat, c.CompactSuccess, "compact_success")
		m.counter(descVmstat, c.THPFaultFallback, "thp_fault_fallback")
		m.counter(descVmstat, c.THPFaultFallbackCharge, "thp_fault_fallback_charge")
	}
	for _, n := range s.FragmentationScores() {
		m.gauge(descFragScore, float64(n.Score), orderLabel(n.Node))
	}
}
