package metrics

import (
	"github.com/fragscope/fragscope/internal/aggregate"
)

// The per-cgroup families' counts, in the order of cgroupDescs: unmovable
// high-order allocations, fragmenting fallbacks, failures, compaction and
// reclaim stalls (whose histograms, stalls.go, follow the same members).
const nCgroupCounts = 4

type cgroupValues [nCgroupCounts]uint64

func valuesOf(c *aggregate.CgroupCounts) cgroupValues {
	return cgroupValues{c.UnmovableHighOrder, c.Fragmenting, c.Failures, c.Stalls}
}

// cgroupSet decides which cgroups have series of their own and keeps
// cgroup="other" a counter that never goes down. The rule:
//
//   - At each scrape the first TopCgroups cgroups of each family's ranking
//     (by the family's session count, non-zero only, ties to the smaller
//     cgroup id) join the exported set while it
//     has fewer than MaxCgroups members; a removed cgroup never joins, nor
//     one that was a member before.
//   - A member stays until its cgroup is removed: it is exported once more
//     at the first scrape that sees it removed (so its last counts are
//     scraped), then leaves for good. A newcomer with the labels of a
//     member (a cgroup made again at a removed one's path, as a restarted
//     systemd service is) waits until that member leaves, then takes the
//     series over: a counter reset, as when a process restarts.
//   - A member's series is the aggregator's count as it is. "other" is the
//     growth of the cgroups that were not members at each scrape: joining
//     takes nothing out of it (the newcomer's past stays in "other", its
//     series starts at its full count, which rate() does not read as an
//     increase), and leaving adds only what the cgroup grows after.
//
// So no series goes down, and at every scrape "other" grows by exactly the
// growth of the cgroups it stands for. The values add up to the
// aggregator's total until the first cgroup joins late or leaves.
type cgroupSet struct {
	top, max  int
	gen       uint64 // scrapes so far: marks the cgroups the latest one saw
	known     map[uint64]*cgroupState
	nExported int
	other     cgroupValues
	rows      []cgroupRow // the members' series of the latest scrape
}

type cgroupState struct {
	last        cgroupValues // counts at the latest scrape
	gen         uint64
	exported    bool
	removedSeen bool // a member that the latest scrape already saw removed
	retired     bool // left the set: in "other" for good
	// labels are a member's label values, fixed when it joined: a pod
	// name that arrives later (often only with the removal) must not end
	// one series and start another, which rate() would read as a drop.
	labels cgroupLabelValues
}

type cgroupRow struct {
	labels cgroupLabelValues
	v      cgroupValues
}

type cgroupLabelValues [5]string // cgroupLabels

// otherLabels are the "other" series' labels in every per-cgroup family.
var otherLabels = cgroupLabelValues{"other"}

func labelsOf(s *aggregate.CgroupStat) cgroupLabelValues {
	// Made valid here, before the set compares labels, so that two paths
	// that differ only in invalid bytes cannot become one series twice.
	return cgroupLabelValues{validLabel(s.Label()), validLabel(s.Container.ContainerID),
		validLabel(s.PodName), validLabel(s.PodNamespace), validLabel(s.Container.Runtime)}
}

func newCgroupSet(top, max int) *cgroupSet {
	return &cgroupSet{top: top, max: max, known: map[uint64]*cgroupState{}}
}

func (s *cgroupSet) state(id uint64) *cgroupState {
	st := s.known[id]
	if st == nil {
		st = &cgroupState{}
		s.known[id] = st
	}
	return st
}

