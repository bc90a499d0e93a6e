package aggregate

import (
	"cmp"
	"slices"
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// Counts is what happened over one span: an interval or the whole session.
// Lists hold only non-zero rows. "By" lists are sorted by count, largest
// first, ties by name, so that output never depends on map order.
type Counts struct {
	Begin, End time.Time // the previous Tick (or first event) and this Tick (or last event)
	// Covered is the time the kernel's counter deltas cover (the sum of the
	// Ticks' intervals); rates are per second of it.
	Covered time.Duration
	Ticks   uint64

	Allocs              uint64      // page allocations counted in the kernel
	Orders              []OrderStat // orders with allocations or failures, ascending
	AllocsByMigratetype []NamedCount

	Failures              uint64 // failed page allocations seen as events
	FailuresByClass       []NamedCount
	FailuresByMigratetype []NamedCount

	Extfrag Extfrag

	SlabCreates, SlabFailures uint64
	Slabs                     []SlabGroup

	Netns Netns

	SyscallFailures uint64
	Syscalls        []SyscallFailures

	// Drops is events lost because the ringbuf was full: when non-zero, the
	// event-based counts (failures, slabs, netns, syscalls) are lower bounds.
	Drops uint64

	// Cgroups is every cgroup with counts in the span, ranked by fragmenting
	// fallbacks (see SortKeys); CgroupOverflow the allocations the kernel
	// could not attribute to a cgroup because its map was full.
	Cgroups        []CgroupStat
	CgroupOverflow uint64
}

// OrderStat is one order's allocations and failures.
type OrderStat struct {
	Order               int
	Allocs              uint64
	PerSec              float64 // Allocs per second of Covered; 0 when nothing is covered
	Failures            uint64
	AllocsByMigratetype []NamedCount
}

// NamedCount is a count with the name of what was counted.
type NamedCount struct {
	Name  string
	Count uint64
}

// Extfrag summarizes migratetype fallbacks (kmem:mm_page_alloc_extfrag).
// Fragmenting ones took a block smaller than a pageblock and so mixed
// migratetypes inside it: those are what erode high-order availability.
type Extfrag struct {
	Events, Fragmenting uint64
	// Overflow counts fallbacks the kernel could not key because its map
	// was full: they are in no row below.
	Overflow      uint64
	ByMigratetype []ExtfragPair
	ByCgroup      []ExtfragCgroup
}

// ExtfragPair is the fallbacks from one migratetype's request to another's
// free block. Sorted by Fragmenting, then Events, largest first.
type ExtfragPair struct {
	AllocMT, FallbackMT int
	Alloc, Fallback     string
	Events, Fragmenting uint64
}

// ExtfragCgroup is the fallbacks caused by the tasks of one cgroup. Path is
// empty when the id was never resolved. Sorted like ExtfragPair, then by ID.
type ExtfragCgroup struct {
	ID                  uint64
	Path                string
	Removed             bool
	Events, Fragmenting uint64
}

// SlabGroup is the slab cache creations whose names differ only by a
// pointer or number (slabname.Group): nf_conntrack makes one per netns.
type SlabGroup struct {
	Group             string
	Creates, Failures uint64
	LastSize          uint32   // object size of the latest creation
	Netns             []uint32 // netns inodes of the creating tasks, ascending
}

// Netns is copy_net_ns outcomes.
type Netns struct {
	Created, Failed uint64
	ByErrno         []ErrnoCount
}

// ErrnoCount is how often one errno was returned. Errno is positive.
type ErrnoCount struct {
	Errno int32
	Name  string
	Count uint64
}

// SyscallFailures is the failures of one namespace syscall asking for the
// same namespaces with the same errno.
type SyscallFailures struct {
	Syscall        string
	Namespaces     uint64 // CLONE_NEW* bits (see Namespaces)
	NamespaceNames string // "CLONE_NEWNET"
	Errno          int32  // positive
	ErrnoName      string // "ENOSPC"
	Count          uint64
}

// IntervalSummary is what happened between two Ticks.
type IntervalSummary struct {
	Seq uint64 // 1 for the interval the first Tick closed
	Counts
}

// Summary is the whole session so far.
type Summary struct {
	Counts
	Events uint64
	Recent Recent
	// Snapshot is the latest free-memory picture; FailureSnapshot the latest
	// one taken because of a failure. Either may be nil.
	Snapshot, FailureSnapshot *event.MemSnapshot
}

// Recent holds the latest RecentLen failure events of each kind, newest
// first. They are copies: they stay valid after further Adds.
type Recent struct {
	AllocFails []event.AllocFail
	SlabFails  []event.SlabCreate
	NetnsFails []event.NetnsCreate
	NsSyscalls []event.NsSyscall
}

// Interval returns the interval the latest Tick closed; the zero value
// before the first Tick.
func (a *Aggregator) Interval() IntervalSummary {
	if a.tickSeq == 0 {
		return IntervalSummary{}
	}
	return IntervalSummary{Seq: a.tickSeq, Counts: a.counts(a.closed)}
}

// IntervalCounters is the part of Interval that a chart over time needs,
// without the sorted lists Interval builds: views that sample every Tick
// of a day-long recording (the report) read this instead.
type IntervalCounters struct {
	Covered                                time.Duration
	Allocs                                 [event.Orders]uint64 // by order, every migratetype
	Extfrag, Fragmenting                   uint64
	Drops, ExtfragOverflow, CgroupOverflow uint64
}

// IntervalCounters returns the counts of the interval the latest Tick
// closed; the zero value before the first Tick.
func (a *Aggregator) IntervalCounters() IntervalCounters {
	if a.tickSeq == 0 {
		return IntervalCounters{}
	}
	c := a.closed
	out := IntervalCounters{Covered: c.covered, Extfrag: c.extfrag.events, Fragmenting: c.extfrag.fragmenting,
		Drops: c.drops, ExtfragOverflow: c.extfragOverflows, CgroupOverflow: c.cgroupOverflow}
	for o := range c.allocs {
		for _, n := range c.allocs[o] {
			out.Allocs[o] += n
		}
	}
	return out
}

// Summary returns the whole session so far: the closed intervals and the
// open one.
func (a *Aggregator) Summary() Summary {
	session := newCounters()
	session.merge(a.total)
	session.merge(a.open)
	c := a.counts(session)
	c.Begin, c.End = a.sess.First(), a.sess.Last()
	return Summary{
		Counts:          c,
		Events:          a.sess.Seq(),
		Recent:          a.Recent(),
		Snapshot:        a.Snapshot(),
		FailureSnapshot: a.FailureSnapshot(),
	}
}

// Recent returns the latest failure events of each kind, newest first.
func (a *Aggregator) Recent() Recent {
	return Recent{
		AllocFails: a.allocFails.newest(func(v event.AllocFail) event.AllocFail {
			v.Stack = slices.Clone(v.Stack) // the ring reuses the slot's stack
			return v
		}),
		SlabFails:  a.slabFails.newest(identity),
		NetnsFails: a.netnsFails.newest(identity),
		NsSyscalls: a.nsFails.newest(identity),
	}
}

func (a *Aggregator) counts(c *counters) Counts {
	out := Counts{
		Begin:        c.begin,
		End:          c.end,
		Covered:      c.covered,
		Ticks:        c.ticks,
		Failures:     c.failuresTotal,
		SlabCreates:  c.slabCreates,
		SlabFailures: c.slabFailures,
		Drops:        c.drops,

		Cgroups:        a.cgroupStats(c),
		CgroupOverflow: c.cgroupOverflow,
	}
	var byMT [event.Migratetypes]uint64
	for o := range c.allocs {
		st := OrderStat{Order: o, Failures: c.failures[o]}
		for m, n := range c.allocs[o] {
			if n == 0 {
				continue
			}
			st.Allocs += n
			byMT[m] += n
			st.AllocsByMigratetype = append(st.AllocsByMigratetype, NamedCount{a.MigratetypeName(m), n})
		}
		if st.Allocs == 0 && st.Failures == 0 {
			continue
		}
		if c.covered > 0 {
			st.PerSec = float64(st.Allocs) / c.covered.Seconds()
		}
		sortNamed(st.AllocsByMigratetype)
		out.Allocs += st.Allocs
		out.Orders = append(out.Orders, st)
	}
	out.AllocsByMigratetype = a.namedByMT(byMT, 0)
	out.FailuresByMigratetype = a.namedByMT(c.failuresByMT, c.failuresOtherMT)
	for class, n := range c.failuresByClass {
		out.FailuresByClass = append(out.FailuresByClass, NamedCount{class, n})
	}
	sortNamed(out.FailuresByClass)

	out.Extfrag = a.extfrag(c)

	for group, s := range c.slabs {
		g := SlabGroup{Group: group, Creates: s.creates, Failures: s.failures, LastSize: s.lastSize}
		for ino := range s.netns {
			g.Netns = append(g.Netns, ino)
		}
		slices.Sort(g.Netns)
		out.Slabs = append(out.Slabs, g)
	}
	slices.SortFunc(out.Slabs, func(x, y SlabGroup) int {
		return cmp.Or(cmp.Compare(y.Creates, x.Creates), cmp.Compare(x.Group, y.Group))
	})

	out.Netns = Netns{Created: c.netnsCreated, Failed: c.netnsFailed}
	for errno, n := range c.netnsByErrno {
		out.Netns.ByErrno = append(out.Netns.ByErrno, ErrnoCount{errno, ErrnoName(errno), n})
	}
	slices.SortFunc(out.Netns.ByErrno, func(x, y ErrnoCount) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Errno, y.Errno))
	})

	for k, n := range c.syscallFailures {
		out.SyscallFailures += n
		out.Syscalls = append(out.Syscalls, SyscallFailures{
			Syscall:        k.syscall,
			Namespaces:     k.namespaces,
			NamespaceNames: FormatNamespaces(k.namespaces),
			Errno:          k.errno,
			ErrnoName:      ErrnoName(k.errno),
			Count:          n,
		})
	}
	slices.SortFunc(out.Syscalls, func(x, y SyscallFailures) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Syscall, y.Syscall),
			cmp.Compare(x.Namespaces, y.Namespaces), cmp.Compare(x.Errno, y.Errno))
	})
	return out
}

