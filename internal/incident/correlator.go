package incident

import (
	"cmp"
	"slices"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/memcg"
	"github.com/fragscope/fragscope/internal/session"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// Hook names as probes.Hook spells them in Start.Hooks. They are repeated
// here rather than imported: package probes pulls in the BPF loader, and
// this package must build for replay on any OS.
const (
	hookPageAlloc  = "page_alloc"
	hookAllocFexit = "alloc_fexit"
	hookSlabCreate = "slab_create"
	hookNetns      = "netns"
	hookNsSyscall  = "ns_syscall"
	hookKmsg       = "kmsg" // kernlog.Hook: reports read from the kernel log
)

// Defaults of Options.
const (
	DefaultWindow     = 60 * time.Second
	DefaultMaxAge     = 30 * time.Second
	DefaultMaxPending = 1024
	DefaultTop        = 5
	// maxAllocsPerTask caps the allocation failures kept for one pending
	// syscall. A syscall that fails hundreds of opportunistic allocations
	// (SLUB retrying smaller orders) would otherwise grow without bound;
	// the latest ones are the ones next to the failure.
	maxAllocsPerTask = 16
	maxSlabsPerTask  = 8
	maxNetnsPerTask  = 4
	// sweepEvery is how often, in event time, pending evidence is checked
	// for age: often enough to bound memory, rare enough that the sweep's
	// cost does not land on every event.
	sweepEvery = time.Second
)

// Options tune a Correlator. Zero fields take the defaults.
type Options struct {
	// Window is how far back Ticks are summed for the top fragmenting
	// cgroups.
	Window time.Duration
	// MaxAge drops pending evidence this much older (in event time) than
	// the newest event: the syscall it belongs to succeeded or its exit
	// was lost.
	MaxAge time.Duration
	// MaxPending caps the tasks with pending evidence; beyond it the one
	// with the oldest evidence is dropped.
	MaxPending int
	// Top is how many fragmenting cgroups an incident lists.
	Top int
}

// Correlator assembles incidents from an event stream. It is not safe for
// concurrent use: a source emits from one goroutine.
type Correlator struct {
	opt Options

	// sess is the session model: tables, hooks, cgroup paths and the
	// snapshots with their stream positions.
	sess    *session.Session
	own     bool      // sess was made here and is fed by Add
	now     time.Time // newest event time seen
	sweptAt time.Time

	pending map[uint32]*pending // by TID: a thread is in one syscall at a time

	ticks []tickRec // oldest first

	// syscallClosed is when the latest incident of each thread closed at a
	// syscall exit: a kernel-log report of the same failure arriving after
	// it adds no incident (kernellog.go).
	syscallClosed map[uint32]time.Time
	// kernelSnap, while a kernel-log incident is built, is the picture it
	// uses (nil inside: none), instead of snapshotFor's choice.
	kernelSnap *struct{ slot *session.Snapshot }

	// memcg is the latest memory cgroup reading taken for each thread's
	// failure (MemcgState with a TID), used when its incident closes.
	memcg map[uint32]*event.MemcgState

	// atFailSeen is the stream position of the latest at-failure capture
	// already given to an allocation failure: each belongs to the first
	// BPF AllocFail after it (the source emits it just before that one).
	atFailSeen uint64

	stallRecs  []stallRec                     // the stall intervals of the last StallWindow (stalls.go)
	taskStalls map[uint32]event.TaskMemStalls // the latest stalls of failing tasks, by TID
}

// pending is the evidence of one task inside one syscall.
type pending struct {
	enter    time.Time // the syscall's enter time; zero outside syscalls
	syscall  string
	task     event.Task
	firstSeq uint64    // stream position of the first evidence
	last     time.Time // newest evidence time, for age eviction
	allocs   []event.AllocFail
	// atFail is the kernel's capture at each of allocs that has one, by
	// the allocation's time in ns (unique per task).
	atFail  map[int64]*session.Snapshot
	slabs   []event.SlabCreate
	netns   []event.NetnsCreate
	reports []event.KernelReport // what the kernel log said (kernellog.go)
}

type tickRec struct {
	t      time.Time
	counts []cgCount // sorted by id, fragmenting fallbacks only
}

type cgCount struct {
	id uint64
	n  uint64
}

// New returns a Correlator with the default options reading s, which the
// caller feeds every event before Add; with s nil the Correlator makes its
// own session and feeds it.
func New(s *session.Session) *Correlator { return NewWithOptions(s, Options{}) }

// NewWithOptions returns a Correlator with o (zero fields: defaults).
func NewWithOptions(s *session.Session, o Options) *Correlator {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.Top <= 0 {
		o.Top = DefaultTop
	}
	c := &Correlator{opt: o, sess: s, pending: map[uint32]*pending{}}
	if s == nil {
		c.sess, c.own = session.New(), true
	}
	return c
}

// Pending is the number of tasks with evidence waiting for a syscall exit.
func (c *Correlator) Pending() int { return len(c.pending) }

// Add takes one event and returns an Incident when the event completes one
// (a failed NsSyscall, or in the degraded modes a failed copy_net_ns or
// slab creation), else nil. ev may be reused by the caller after Add
// returns: whatever is kept is copied.
func (c *Correlator) Add(ev event.Event) *Incident {
	if c.own {
		c.sess.Add(ev)
	}
	if ms, ok := ev.(*event.MemSnapshot); ok && ms.Snapshot == nil {
		return nil // When would dereference it
	}
	if t := ev.When(); t.After(c.now) {
		c.now = t
		if c.now.Sub(c.sweptAt) >= sweepEvery {
			c.sweep()
		}
	}
	switch e := ev.(type) {
	case *event.AllocFail:
		if e.Hook == hookKmsg {
			c.kernelAlloc(e)
			return nil
		}
		capture, captured := c.takeAtFailure(e.Time)
		if !e.In.Inside() && !c.keepOutside() {
			return nil // the hot case: a failure no watched syscall is waiting for
		}
		p := c.evidence(e.Task, e.In, e.Time)
		if len(p.allocs) == maxAllocsPerTask {
			delete(p.atFail, p.allocs[0].Time.UnixNano())
			p.allocs = slices.Delete(p.allocs, 0, 1)
		}
		a := *e
		a.Stack = slices.Clone(e.Stack)
		p.allocs = append(p.allocs, a)
		if captured {
			if p.atFail == nil {
				p.atFail = map[int64]*session.Snapshot{}
			}
			kept := capture // a copy: taking capture's address would move it to the heap on every path
			p.atFail[a.Time.UnixNano()] = &kept
		}
	case *event.SlabCreate:
		if c.kernelSlab(e) {
			return nil
		}
		if !e.Failed || (!e.In.Inside() && !c.keepOutside()) {
			return nil
		}
		p := c.evidence(e.Task, e.In, e.Time)
		if len(p.slabs) < maxSlabsPerTask {
			p.slabs = append(p.slabs, *e)
		}
		if !e.In.Inside() && !c.attached(hookNsSyscall) && !c.attached(hookNetns) {
			return c.close(e.Task.TID, e.Time, ClosedBySlabCreate, nil)
		}
	case *event.NetnsCreate:
		if e.Errno == 0 || (!e.In.Inside() && !c.keepOutside()) {
			return nil
		}
		p := c.evidence(e.Task, e.In, e.Time)
		if len(p.netns) < maxNetnsPerTask {
			p.netns = append(p.netns, *e)
		}
		if !e.In.Inside() && !c.attached(hookNsSyscall) {
			return c.close(e.Task.TID, e.Time, ClosedByNetns, nil)
		}
	case *event.NsSyscall:
		if e.Errno == 0 || !incidentWorthy(e) {
			return nil
		}
		return c.close(e.Task.TID, e.Time, ClosedBySyscall, e)
	case *event.Tick:
		c.addTick(e)
	case *event.MemcgState:
		if e.TID != 0 {
			if c.memcg == nil {
				c.memcg = map[uint32]*event.MemcgState{}
			}
			st := *e
			st.Levels = slices.Clone(e.Levels)
			c.memcg[e.TID] = &st
		}
	case *event.KernelReport:
		return c.kernelReport(e)
	case *event.MemStalls:
		c.addStalls(e)
	case *event.TaskMemStalls:
		c.addTaskStalls(e)
	}
	return nil
}

// incidentWorthy: every failed namespace syscall is an incident; a fork or
// thread without CLONE_NEW* flags (reported since the hook sees every
// failed process creation) only when memory failed it (ENOMEM, ENOBUFS:
// runc's clone of its second child under a memcg at its limit). Its
// EAGAINs (pids.max, RLIMIT_NPROC) are counted, not explained one by one: a
// fork bomb at pids.max fails thousands of times a second.
func incidentWorthy(e *event.NsSyscall) bool {
	if aggregate.Namespaces(e.Syscall, e.Flags) != 0 || e.Syscall == "setns" {
		return true
	}
	switch aggregate.AbsErrno(e.Errno) {
	case 12, 105: // ENOMEM, ENOBUFS
		return true
	}
	return false
}

// attached reports whether a hook attached. Without a Start event (a
// truncated recording) nothing is known and every hook is assumed
// attached, which keeps the normal, syscall-driven mode.
func (c *Correlator) attached(hook string) bool { return c.sess.Attached(hook) }

// keepOutside decides whether evidence from outside any watched syscall is
// kept. Only when the ns_syscall hook is not attached: then no event can
// carry a SyscallRef, and a failed copy_net_ns or slab creation is the only
// end of a failed container start that can be seen. With the hook attached,
// a failure outside clone/unshare/setns is not a namespace-creation failure
// (the aggregate views count it), and ignoring it keeps the replay hot path
// free of allocation.
func (c *Correlator) keepOutside() bool { return !c.attached(hookNsSyscall) }

// evidence returns the pending record of task for the syscall ref, starting
// a fresh one when the task's record belongs to another syscall: a thread
// is inside one syscall at a time, so evidence with a new enter time means
// the earlier syscall returned, successfully since no failure closed it.
func (c *Correlator) evidence(task event.Task, in event.SyscallRef, t time.Time) *pending {
	p := c.pending[task.TID]
	if p != nil && (!p.enter.Equal(in.Enter) || p.syscall != in.Syscall) {
		delete(c.pending, task.TID)
		p = nil
	}
	if p == nil {
		if len(c.pending) >= c.opt.MaxPending {
			c.evictOldest()
		}
		p = &pending{enter: in.Enter, syscall: in.Syscall, firstSeq: c.sess.Seq()}
		c.pending[task.TID] = p
	}
	p.task = task
	if t.After(p.last) {
		p.last = t
	}
	return p
}

// evictOldest drops the pending record with the oldest evidence (ties: the
// lowest TID, so the choice does not depend on map order).
func (c *Correlator) evictOldest() {
	var victim uint32
	var found bool
	var oldest time.Time
	for tid, p := range c.pending {
		if !found || p.last.Before(oldest) || (p.last.Equal(oldest) && tid < victim) {
			victim, oldest, found = tid, p.last, true
		}
	}
	if found {
		delete(c.pending, victim)
	}
}

// sweep drops evidence older than MaxAge.
func (c *Correlator) sweep() {
	c.sweptAt = c.now
	limit := c.now.Add(-c.opt.MaxAge)
	for tid, p := range c.pending {
		if p.last.Before(limit) {
			delete(c.pending, tid)
		}
	}
	for tid, st := range c.memcg {
		if st.Time.Before(limit) {
			delete(c.memcg, tid)
		}
	}
	for tid, t := range c.syscallClosed {
		if t.Before(limit) {
			delete(c.syscallClosed, tid)
		}
	}
}

// addTick records the Tick's fragmenting fallbacks per cgroup and drops
// ticks that fell out of the window.
func (c *Correlator) addTick(e *event.Tick) {
	var rec tickRec
	cut := 0
	limit := e.Time.Add(-c.opt.Window)
	for cut < len(c.ticks) && !c.ticks[cut].t.After(limit) {
		cut++
	}
	if cut > 0 {
		rec.counts = c.ticks[0].counts[:0] // reuse the oldest record's array
		c.ticks = slices.Delete(c.ticks, 0, cut)
	}
	rec.t = e.Time
	for _, x := range e.Extfrag {
		if x.Fragmenting && x.Count > 0 {
			rec.counts = append(rec.counts, cgCount{x.CgroupID, x.Count})
		}
	}
	slices.SortFunc(rec.counts, func(a, b cgCount) int { return cmp.Compare(a.id, b.id) })
	rec.counts = mergeCounts(rec.counts)
	c.ticks = append(c.ticks, rec)
}

// mergeCounts sums adjacent entries of the same cgroup in place.
func mergeCounts(s []cgCount) []cgCount {
	out := s[:0]
	for _, x := range s {
		if n := len(out); n > 0 && out[n-1].id == x.id {
			out[n-1].n += x.n
			continue
		}
		out = append(out, x)
	}
	return out
}

// topCgroups sums the ticks in (at-Window, at].
func (c *Correlator) topCgroups(at time.Time) TopCgroup {
	top := TopCgroup{Window: c.opt.Window}
	sum := map[uint64]uint64{}
	limit := at.Add(-c.opt.Window)
	for _, r := range c.ticks {
		if !r.t.After(limit) || r.t.After(at) {
			continue
		}
		top.Ticks++
		for _, x := range r.counts {
			sum[x.id] += x.n
			top.Total += x.n
		}
	}
	for id, n := range sum {
		top.Cgroups = append(top.Cgroups, CgroupFrag{ID: id, Path: c.sess.CgroupPath(id), Fragmenting: n})
	}
	slices.SortFunc(top.Cgroups, func(a, b CgroupFrag) int {
		if a.Fragmenting != b.Fragmenting {
			return cmp.Compare(b.Fragmenting, a.Fragmenting)
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if len(top.Cgroups) > c.opt.Top {
		top.Cgroups = top.Cgroups[:c.opt.Top]
	}
	return top
}

// close completes the incident of tid. sys is the failed syscall's exit, nil
// when another event closes the incident (degraded modes).
func (c *Correlator) close(tid uint32, at time.Time, closedBy string, sys *event.NsSyscall) *Incident {
	p := c.pending[tid]
	if p != nil && sys != nil && (!p.enter.Equal(sys.Enter) || p.syscall != sys.Syscall) {
		p = nil // evidence of an earlier syscall of the same thread
	}
	delete(c.pending, tid)
	if p == nil {
		p = &pending{firstSeq: c.sess.Seq()}
	}
	task := p.task
	if sys != nil {
		task = sys.Task
		c.noteSyscallClose(tid, at)
	}
	inc := c.build(p, task, at, closedBy, sys)
	c.addKernelLog(inc, p)
	inc.Stalls = c.stallsFor(task, at)
	return inc
}

// memcgFinding judges the memory cgroup reading taken for tid's failure,
// if one was taken since enter (or within MaxAge of at when the call's
// entry is unknown), against the reading before the call: before enter
// when a reading that old exists, else before this one.
func (c *Correlator) memcgFinding(tid uint32, enter, at time.Time) *memcg.Finding {
	st := c.memcg[tid]
	delete(c.memcg, tid)
	if st == nil || st.Time.Before(at.Add(-c.opt.MaxAge)) || (!enter.IsZero() && st.Time.Before(enter)) {
		return nil
	}
	before := func(path string) (event.MemcgLevel, time.Time, bool) {
		if !enter.IsZero() {
			if r, ok := c.sess.MemcgBefore(path, enter); ok {
				return r.Level, r.Time, true
			}
		}
		r, ok := c.sess.MemcgBefore(path, st.Time)
		return r.Level, r.Time, ok
	}
	ps := 0
	if s := c.sess.Start(); s != nil {
		ps = int(s.PageSize)
	}
	return memcg.Judge(st, before, ps)
}

// takeAtFailure returns the kernel's capture of the free lists made at the
// BPF allocation failure being added; false when it has none. A capture
// not yet given to a failure is this one's, because the source emits each
// just before its own AllocFail, and timed within snapshot.AtFailureLead
// before it (a data dir's window may start between a capture and its
// failure). A value, not a pointer: the hot path (a failure no syscall
// waits for) must not allocate.
func (c *Correlator) takeAtFailure(failed time.Time) (session.Snapshot, bool) {
	a := c.sess.AtFailureSnapshot()
	if a.MemSnapshot == nil || a.Seq <= c.atFailSeen {
		return session.Snapshot{}, false
	}
	c.atFailSeen = a.Seq
	if lead := failed.Sub(a.Snapshot.Time); lead < 0 || lead > snapshot.AtFailureLead {
		return session.Snapshot{}, false
	}
	return a, true
}

// snapshotFor picks the picture for an incident whose first evidence is at
// stream position first: the latest "failure" snapshot if it was taken
// because of this incident (it arrived after the incident's first
// evidence), else the latest snapshot of any reason. Stream order rather
// than timestamps decides, because a snapshot's Time is when userspace read
// /proc, which can trail the kernel's timestamp of the syscall exit by the
// ringbuf's delivery latency: "at or before the exit" means "arrived before
// the exit event did".
func (c *Correlator) snapshotFor(first uint64) *session.Snapshot {
	if c.kernelSnap != nil {
		return c.kernelSnap.slot
	}
	if f := c.sess.FailureSnapshot(); f.MemSnapshot != nil && f.Seq >= first {
		return &f
	}
	if l := c.sess.Snapshot(); l.MemSnapshot != nil {
		return &l
	}
	return nil
}
