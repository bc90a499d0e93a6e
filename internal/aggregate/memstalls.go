package aggregate

import (
	"cmp"
	"slices"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/procfs"
)

// StallStat is the direct compaction or reclaim stalls of one kind, and one
// order or one cgroup, over a span. Buckets are the kernel's log2 ns
// buckets (event.StallBuckets).
type StallStat struct {
	Kind                                        string
	Order                                       int    // -1 in per-cgroup rows (every order)
	CgroupID                                    uint64 // 0 in per-order rows
	Count, TotalNs, Reclaimed, Retries, GiveUps uint64
	Buckets                                     [event.StallBuckets]uint64
	Results                                     []NamedCount // direct compaction results, largest first
}

func (s *StallStat) add(h *event.StallHist) {
	s.Count += h.Count
	s.TotalNs += h.TotalNs
	s.Reclaimed += h.Reclaimed
	s.Retries += h.Retries
	s.GiveUps += h.GiveUps
	for i, n := range h.Buckets {
		s.Buckets[i] += n
	}
	for _, r := range h.Results {
		s.Results = addNamed(s.Results, r.Result, r.Count)
	}
}

func addNamed(l []NamedCount, name string, n uint64) []NamedCount {
	for i := range l {
		if l[i].Name == name {
			l[i].Count += n
			return l
		}
	}
	return append(l, NamedCount{name, n})
}

// Total is the stalls' summed time.
func (s *StallStat) Total() time.Duration { return time.Duration(s.TotalNs) }

// Quantile is the upper bound of the log2 bucket the q-th stall falls in
// (2^(i+1) ns): the histogram cannot say more. 0 without stalls.
func (s *StallStat) Quantile(q float64) time.Duration {
	var n uint64
	for _, c := range s.Buckets {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range s.Buckets {
		seen += c
		if seen >= rank {
			return BucketBound(i)
		}
	}
	return BucketBound(len(s.Buckets) - 1)
}

// BucketBound is the upper bound of log2 bucket i: 2^(i+1) ns.
func BucketBound(i int) time.Duration {
	if i >= 62 {
		return time.Duration(1<<62 - 1)
	}
	return time.Duration(uint64(1) << (i + 1))
}

// ZoneStat is one zone's compaction runs over a span.
type ZoneStat struct {
	Node           int
	Zone           string
	Direct         bool
	Count, TotalNs uint64
}

// PSI is a cgroup's memory pressure stall time over a span; CgroupID 0 is
// the whole system.
type PSI struct {
	CgroupID       uint64
	SomeUs, FullUs uint64
}

// MemStalls is the compaction and reclaim picture of a span.
type MemStalls struct {
	ByOrder        []StallStat // by kind, then order
	ByCgroup       []StallStat // by cgroup and kind, most stalled time first
	Zones          []ZoneStat
	KcompactdWakes [event.Orders]uint64
	PSI            []PSI // by cgroup id, the system (0) first
	Overflow       uint64
	// Compaction is /proc/vmstat's counters grown over the span, from the
	// first and latest snapshots that had them; nil without two.
	Compaction *procfs.CompactionStat
}

// Zero reports whether the span had no stall and no kcompactd wake.
func (s *MemStalls) Zero() bool {
	if len(s.ByOrder) > 0 || len(s.Zones) > 0 || s.Overflow > 0 {
		return false
	}
	for _, n := range s.KcompactdWakes {
		if n > 0 {
			return false
		}
	}
	return true
}

type memStallKey struct {
	cgroup uint64
	kind   string
	order  int
}

type zoneKey struct {
	node   int
	zone   string
	direct bool
}

// stallCounters is one span's stalls.
type stallCounters struct {
	byOrder  map[memStallKey]*StallStat // cgroup 0
	byCgroup map[memStallKey]*StallStat // order -1
	zones    map[zoneKey]*ZoneStat
	wakes    [event.Orders]uint64
	psi      map[uint64]*PSI
	overflow uint64
}

func newStallCounters() *stallCounters {
	return &stallCounters{byOrder: map[memStallKey]*StallStat{}, byCgroup: map[memStallKey]*StallStat{},
		zones: map[zoneKey]*ZoneStat{}, psi: map[uint64]*PSI{}}
}

func stat(m map[memStallKey]*StallStat, k memStallKey) *StallStat {
	s := m[k]
	if s == nil {
		s = &StallStat{Kind: k.kind, Order: k.order, CgroupID: k.cgroup}
		m[k] = s
	}
	return s
}

func (c *stallCounters) add(e *event.MemStalls) {
	for i := range e.Stalls {
		h := &e.Stalls[i]
		stat(c.byOrder, memStallKey{0, h.Kind, int(h.Order)}).add(h)
		stat(c.byCgroup, memStallKey{h.CgroupID, h.Kind, -1}).add(h)
	}
	for _, z := range e.Zones {
		k := zoneKey{z.Node, z.Zone, z.Direct}
		s := c.zones[k]
		if s == nil {
			s = &ZoneStat{Node: z.Node, Zone: z.Zone, Direct: z.Direct}
			c.zones[k] = s
		}
		s.Count += z.Count
		s.TotalNs += z.TotalNs
	}
	for o, n := range e.KcompactdWakes {
		c.wakes[o] += n
	}
	for _, p := range e.PSI {
		s := c.psi[p.CgroupID]
		if s == nil {
			s = &PSI{CgroupID: p.CgroupID}
			c.psi[p.CgroupID] = s
		}
		s.SomeUs += p.SomeUs
		s.FullUs += p.FullUs
	}
	c.overflow += e.Overflow
}

func (c *stallCounters) summary() MemStalls {
	var s MemStalls
	for _, v := range c.byOrder {
		s.ByOrder = append(s.ByOrder, cloneStat(v))
	}
	slices.SortFunc(s.ByOrder, func(x, y StallStat) int {
		return cmp.Or(cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.Order, y.Order))
	})
	for _, v := range c.byCgroup {
		s.ByCgroup = append(s.ByCgroup, cloneStat(v))
	}
	slices.SortFunc(s.ByCgroup, func(x, y StallStat) int {
		return cmp.Or(cmp.Compare(y.TotalNs, x.TotalNs), cmp.Compare(x.CgroupID, y.CgroupID), cmp.Compare(x.Kind, y.Kind))
	})
	for _, z := range c.zones {
		s.Zones = append(s.Zones, *z)
	}
	slices.SortFunc(s.Zones, func(x, y ZoneStat) int {
		return cmp.Or(cmp.Compare(x.Node, y.Node), cmp.Compare(x.Zone, y.Zone), cmp.Compare(boolInt(x.Direct), boolInt(y.Direct)))
	})
	s.KcompactdWakes = c.wakes
	for _, p := range c.psi {
		s.PSI = append(s.PSI, *p)
	}
	slices.SortFunc(s.PSI, func(x, y PSI) int { return cmp.Compare(x.CgroupID, y.CgroupID) })
	s.Overflow = c.overflow
	return s
}

