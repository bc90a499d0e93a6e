package aggregate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/fragscope/fragscope/internal/container"
	"github.com/fragscope/fragscope/internal/event"
)

// HighOrder is the least order counted as a high-order allocation: the
// kernel's per-cgroup HighOrder counter uses it, and so do the sums of
// unmovable and reclaimable allocations by order here.
const HighOrder = 3

// CgroupCounts is what the tasks of one cgroup did over a span: the
// extfrag fallbacks their allocations caused and the kernel's per-cgroup
// allocation counters.
type CgroupCounts struct {
	// Fragmenting is the extfrag fallbacks that took part of a pageblock
	// of another migratetype; Fallbacks is all of them.
	Fragmenting, Fallbacks uint64
	// UnmovableHighOrder and ReclaimableHighOrder are the unmovable and
	// reclaimable allocations of order >= HighOrder; Unmovable and
	// Reclaimable those of every order.
	UnmovableHighOrder, ReclaimableHighOrder uint64
	Unmovable, Reclaimable                   uint64
	HighOrder                                uint64 // allocations of order >= HighOrder, any migratetype
	Failures                                 uint64 // failed allocations, counted in the kernel
	// Stalls and StallNs are the direct compaction and reclaim stalls of
	// the cgroup's tasks (all kinds) and their summed time.
	Stalls, StallNs uint64
}

// Zero reports whether nothing was counted.
func (c *CgroupCounts) Zero() bool { return *c == CgroupCounts{} }

func (c *CgroupCounts) add(o *CgroupCounts) {
	c.Fragmenting += o.Fragmenting
	c.Fallbacks += o.Fallbacks
	c.UnmovableHighOrder += o.UnmovableHighOrder
	c.ReclaimableHighOrder += o.ReclaimableHighOrder
	c.Unmovable += o.Unmovable
	c.Reclaimable += o.Reclaimable
	c.HighOrder += o.HighOrder
	c.Failures += o.Failures
	c.Stalls += o.Stalls
	c.StallNs += o.StallNs
}

// CgroupStat is one cgroup and its counts over a span. Path is its last
// known path, "" when the id was never resolved; Removed says the cgroup
// has gone since, and it keeps that path. Container is what the path says
// about the container and pod (the zero Identity for other cgroups);
// PodName and PodNamespace are the pod's as the CRI gave them, "" when it
// was not reachable.
type CgroupStat struct {
	ID                    uint64
	Path                  string
	Removed               bool
	Container             container.Identity
	PodName, PodNamespace string
	// ContainerName and RuntimeNamespace are the runtime's (see
	// session.Cgroup), "" when no runtime answered while recording.
	ContainerName, RuntimeNamespace string
	CgroupCounts
}

// Label names the cgroup by its path, or by id when it was never resolved.
func (s CgroupStat) Label() string {
	if s.Path == "" {
		return fmt.Sprintf("cgroup id %d", s.ID)
	}
	return s.Path
}

// CgroupRank is one row of a ranking: the cgroup and its session counts,
// and its counts in the interval the latest Tick closed.
type CgroupRank struct {
	Rank int // 1 for the first row
	CgroupStat
	Interval CgroupCounts
}

// SortKey names what cgroups are ranked by.
type SortKey string

// The rankings. Each sorts by its own count, largest first, then by the
// others in this order, then by cgroup id: the order never depends on map
// iteration.
const (
	SortFragmenting SortKey = "fragmenting" // fragmenting extfrag fallbacks
	SortUnmovable   SortKey = "unmovable"   // unmovable high-order allocations
	SortFailures    SortKey = "failures"    // failed allocations suffered
	SortHighOrder   SortKey = "highorder"   // high-order allocations, any migratetype
	SortStall       SortKey = "stall"       // time stalled in direct compaction and reclaim
)

// SortKeys lists the rankings, the default first.
var SortKeys = []SortKey{SortFragmenting, SortUnmovable, SortFailures, SortHighOrder, SortStall}

// ParseSortKey accepts the names of SortKeys; "" is the default.
func ParseSortKey(s string) (SortKey, error) {
	if s == "" {
		return SortFragmenting, nil
	}
	for _, k := range SortKeys {
		if string(k) == s {
			return k, nil
		}
	}
	names := make([]string, len(SortKeys))
	for i, k := range SortKeys {
		names[i] = string(k)
	}
	return "", fmt.Errorf("sort key %q: use one of %s", s, strings.Join(names, ", "))
}

// Of returns the count k ranks by.
func (k SortKey) Of(c *CgroupCounts) uint64 {
	switch k {
	case SortUnmovable:
		return c.UnmovableHighOrder
	case SortFailures:
		return c.Failures
	case SortHighOrder:
		return c.HighOrder
	case SortStall:
		return c.StallNs
	}
	return c.Fragmenting
}

// compareCounts orders by k, largest first, then by the other keys and the
// remaining counts; 0 only when all are equal.
func compareCounts(k SortKey, x, y *CgroupCounts) int {
	if r := cmp.Compare(k.Of(y), k.Of(x)); r != 0 {
		return r
	}
	for _, o := range SortKeys {
		if o == k {
			continue
		}
		if r := cmp.Compare(o.Of(y), o.Of(x)); r != 0 {
			return r
		}
	}
	return cmp.Or(
		cmp.Compare(y.Fallbacks, x.Fallbacks),
		cmp.Compare(y.ReclaimableHighOrder, x.ReclaimableHighOrder),
		cmp.Compare(y.Unmovable+y.Reclaimable, x.Unmovable+x.Reclaimable),
	)
}

