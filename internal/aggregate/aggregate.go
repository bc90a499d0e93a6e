package aggregate

import (
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/session"
	"github.com/fragscope/fragscope/internal/slabname"
)

// Aggregator folds one session's events into counts. It is not safe for
// concurrent use: a source emits from one goroutine, and the views run on it.
// What the session is (its kernel's tables, cgroup names, snapshots) lives in
// the session.Session it reads; the Aggregator keeps only counts.
type Aggregator struct {
	sess *session.Session
	own  bool // sess was made by New and is fed by Add

	total   *counters // the closed intervals, merged at each Tick
	open    *counters // since the last Tick
	closed  *counters // the interval the last Tick closed
	tickSeq uint64

	allocFails ring[event.AllocFail]
	slabFails  ring[event.SlabCreate]
	netnsFails ring[event.NetnsCreate]
	nsFails    ring[event.NsSyscall]
	stalls     stalls
	memStalls  memStallAgg // compaction and reclaim (memstalls.go)
}

// New returns an empty Aggregator reading s, which the caller feeds every
// event before Add. With s nil the Aggregator makes its own session and
// feeds it.
func New(s *session.Session) *Aggregator {
	a := &Aggregator{
		sess:   s,
		total:  newCounters(),
		open:   newCounters(),
		closed: newCounters(),
	}
	a.memStalls.init()
	if s == nil {
		a.sess, a.own = session.New(), true
	}
	return a
}

// Add counts one event. A source may reuse ev after Add returns (see
// event.Source), so whatever is kept is copied.
func (a *Aggregator) Add(ev event.Event) {
	if a.own {
		a.sess.Add(ev)
	}
	if ms, ok := ev.(*event.MemSnapshot); ok && ms.Snapshot == nil {
		return // When would dereference it; a snapshot of nothing says nothing
	}
	if a.sess.Seq() == 1 {
		a.open.begin = ev.When()
	}
	switch e := ev.(type) {
	case *event.Tick:
		a.addTick(e)
	case *event.AllocFail:
		if e.Duplicate {
			break // a BPF hook counted this failure already; the kernel log's copy is evidence only
		}
		a.open.addAllocFail(e, a.sess.GFPClass(e.GFP))
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
	case *event.Stall:
		a.stalls.add(e)
	case *event.MemStalls:
		a.memStalls.addStalls(e, &a.open.cgroups)
	case *event.MemSnapshot:
		a.memStalls.snapshot(e)
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
	a.memStalls.tick()
}

// Session is the session model the Aggregator reads.
func (a *Aggregator) Session() *session.Session { return a.sess }

// Start returns the session's metadata, nil before the Start event.
func (a *Aggregator) Start() *event.Start { return a.sess.Start() }

// FormatGFP decodes gfp flags with the session kernel's table (see
// session.Session.FormatGFP).
func (a *Aggregator) FormatGFP(gfpMask uint64) string { return a.sess.FormatGFP(gfpMask) }

// MigratetypeName names a migratetype with the session kernel's table (see
// session.Session.MigratetypeName).
func (a *Aggregator) MigratetypeName(mt int) string { return a.sess.MigratetypeName(mt) }

// Snapshot returns the latest free-memory snapshot, nil before the first.
func (a *Aggregator) Snapshot() *event.MemSnapshot { return a.sess.Snapshot().MemSnapshot }

// FailureSnapshot returns the latest snapshot taken because of a failure:
// the free-block picture closest to the moment an allocation failed.
func (a *Aggregator) FailureSnapshot() *event.MemSnapshot {
	return a.sess.FailureSnapshot().MemSnapshot
}

// Events is the number of events added.
func (a *Aggregator) Events() uint64 { return a.sess.Seq() }

// Ticks is the number of intervals closed so far.
func (a *Aggregator) Ticks() uint64 { return a.tickSeq }