// update reads one scrape: stats holds every cgroup with session counts
// (Summary().Cgroups).
func (s *cgroupSet) update(stats []aggregate.CgroupStat) {
	s.gen++
	s.rows = s.rows[:0]

	// Members decide first whether they stay, so that the slot and the
	// labels a leaving cgroup gives up can be taken at this scrape. Live
	// members go first: a removed one never keeps the labels of a live one
	// at its path.
	held := make(map[cgroupLabelValues]bool, s.max)
	for _, removed := range []bool{false, true} {
		for i := range stats {
			st := &stats[i]
			if st.Removed != removed {
				continue
			}
			cs := s.state(st.ID)
			cs.gen = s.gen
			if !cs.exported {
				continue
			}
			l := cs.labels
			if held[l] || (removed && cs.removedSeen) {
				cs.exported, cs.retired = false, true
				s.nExported--
				continue
			}
			held[l] = true
			cs.removedSeen = removed
		}
	}
	// Cgroups the aggregator no longer lists are forgotten here too.
	for id, cs := range s.known {
		if cs.gen != s.gen {
			if cs.exported {
				s.nExported--
			}
			delete(s.known, id)
		}
	}
	s.admit(stats, held)

	for i := range stats {
		st := &stats[i]
		cs := s.known[st.ID]
		v := valuesOf(&st.CgroupCounts)
		if cs.exported {
			s.rows = append(s.rows, cgroupRow{cs.labels, v})
		} else {
			for k := range v {
				if v[k] > cs.last[k] {
					s.other[k] += v[k] - cs.last[k]
				}
			}
		}
		cs.last = v
	}
}

// admit adds the leaders of each ranking to the set, taking the rankings'
// first rows in turn, then their second rows, and so on, so that when the
// cap is near each ranking gets its leaders in. A newcomer whose labels a
// member holds waits until that member leaves.
func (s *cgroupSet) admit(stats []aggregate.CgroupStat, held map[cgroupLabelValues]bool) {
	if s.nExported >= s.max {
		return
	}
	var tops [nCgroupCounts][]int
	for k := range tops {
		tops[k] = leaders(stats, k, s.top)
	}
	for i := 0; i < s.top && s.nExported < s.max; i++ {
		for k := range tops {
			if i >= len(tops[k]) || s.nExported >= s.max {
				continue
			}
			st := &stats[tops[k][i]]
			cs := s.known[st.ID]
			l := labelsOf(st)
			if cs.exported || cs.retired || held[l] {
				continue
			}
			cs.exported, cs.labels = true, l
			s.nExported++
			held[l] = true
		}
	}
}

// leaders returns the indices in stats of the n live cgroups with the
// largest non-zero count k, largest first, ties to the smaller id. It keeps
// a sorted list of n, so a scrape costs one pass over the cgroups instead
// of the full sort aggregate.Top does for each key (three of them were 60%
// of a scrape of 4096 cgroups, with the pipeline's lock held).
func leaders(stats []aggregate.CgroupStat, k, n int) []int {
	out := make([]int, 0, n+1)
	ahead := func(i, j int) bool { // stats[i] ranks before stats[j]
		vi, vj := valuesOf(&stats[i].CgroupCounts)[k], valuesOf(&stats[j].CgroupCounts)[k]
		return vi > vj || vi == vj && stats[i].ID < stats[j].ID
	}
	for i := range stats {
		if stats[i].Removed || valuesOf(&stats[i].CgroupCounts)[k] == 0 {
			continue
		}
		if len(out) == n && !ahead(i, out[n-1]) {
			continue
		}
		at := len(out)
		for at > 0 && ahead(i, out[at-1]) {
			at--
		}
		out = append(out, 0)
		copy(out[at+1:], out[at:])
		out[at] = i
		if len(out) > n {
			out = out[:n]
		}
	}
	return out
}

// emit sends the latest scrape's member series and the "other" series,
// which is there from the first scrape on, 0 or not.
func (s *cgroupSet) emit(m *samples) {
	for _, r := range s.rows {
		for k, d := range cgroupDescs {
			m.counter(d, r.v[k], r.labels[:]...)
		}
	}
	for k, d := range cgroupDescs {
		o := otherLabels
		m.counter(d, s.other[k], o[:]...)
	}
}
