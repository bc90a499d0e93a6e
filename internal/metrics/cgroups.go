package metrics

import (
	"github.com/fragscope/fragscope/internal/aggregate"
)

// The per-cgroup families, in this order in cgroupValues, and what each
// ranks cgroups by.
const nCgroupCounts = 3

var rankKeys = [nCgroupCounts]aggregate.SortKey{
	aggregate.SortUnmovable, aggregate.SortFragmenting, aggregate.SortFailures,
}

type cgroupValues [nCgroupCounts]uint64

func valuesOf(c *aggregate.CgroupCounts) cgroupValues {
	return cgroupValues{c.UnmovableHighOrder, c.Fragmenting, c.Failures}
}

// cgroupSet decides which cgroups have series of their own and keeps
// cgroup="other" a counter that never goes down. The rule:
//
//   - At each scrape the first TopCgroups cgroups of each family's ranking
//     (aggregate.Top, non-zero counts only) join the exported set while it
//     has fewer than MaxCgroups members; a removed cgroup never joins.
//   - A member stays until its cgroup is removed: it is exported once more
//     at the first scrape that sees it removed (so its last counts are
//     scraped), then leaves for good. It also leaves if its labels are
//     those of a member already exported at this scrape (a cgroup made
//     again at a removed one's path): a registry rejects a repeated series.
//   - A member's series is the aggregator's count as it is. "other" is the
//     growth of every cgroup while it was not a member, summed over
//     scrapes: a cgroup joining takes nothing out of it (its past stays in
//     "other", its series starts at its full count, which rate() does not
//     read as an increase), and one leaving adds only what it grows after.
//
// So each series only grows, and the increases of all series of a family
// add up to the increase of the aggregator's total; the values add up to
// the total until the first cgroup joins late or leaves (the late joiner's
// past is then in both).
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
}

type cgroupRow struct {
	labels cgroupLabelValues
	v      cgroupValues
}

type cgroupLabelValues [4]string // cgroupLabels

func labelsOf(s *aggregate.CgroupStat) cgroupLabelValues {
	return cgroupLabelValues{s.Label(), s.Container.ContainerID, s.PodName, s.PodNamespace}
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

// update reads one scrape: a ranks the cgroups, stats holds every cgroup
// with session counts (Summary().Cgroups).
func (s *cgroupSet) update(a *aggregate.Aggregator, stats []aggregate.CgroupStat) {
	s.gen++
	s.rows = s.rows[:0]
	s.admit(a)

	used := make(map[cgroupLabelValues]bool, s.nExported)
	// Live cgroups first, so that a removed one never takes the labels of
	// the live one at its path.
	for _, removed := range []bool{false, true} {
		for i := range stats {
			st := &stats[i]
			if st.Removed != removed {
				continue
			}
			cs := s.state(st.ID)
			cs.gen = s.gen
			v := valuesOf(&st.CgroupCounts)
			if cs.exported {
				l := labelsOf(st)
				if !used[l] && !(removed && cs.removedSeen) {
					used[l] = true
					cs.removedSeen = removed
					cs.last = v
					s.rows = append(s.rows, cgroupRow{l, v})
					continue
				}
				cs.exported, cs.retired = false, true
				s.nExported--
			}
			for k := range v {
				if v[k] > cs.last[k] {
					s.other[k] += v[k] - cs.last[k]
				}
			}
			cs.last = v
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
}

// admit adds the leaders of each ranking to the set, taking the rankings'
// first rows in turn, then their second rows, and so on, so that when the
// cap is near each ranking gets its leaders in.
func (s *cgroupSet) admit(a *aggregate.Aggregator) {
	var tops [nCgroupCounts][]aggregate.CgroupRank
	for k, key := range rankKeys {
		tops[k] = a.Top(key, s.top)
	}
	for i := 0; i < s.top && s.nExported < s.max; i++ {
		for k, key := range rankKeys {
			if i >= len(tops[k]) {
				continue
			}
			r := &tops[k][i]
			if r.Removed || key.Of(&r.CgroupCounts) == 0 {
				continue
			}
			cs := s.state(r.ID)
			if !cs.exported && !cs.retired && s.nExported < s.max {
				cs.exported = true
				s.nExported++
			}
		}
	}
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
		m.counter(d, s.other[k], "other", "", "", "")
	}
}