// cgroupTable is the counts of the cgroups active in a span. Rows live in
// a slice the index points into, so that a delta is one map lookup and an
// add in place, and reset keeps both the map's buckets and the slice's
// array: a steady set of cgroups costs no allocation.
type cgroupTable struct {
	index map[uint64]int
	rows  []cgroupRow
}

type cgroupRow struct {
	id uint64
	CgroupCounts
}

func newCgroupTable() cgroupTable { return cgroupTable{index: map[uint64]int{}} }

// get returns the counts of id, adding a zero row for a new id.
func (t *cgroupTable) get(id uint64) *CgroupCounts {
	i, ok := t.index[id]
	if !ok {
		i = len(t.rows)
		t.rows = append(t.rows, cgroupRow{id: id})
		t.index[id] = i
	}
	return &t.rows[i].CgroupCounts
}

// find returns the counts of id, the zero counts when it has none.
func (t *cgroupTable) find(id uint64) CgroupCounts {
	if i, ok := t.index[id]; ok {
		return t.rows[i].CgroupCounts
	}
	return CgroupCounts{}
}

func (t *cgroupTable) reset() {
	clear(t.index)
	t.rows = t.rows[:0]
}

// addCgroupExtfrag counts one extfrag key's delta to its cgroup.
func (c *counters) addCgroupExtfrag(x *event.ExtfragCount) {
	p := c.cgroups.get(x.CgroupID)
	p.Fallbacks += x.Count
	if x.Fragmenting {
		p.Fragmenting += x.Count
	}
}

// addCgroupAlloc counts one cgroup's allocation counter deltas.
func (c *counters) addCgroupAlloc(a *event.CgroupAlloc) {
	p := c.cgroups.get(a.CgroupID)
	for o := range a.Unmovable {
		um, rc := a.Unmovable[o], a.Reclaimable[o]
		p.Unmovable += um
		p.Reclaimable += rc
		if o >= HighOrder {
			p.UnmovableHighOrder += um
			p.ReclaimableHighOrder += rc
		}
	}
	p.HighOrder += a.HighOrder
	p.Failures += a.Failures
}

func (c *counters) mergeCgroups(o *counters) {
	for i := range o.cgroups.rows {
		r := &o.cgroups.rows[i]
		c.cgroups.get(r.id).add(&r.CgroupCounts)
	}
}

// cgroupStat names the cgroup id with what the aggregator knows now.
func (a *Aggregator) cgroupStat(id uint64, counts CgroupCounts) CgroupStat {
	e, _ := a.sess.Cgroup(id)
	return CgroupStat{
		ID: id, Path: e.Path, Removed: e.Removed, Container: e.Container,
		PodName: e.PodName, PodNamespace: e.PodNamespace,
		ContainerName: e.ContainerName, RuntimeNamespace: e.RuntimeNamespace, CgroupCounts: counts,
	}
}

// cgroupStats lists the cgroups with counts in c, ranked by fragmenting
// fallbacks (SortFragmenting's order).
func (a *Aggregator) cgroupStats(c *counters) []CgroupStat {
	var out []CgroupStat
	for _, r := range c.cgroups.rows {
		if !r.Zero() {
			out = append(out, a.cgroupStat(r.id, r.CgroupCounts))
		}
	}
	slices.SortFunc(out, func(x, y CgroupStat) int {
		return cmp.Or(compareCounts(SortFragmenting, &x.CgroupCounts, &y.CgroupCounts), cmp.Compare(x.ID, y.ID))
	})
	return out
}

// Top ranks the cgroups with counts in the session so far by the session
// count that by names, largest first; ties go to the larger count in the
// latest interval, then to the other counts (see SortKeys), then to the
// smaller id. n > 0 keeps the first n rows. Removed cgroups stay in the
// ranking under their last known path.
func (a *Aggregator) Top(by SortKey, n int) []CgroupRank {
	session := newCgroupTable()
	for _, t := range []*cgroupTable{&a.total.cgroups, &a.open.cgroups} {
		for i := range t.rows {
			session.get(t.rows[i].id).add(&t.rows[i].CgroupCounts)
		}
	}
	out := make([]CgroupRank, 0, len(session.rows))
	for _, r := range session.rows {
		if r.Zero() {
			continue
		}
		row := CgroupRank{CgroupStat: a.cgroupStat(r.id, r.CgroupCounts)}
		if a.tickSeq > 0 {
			row.Interval = a.closed.cgroups.find(r.id)
		}
		out = append(out, row)
	}
	slices.SortFunc(out, func(x, y CgroupRank) int {
		return cmp.Or(
			cmp.Compare(by.Of(&y.CgroupCounts), by.Of(&x.CgroupCounts)),
			cmp.Compare(by.Of(&y.Interval), by.Of(&x.Interval)),
			compareCounts(by, &x.CgroupCounts, &y.CgroupCounts),
			cmp.Compare(x.ID, y.ID),
		)
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	for i := range out {
		out[i].Rank = i + 1
	}
	return out
}
