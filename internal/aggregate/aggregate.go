package aggregate

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/fragscope/fragscope/internal/container"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/gfp"
	"github.com/fragscope/fragscope/internal/slabname"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// Aggregator folds one session's events into counts. It is not safe for
// concurrent use: a source emits from one goroutine, and the views run on it.
type Aggregator struct {
	start *event.Start
	gfp   *gfp.Table

	events      uint64
	first, last time.Time

	total   *counters // the closed intervals, merged at each Tick
	open    *counters // since the last Tick
	closed  *counters // the interval the last Tick closed
	tickSeq uint64

	allocFails ring[event.AllocFail]
	slabFails  ring[event.SlabCreate]
	netnsFails ring[event.NetnsCreate]
	nsFails    ring[event.NsSyscall]

	snapshot        *event.MemSnapshot // latest
	failureSnapshot *event.MemSnapshot // latest taken because of a failure

	cgroups map[uint64]cgroupEntry
}

type cgroupEntry struct {
	path      string
	removed   bool
	container container.Identity // parsed from path
	// podName and podNamespace are the CRI's, when it was reachable.
	podName, podNamespace string
}

// New returns an empty Aggregator.
func New() *Aggregator {
	return &Aggregator{
		total:   newCounters(),
		open:    newCounters(),
		closed:  newCounters(),
		cgroups: map[uint64]cgroupEntry{},
	}
}

// Add counts one event. A source may reuse ev after Add returns (see
// event.Source), so whatever is kept is copied.
func (a *Aggregator) Add(ev event.Event) {
	if ms, ok := ev.(*event.MemSnapshot); ok && ms.Snapshot == nil {
		return // When would dereference it; a snapshot of nothing says nothing
	}
	a.events++
	when := ev.When()
	if a.first.IsZero() {
		a.first = when
		a.open.begin = when
	}
	if when.After(a.last) {
		a.last = when
	}
	switch e := ev.(type) {
	case *event.Tick:
		a.addTick(e)
	case *event.AllocFail:
		a.open.addAllocFail(e, a.classOf(e.GFP))
		slot := a.allocFails.next()
		stack := slot.Stack[:0] // reuse the slot's array: no allocation once the ring is warm
		*slot = *e
		slot.Stack = append(stack, e.Stack...)
	case *event.SlabCreate:
		a.open.addSlabCreate(e, slabname.Group(e.Name))
		if e.Failed {
			*a.slabFails.next() = *e
		}
	case *event.NetnsCreate:
		a.open.addNetnsCreate(e)
		if e.Errno != 0 {
			*a.netnsFails.next() = *e
		}
	case *event.NsSyscall:
		// Probes only report failed namespace syscalls; one that says
		// errno 0 is counted as a failure all the same rather than lost.
		a.open.addNsSyscall(e)
		*a.nsFails.next() = *e
	case *event.MemSnapshot:
		ms := &event.MemSnapshot{Reason: e.Reason, Snapshot: cloneSnapshot(e.Snapshot)}
		a.snapshot = ms
		if e.Reason == "failure" {
			a.failureSnapshot = ms
		}
	case *event.CgroupPath:
		c, ok := a.cgroups[e.ID]
		if !ok || c.path != e.Path {
			c.container = container.Parse(e.Path)
		}
		c.path, c.removed = e.Path, e.Removed
		if e.PodName != "" {
			// The removal of a cgroup may come without the names the
			// CRI no longer has: keep the last ones known.
			c.podName, c.podNamespace = e.PodName, e.PodNamespace
		}
		a.cgroups[e.ID] = c
	case *event.Start:
		s := *e
		s.Hooks = slices.Clone(e.Hooks)
		s.GFPFlags = slices.Clone(e.GFPFlags)
		s.Migratetypes = slices.Clone(e.Migratetypes)
		a.start = &s
		a.gfp = gfp.NewTable(s.GFPFlags)
	}
}

// addTick closes the open interval: the Tick's deltas belong to it, it is
// merged into the session totals and becomes the closed interval, and the
// old closed one is reused as the new open one.
func (a *Aggregator) addTick(t *event.Tick) {
	a.open.addTick(t)
	a.open.end = t.Time
	a.total.merge(a.open)
	a.tickSeq++
	a.open, a.closed = a.closed, a.open
	a.open.reset(t.Time)
}

func (a *Aggregator) classOf(gfpMask uint64) string {
	if a.gfp == nil {
		return "unknown" // no Start yet: no table to decode with
	}
	return a.gfp.Class(gfpMask) // does not allocate
}

// Start returns the session's metadata, nil before the Start event.
func (a *Aggregator) Start() *event.Start { return a.start }

// FormatGFP decodes gfp flags with the session kernel's table,
// "GFP_KERNEL|__GFP_COMP"; before the Start event it is the number in hex.
func (a *Aggregator) FormatGFP(gfpMask uint64) string {
	if a.gfp == nil {
		return "0x" + strconv.FormatUint(gfpMask, 16)
	}
	return a.gfp.Format(gfpMask)
}

// GFPClass is the short class of gfp flags, "GFP_KERNEL", "GFP_ATOMIC",
// "other"; "unknown" before the Start event.
func (a *Aggregator) GFPClass(gfpMask uint64) string { return a.classOf(gfpMask) }

// MigratetypeName names a migratetype with the session kernel's table:
// "unknown" for -1 (the hook could not see it), "mt<N>" for values the
// table lacks.
func (a *Aggregator) MigratetypeName(mt int) string {
	if mt < 0 {
		return "unknown"
	}
	if a.start != nil && mt < len(a.start.Migratetypes) && a.start.Migratetypes[mt] != "" {
		return a.start.Migratetypes[mt]
	}
	return "mt" + strconv.Itoa(mt)
}

// CgroupPath returns the last known path of a cgroup id, and whether the
// cgroup has been removed since. ok is false for ids never resolved.
func (a *Aggregator) CgroupPath(id uint64) (path string, removed, ok bool) {
	c, ok := a.cgroups[id]
	return c.path, c.removed, ok
}

// Snapshot returns the latest free-memory snapshot, nil before the first.
func (a *Aggregator) Snapshot() *event.MemSnapshot { return a.snapshot }

// FailureSnapshot returns the latest snapshot taken because of a failure:
// the free-block picture closest to the moment an allocation failed.
func (a *Aggregator) FailureSnapshot() *event.MemSnapshot { return a.failureSnapshot }

// Events is the number of events added.
func (a *Aggregator) Events() uint64 { return a.events }

// Ticks is the number of intervals closed so far.
func (a *Aggregator) Ticks() uint64 { return a.tickSeq }

// cloneSnapshot deep-copies a snapshot so that a source reusing its buffers
// cannot change the one kept here.
func cloneSnapshot(s *snapshot.Snapshot) *snapshot.Snapshot {
	c := *s
	c.Zones = slices.Clone(s.Zones)
	for i := range c.Zones {
		z := &c.Zones[i]
		z.FreeBlocks = slices.Clone(z.FreeBlocks)
		if z.FreeByMigratetype != nil {
			m := make(map[string][]uint64, len(z.FreeByMigratetype))
			for k, v := range z.FreeByMigratetype {
				m[k] = slices.Clone(v)
			}
			z.FreeByMigratetype = m
		}
		z.PageblocksByMigratetype = maps.Clone(z.PageblocksByMigratetype)
	}
	if s.ExtfragThreshold != nil {
		th := *s.ExtfragThreshold
		c.ExtfragThreshold = &th
	}
	return &c
}
