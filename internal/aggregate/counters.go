package aggregate

import (
	"time"

	"github.com/fragscope/fragscope/internal/event"
)

// counters is everything counted over one span of the session. The
// aggregator keeps three: the open interval (where events are counted), the
// last closed interval, and the sum of all closed intervals.
type counters struct {
	begin, end time.Time
	// covered is the sum of Tick.Interval: the time the kernel's counter
	// deltas cover, which rates are computed over.
	covered time.Duration
	ticks   uint64

	allocs [event.Orders][event.Migratetypes]uint64

	failures         [event.Orders]uint64
	failuresTotal    uint64 // includes orders out of range
	failuresByMT     [event.Migratetypes]uint64
	failuresOtherMT  uint64 // -1 (hook cannot see it) or out of range
	failuresByClass  map[string]uint64
	extfrag          extfragCounters
	slabs            map[string]*slabCounters
	slabCreates      uint64
	slabFailures     uint64
	netnsCreated     uint64
	netnsFailed      uint64
	netnsByErrno     map[int32]uint64
	syscallFailures  map[syscallKey]uint64
	drops            uint64
	extfragOverflows uint64
	// cgroups holds each cgroup's extfrag fallbacks and allocation
	// counters (cgroups.go); cgroupOverflow the allocations the kernel
	// could not attribute because its cgroup map was full.
	cgroups        cgroupTable
	cgroupOverflow uint64
}

type extfragCounters struct {
	events, fragmenting uint64
	byMT                [event.Migratetypes][event.Migratetypes]extfragPair // [alloc][fallback]
}

type extfragPair struct{ events, fragmenting uint64 }

func (p *extfragPair) add(c *event.ExtfragCount) {
	p.events += c.Count
	if c.Fragmenting {
		p.fragmenting += c.Count
	}
}

type slabCounters struct {
	creates, failures uint64
	lastSize          uint32
	netns             map[uint32]struct{}
}

type syscallKey struct {
	syscall    string
	namespaces uint64
	errno      int32
}

func newCounters() *counters {
	return &counters{
		failuresByClass: map[string]uint64{},
		slabs:           map[string]*slabCounters{},
		netnsByErrno:    map[int32]uint64{},
		syscallFailures: map[syscallKey]uint64{},
		cgroups:         newCgroupTable(),
	}
}

// reset empties c for a new span starting at begin. clear keeps the maps'
// buckets, so a steady stream of the same keys does not allocate.
func (c *counters) reset(begin time.Time) {
	byClass, cgroups := c.failuresByClass, c.cgroups
	slabs, netns, syscalls := c.slabs, c.netnsByErrno, c.syscallFailures
	clear(byClass)
	cgroups.reset()
	clear(slabs)
	clear(netns)
	clear(syscalls)
	*c = counters{
		begin:           begin,
		failuresByClass: byClass,
		slabs:           slabs,
		netnsByErrno:    netns,
		syscallFailures: syscalls,
		cgroups:         cgroups,
	}
}

func (c *counters) addTick(t *event.Tick) {
	c.ticks++
	c.covered += t.Interval
	for o := range t.Allocs {
		for m, n := range t.Allocs[o] {
			c.allocs[o][m] += n
		}
	}
	for i := range t.Extfrag {
		x := &t.Extfrag[i]
		c.extfrag.events += x.Count
		if x.Fragmenting {
			c.extfrag.fragmenting += x.Count
		}
		if int(x.AllocMT) < event.Migratetypes && int(x.FallbackMT) < event.Migratetypes {
			c.extfrag.byMT[x.AllocMT][x.FallbackMT].add(x)
		}
		c.addCgroupExtfrag(x)
	}
	for i := range t.Cgroups {
		c.addCgroupAlloc(&t.Cgroups[i])
	}
	c.drops += t.Drops
	c.extfragOverflows += t.Overflow
	c.cgroupOverflow += t.CgroupOverflow
}

func (c *counters) addAllocFail(e *event.AllocFail, class string) {
	c.failuresTotal++
	if int(e.Order) < event.Orders {
		c.failures[e.Order]++
	}
	if e.Migratetype >= 0 && int(e.Migratetype) < event.Migratetypes {
		c.failuresByMT[e.Migratetype]++
	} else {
		c.failuresOtherMT++
	}
	c.failuresByClass[class]++
}

func (c *counters) addSlabCreate(e *event.SlabCreate, group string) {
	c.slabCreates++
	s := c.slabs[group]
	if s == nil {
		s = &slabCounters{netns: map[uint32]struct{}{}}
		c.slabs[group] = s
	}
	s.creates++
	s.lastSize = e.Size
	if e.Failed {
		c.slabFailures++
		s.failures++
	}
	s.netns[e.Task.NetnsIno] = struct{}{}
}

func (c *counters) addNetnsCreate(e *event.NetnsCreate) {
	if e.Errno == 0 {
		c.netnsCreated++
		return
	}
	c.netnsFailed++
	c.netnsByErrno[AbsErrno(e.Errno)]++
}

func (c *counters) addNsSyscall(e *event.NsSyscall) {
	c.syscallFailures[syscallKey{e.Syscall, Namespaces(e.Syscall, e.Flags), AbsErrno(e.Errno)}]++
}

// merge adds o's counts into c. The session totals are the sum of the
// closed intervals, merged once per Tick, so that each event is counted
// once, into the open interval, instead of twice.
func (c *counters) merge(o *counters) {
	if c.begin.IsZero() || (!o.begin.IsZero() && o.begin.Before(c.begin)) {
		c.begin = o.begin
	}
	if o.end.After(c.end) {
		c.end = o.end
	}
	c.covered += o.covered
	c.ticks += o.ticks
	for i := range o.allocs {
		for m, n := range o.allocs[i] {
			c.allocs[i][m] += n
		}
	}
	for i, n := range o.failures {
		c.failures[i] += n
	}
	c.failuresTotal += o.failuresTotal
	for m, n := range o.failuresByMT {
		c.failuresByMT[m] += n
	}
	c.failuresOtherMT += o.failuresOtherMT
	for k, n := range o.failuresByClass {
		c.failuresByClass[k] += n
	}
	c.extfrag.events += o.extfrag.events
	c.extfrag.fragmenting += o.extfrag.fragmenting
	for a := range o.extfrag.byMT {
		for f, p := range o.extfrag.byMT[a] {
			q := &c.extfrag.byMT[a][f]
			q.events += p.events
			q.fragmenting += p.fragmenting
		}
	}
	c.mergeCgroups(o)
	for group, s := range o.slabs {
		t := c.slabs[group]
		if t == nil {
			t = &slabCounters{netns: map[uint32]struct{}{}}
			c.slabs[group] = t
		}
		t.creates += s.creates
		t.failures += s.failures
		t.lastSize = s.lastSize // o is the later span
		for ino := range s.netns {
			t.netns[ino] = struct{}{}
		}
	}
	c.slabCreates += o.slabCreates
	c.slabFailures += o.slabFailures
	c.netnsCreated += o.netnsCreated
	c.netnsFailed += o.netnsFailed
	for e, n := range o.netnsByErrno {
		c.netnsByErrno[e] += n
	}
	for k, n := range o.syscallFailures {
		c.syscallFailures[k] += n
	}
	c.drops += o.drops
	c.extfragOverflows += o.extfragOverflows
	c.cgroupOverflow += o.cgroupOverflow
}