func cloneStat(v *StallStat) StallStat {
	c := *v
	c.Results = slices.Clone(v.Results)
	slices.SortFunc(c.Results, func(x, y NamedCount) int { return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Name, y.Name)) })
	return c
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// memStallAgg is the aggregator's stall state: the open interval, the last
// closed one and the session, plus the vmstat counters of the first and
// latest snapshots.
type memStallAgg struct {
	open, closed, session *stallCounters
	firstVM, lastVM       *procfs.CompactionStat
}

func (a *memStallAgg) init() {
	a.open, a.closed, a.session = newStallCounters(), newStallCounters(), newStallCounters()
}

func (a *memStallAgg) addStalls(e *event.MemStalls, cg *cgroupTable) {
	a.open.add(e)
	a.session.add(e)
	for i := range e.Stalls {
		h := &e.Stalls[i]
		p := cg.get(h.CgroupID)
		p.Stalls += h.Count
		p.StallNs += h.TotalNs
	}
}

// tick closes the open interval; the maps are reused, so a quiet node's
// ticks cost no allocation.
func (a *memStallAgg) tick() {
	a.open, a.closed = a.closed, a.open
	clear(a.open.byOrder)
	clear(a.open.byCgroup)
	clear(a.open.zones)
	clear(a.open.psi)
	a.open.wakes = [event.Orders]uint64{}
	a.open.overflow = 0
}

func (a *memStallAgg) snapshot(ms *event.MemSnapshot) {
	if ms.Snapshot == nil || ms.Snapshot.Compaction == nil {
		return
	}
	c := *ms.Snapshot.Compaction
	if a.firstVM == nil {
		a.firstVM = &c
	}
	a.lastVM = &c
}

// SessionMemStalls is the compaction and reclaim picture of the session so far.
func (a *Aggregator) SessionMemStalls() MemStalls {
	s := a.memStalls.session.summary()
	if f, l := a.memStalls.firstVM, a.memStalls.lastVM; f != nil && l != nil && f != l {
		sub := func(x, y uint64) uint64 {
			if x < y {
				return 0
			}
			return x - y
		}
		s.Compaction = &procfs.CompactionStat{
			CompactStall: sub(l.CompactStall, f.CompactStall), CompactFail: sub(l.CompactFail, f.CompactFail),
			CompactSuccess: sub(l.CompactSuccess, f.CompactSuccess), THPFaultFallback: sub(l.THPFaultFallback, f.THPFaultFallback),
			THPFaultFallbackCharge: sub(l.THPFaultFallbackCharge, f.THPFaultFallbackCharge),
		}
	}
	return s
}

// IntervalMemStalls is the stalls of the interval the latest Tick closed.
func (a *Aggregator) IntervalMemStalls() MemStalls { return a.memStalls.closed.summary() }

// CgroupStallStats is the session's per-kind stalls of one cgroup.
func (a *Aggregator) CgroupStallStats(id uint64) []StallStat {
	var out []StallStat
	for k, v := range a.memStalls.session.byCgroup {
		if k.cgroup == id {
			out = append(out, cloneStat(v))
		}
	}
	slices.SortFunc(out, func(x, y StallStat) int { return cmp.Compare(x.Kind, y.Kind) })
	return out
}

// StallHistogram is the session's stalls of one kind for one cgroup, as
// cumulative log2 buckets: what the metrics' histograms export.
func (a *Aggregator) StallHistogram(id uint64, kind string) (StallStat, bool) {
	v := a.memStalls.session.byCgroup[memStallKey{id, kind, -1}]
	if v == nil {
		return StallStat{}, false
	}
	return *v, true
}

// MeanStall is the mean stall time, 0 without stalls.
func (s *StallStat) MeanStall() time.Duration {
	if s.Count == 0 {
		return 0
	}
	return time.Duration(s.TotalNs / s.Count)
}

// MaxBucket is the upper bound of the highest non-empty bucket.
func (s *StallStat) MaxBucket() time.Duration {
	for i := len(s.Buckets) - 1; i >= 0; i-- {
		if s.Buckets[i] > 0 {
			return BucketBound(i)
		}
	}
	return 0
}

// CgroupStat names a cgroup with what the session knows of it now (its
// session counts left zero).
func (a *Aggregator) CgroupStat(id uint64) CgroupStat { return a.cgroupStat(id, CgroupCounts{}) }