func (a *Aggregator) extfrag(c *counters) Extfrag {
	x := Extfrag{Events: c.extfrag.events, Fragmenting: c.extfrag.fragmenting, Overflow: c.extfragOverflows}
	for am := range c.extfrag.byMT {
		for fm, p := range c.extfrag.byMT[am] {
			if p.events == 0 {
				continue
			}
			x.ByMigratetype = append(x.ByMigratetype, ExtfragPair{
				AllocMT: am, FallbackMT: fm,
				Alloc: a.MigratetypeName(am), Fallback: a.MigratetypeName(fm),
				Events: p.events, Fragmenting: p.fragmenting,
			})
		}
	}
	slices.SortStableFunc(x.ByMigratetype, func(p, q ExtfragPair) int {
		// Stable over the (alloc, fallback) order the loops produced.
		return cmp.Or(cmp.Compare(q.Fragmenting, p.Fragmenting), cmp.Compare(q.Events, p.Events))
	})
	for i := range c.cgroups.rows {
		id, p := c.cgroups.rows[i].id, &c.cgroups.rows[i].CgroupCounts
		if p.Fallbacks == 0 {
			continue
		}
		cg, _ := a.sess.Cgroup(id)
		path, removed := cg.Path, cg.Removed
		x.ByCgroup = append(x.ByCgroup, ExtfragCgroup{
			ID: id, Path: path, Removed: removed, Events: p.Fallbacks, Fragmenting: p.Fragmenting,
		})
	}
	slices.SortFunc(x.ByCgroup, func(p, q ExtfragCgroup) int {
		return cmp.Or(cmp.Compare(q.Fragmenting, p.Fragmenting), cmp.Compare(q.Events, p.Events), cmp.Compare(p.ID, q.ID))
	})
	return x
}

// namedByMT turns per-migratetype counts into a sorted list; other is the
// count whose migratetype was unknown.
func (a *Aggregator) namedByMT(byMT [event.Migratetypes]uint64, other uint64) []NamedCount {
	var out []NamedCount
	for m, n := range byMT {
		if n != 0 {
			out = append(out, NamedCount{a.MigratetypeName(m), n})
		}
	}
	if other != 0 {
		out = append(out, NamedCount{a.MigratetypeName(-1), other})
	}
	sortNamed(out)
	return out
}

// identity copies events that hold nothing the ring reuses.
func identity[T any](v T) T { return v }

func sortNamed(s []NamedCount) {
	slices.SortFunc(s, func(x, y NamedCount) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Name, y.Name))
	})
}
