package aggregate_test

import (
	"slices"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/slabname"
)

// feed adds evs and returns the interval summary seen at each Tick, the way
// a view sees them.
func feed(agg *aggregate.Aggregator, evs []event.Event) []aggregate.IntervalSummary {
	var ivs []aggregate.IntervalSummary
	for _, ev := range evs {
		agg.Add(ev)
		if ev.Kind() == event.KindTick {
			ivs = append(ivs, agg.Interval())
		}
	}
	return ivs
}

func order(c aggregate.Counts, o int) aggregate.OrderStat {
	for _, st := range c.Orders {
		if st.Order == o {
			return st
		}
	}
	return aggregate.OrderStat{Order: o}
}

func TestTickCountsPerOrderAndMigratetype(t *testing.T) {
	agg := aggregate.New(nil)
	ivs := feed(agg, aggtest.Session())
	if len(ivs) != 3 {
		t.Fatalf("intervals = %d, want 3", len(ivs))
	}

	first := ivs[0]
	if first.Seq != 1 || !first.Begin.Equal(aggtest.T0) || !first.End.Equal(aggtest.At(5*time.Second)) {
		t.Errorf("interval 1 = seq %d %v..%v", first.Seq, first.Begin, first.End)
	}
	o0 := order(first.Counts, 0)
	if o0.Allocs != 6000 || o0.PerSec != 1200 {
		t.Errorf("interval 1 order 0 = %d allocs, %v/s; want 6000, 1200/s", o0.Allocs, o0.PerSec)
	}
	wantMT := []aggregate.NamedCount{{Name: "Movable", Count: 5000}, {Name: "Unmovable", Count: 1000}}
	if !slices.Equal(o0.AllocsByMigratetype, wantMT) {
		t.Errorf("interval 1 order 0 by migratetype = %v, want %v", o0.AllocsByMigratetype, wantMT)
	}
	if got := []int{first.Orders[0].Order, first.Orders[1].Order, first.Orders[2].Order}; len(first.Orders) != 3 || !slices.Equal(got, []int{0, 1, 3}) {
		t.Errorf("interval 1 active orders = %+v, want 0, 1, 3", first.Orders)
	}
	if first.Allocs != 6250 {
		t.Errorf("interval 1 allocs = %d, want 6250", first.Allocs)
	}

	s := agg.Summary()
	if s.Allocs != 6750 || order(s.Counts, 0).Allocs != 6500 || s.Covered != 15*time.Second {
		t.Errorf("session allocs = %d, order 0 %d, covered %v; want 6750, 6500, 15s", s.Allocs, order(s.Counts, 0).Allocs, s.Covered)
	}
	wantSession := []aggregate.NamedCount{{Name: "Movable", Count: 5000}, {Name: "Unmovable", Count: 1750}}
	if !slices.Equal(s.AllocsByMigratetype, wantSession) {
		t.Errorf("session allocs by migratetype = %v, want %v", s.AllocsByMigratetype, wantSession)
	}
}

func TestIntervalResets(t *testing.T) {
	agg := aggregate.New(nil)
	ivs := feed(agg, aggtest.Session())

	// Interval 2 has the failure and only its own allocations.
	second := ivs[1]
	if second.Allocs != 500 || order(second.Counts, 1).Allocs != 0 {
		t.Errorf("interval 2 allocs = %d (order 1: %d), want 500 (0): interval 1 leaked in", second.Allocs, order(second.Counts, 1).Allocs)
	}
	if second.Failures != 1 || order(second.Counts, 6).Failures != 1 {
		t.Errorf("interval 2 failures = %d (order 6: %d), want 1 (1)", second.Failures, order(second.Counts, 6).Failures)
	}
	if want := []aggregate.NamedCount{{Name: "GFP_KERNEL", Count: 1}}; !slices.Equal(second.FailuresByClass, want) {
		t.Errorf("interval 2 failures by class = %v, want %v", second.FailuresByClass, want)
	}
	if want := []aggregate.NamedCount{{Name: "Unmovable", Count: 1}}; !slices.Equal(second.FailuresByMigratetype, want) {
		t.Errorf("interval 2 failures by migratetype = %v, want %v", second.FailuresByMigratetype, want)
	}
	if second.SlabCreates != 1 || second.SlabFailures != 1 {
		t.Errorf("interval 2 slab creates/failures = %d/%d, want 1/1", second.SlabCreates, second.SlabFailures)
	}

	// Interval 3 is quiet: everything is zero, nothing carried over.
	third := ivs[2]
	if third.Allocs != 0 || third.Failures != 0 || third.SlabCreates != 0 || third.Netns.Failed != 0 ||
		third.SyscallFailures != 0 || third.Drops != 0 || third.Extfrag.Events != 0 ||
		len(third.Orders)+len(third.Slabs)+len(third.Syscalls)+len(third.FailuresByClass)+len(third.Extfrag.ByCgroup) != 0 {
		t.Errorf("interval 3 not empty: %+v", third.Counts)
	}
	if !third.Begin.Equal(aggtest.At(10*time.Second)) || third.Covered != 5*time.Second {
		t.Errorf("interval 3 begins %v covering %v, want 10s, 5s", third.Begin, third.Covered)
	}

	// The session keeps everything.
	s := agg.Summary()
	if s.Failures != 1 || s.SlabCreates != 9 || s.Ticks != 3 || s.Events != uint64(len(aggtest.Session())) {
		t.Errorf("session failures %d slab creates %d ticks %d events %d", s.Failures, s.SlabCreates, s.Ticks, s.Events)
	}
	if !s.Begin.Equal(aggtest.T0) || !s.End.Equal(aggtest.At(15*time.Second)) {
		t.Errorf("session span %v..%v", s.Begin, s.End)
	}
}

func TestIntervalBeforeFirstTick(t *testing.T) {
	agg := aggregate.New(nil)
	agg.Add(aggtest.Start())
	if iv := agg.Interval(); iv.Seq != 0 || !iv.End.IsZero() {
		t.Errorf("Interval before any Tick = %+v, want zero", iv)
	}
}

func TestSlabGrouping(t *testing.T) {
	agg := aggregate.New(nil)
	agg.Add(aggtest.Start())
	for i := range 8 {
		agg.Add(&event.SlabCreate{Time: aggtest.At(time.Duration(i) * time.Second), Name: aggtest.ConntrackCache(i), Size: 320,
			Task: event.Task{NetnsIno: uint32(4026532000 + i%2)}})
	}
	agg.Add(&event.SlabCreate{Time: aggtest.At(9 * time.Second), Name: "nf_conntrack_expect", Size: 240})

	s := agg.Summary()
	if len(s.Slabs) != 2 {
		t.Fatalf("slab groups = %+v, want the nf_conntrack per-netns group and nf_conntrack_expect", s.Slabs)
	}
	g := s.Slabs[0]
	if g.Group != slabname.Group(aggtest.ConntrackCache(0)) || g.Creates != 8 || g.Failures != 0 || g.LastSize != 320 {
		t.Errorf("group = %+v, want %s created 8 times, size 320", g, slabname.Group(aggtest.ConntrackCache(0)))
	}
	if !slices.Equal(g.Netns, []uint32{4026532000, 4026532001}) {
		t.Errorf("group netns = %v, want both inodes, ascending", g.Netns)
	}
	if s.Slabs[1].Group != slabname.Group("nf_conntrack_expect") || s.Slabs[1].Creates != 1 {
		t.Errorf("second group = %+v", s.Slabs[1])
	}
}

func TestFailedSyscallDecoding(t *testing.T) {
	agg := aggregate.New(nil)
	feed(agg, aggtest.Session())
	s := agg.Summary()
	want := []aggregate.SyscallFailures{
		{Syscall: "clone", Namespaces: 0x6c020000, NamespaceNames: "CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWPID|CLONE_NEWNET",
			Errno: 12, ErrnoName: "ENOMEM", Count: 1},
		{Syscall: "unshare", Namespaces: aggregate.CloneNewNet, NamespaceNames: "CLONE_NEWNET", Errno: 28, ErrnoName: "ENOSPC", Count: 1},
	}
	if !slices.Equal(s.Syscalls, want) {
		t.Errorf("syscall failures =\n%+v\nwant\n%+v", s.Syscalls, want)
	}
	if s.SyscallFailures != 2 {
		t.Errorf("syscall failures = %d, want 2", s.SyscallFailures)
	}
	// copy_net_ns reported -ENOMEM: counted under the positive errno.
	if want := []aggregate.ErrnoCount{{Errno: 12, Name: "ENOMEM", Count: 1}}; s.Netns.Failed != 1 || !slices.Equal(s.Netns.ByErrno, want) {
		t.Errorf("netns = %+v, want 1 failure ENOMEM", s.Netns)
	}
}

func TestNamespaceFlags(t *testing.T) {
	for _, tc := range []struct {
		syscall string
		flags   uint64
		want    string
	}{
		{"unshare", 0x40000000, "CLONE_NEWNET"},
		{"unshare", 0x40000080, "CLONE_NEWTIME|CLONE_NEWNET"},
		{"clone", 0x40000000 | 0x11 | 0x100, "CLONE_NEWNET"}, // SIGCHLD and CLONE_VM dropped
		{"clone", 0x80 | 0x20000, "CLONE_NEWNS"},             // 0x80 is a signal bit in clone
		{"clone3", 0x80, "CLONE_NEWTIME"},
		{"setns", 0, "0"},
		{"setns", 0x02000000, "CLONE_NEWCGROUP"},
		{"unshare", 0x10000000 | 0x20000000 | 0x08000000 | 0x04000000, "CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWUSER|CLONE_NEWPID"},
	} {
		if got := aggregate.FormatNamespaces(aggregate.Namespaces(tc.syscall, tc.flags)); got != tc.want {
			t.Errorf("%s(%#x) = %q, want %q", tc.syscall, tc.flags, got, tc.want)
		}
	}
	if got := aggregate.FormatNamespaces(0x40000000 | 0x100); got != "CLONE_NEWNET|0x100" {
		t.Errorf("FormatNamespaces with other bits = %q", got)
	}
}

func TestErrnoName(t *testing.T) {
	for errno, want := range map[int32]string{28: "ENOSPC", -12: "ENOMEM", 0: "", -105: "ENOBUFS", 87: "EUSERS", 133: "EHWPOISON", -512: "ERESTARTSYS", 4095: "errno 4095", -2147483648: "errno -2147483648"} {
		if got := aggregate.ErrnoName(errno); got != want {
			t.Errorf("ErrnoName(%d) = %q, want %q", errno, got, want)
		}
	}
}

func TestDrops(t *testing.T) {
	agg := aggregate.New(nil)
	ivs := feed(agg, aggtest.Session())
	if ivs[0].Drops != 0 || ivs[1].Drops != 3 || ivs[2].Drops != 0 {
		t.Errorf("interval drops = %d %d %d, want 0 3 0", ivs[0].Drops, ivs[1].Drops, ivs[2].Drops)
	}
	agg.Add(&event.Tick{Time: aggtest.At(20 * time.Second), Interval: 5 * time.Second, Drops: 2, Overflow: 7})
	if s := agg.Summary(); s.Drops != 5 || s.Extfrag.Overflow != 7 {
		t.Errorf("session drops %d overflow %d, want 5 and 7", s.Drops, s.Extfrag.Overflow)
	}
}

func TestExtfrag(t *testing.T) {
	agg := aggregate.New(nil)
	ivs := feed(agg, aggtest.Session())
	x := agg.Summary().Extfrag
	if x.Events != 44 || x.Fragmenting != 40 {
		t.Errorf("extfrag = %d events, %d fragmenting; want 44, 40", x.Events, x.Fragmenting)
	}
	wantPairs := []aggregate.ExtfragPair{
		{AllocMT: aggtest.Unmovable, FallbackMT: aggtest.Movable, Alloc: "Unmovable", Fallback: "Movable", Events: 40, Fragmenting: 40},
		{AllocMT: aggtest.Movable, FallbackMT: aggtest.Unmovable, Alloc: "Movable", Fallback: "Unmovable", Events: 4},
	}
	if !slices.Equal(x.ByMigratetype, wantPairs) {
		t.Errorf("by migratetype = %+v, want %+v", x.ByMigratetype, wantPairs)
	}
	wantCgroups := []aggregate.ExtfragCgroup{
		{ID: aggtest.PodCgroup, Path: "/kubepods/besteffort/pod5f7e/3c1d", Events: 40, Fragmenting: 40},
		{ID: aggtest.DockerCgroup, Path: "/system.slice/docker.service", Events: 4},
	}
	if !slices.Equal(x.ByCgroup, wantCgroups) {
		t.Errorf("by cgroup = %+v, want %+v", x.ByCgroup, wantCgroups)
	}
	if iv := ivs[1].Extfrag; iv.Events != 10 || len(iv.ByCgroup) != 1 {
		t.Errorf("interval 2 extfrag = %+v, want 10 events from one cgroup", iv)
	}
}

func TestRecentFailures(t *testing.T) {
	agg := aggregate.New(nil)
	agg.Add(aggtest.Start())
	stack := []string{"a", "b"}
	for i := range aggregate.RecentLen + 3 {
		stack[0] = string(rune('a' + i)) // the source reuses its buffers
		agg.Add(&event.AllocFail{Time: aggtest.At(time.Duration(i) * time.Second), Order: uint8(i % 11), Migratetype: -1, Stack: stack})
	}
	r := agg.Recent().AllocFails
	if len(r) != aggregate.RecentLen {
		t.Fatalf("recent = %d, want %d", len(r), aggregate.RecentLen)
	}
	for k, f := range r {
		i := aggregate.RecentLen + 2 - k
		if !f.Time.Equal(aggtest.At(time.Duration(i)*time.Second)) || f.Stack[0] != string(rune('a'+i)) {
			t.Errorf("recent[%d] = %v %v, want event %d with its own stack", k, f.Time, f.Stack, i)
		}
	}
	r[0].Stack[0] = "changed"
	if agg.Recent().AllocFails[0].Stack[0] == "changed" {
		t.Error("Recent shares stacks with the ring")
	}
	if want := []aggregate.NamedCount{{Name: "unknown", Count: aggregate.RecentLen + 3}}; !slices.Equal(agg.Summary().FailuresByMigratetype, want) {
		t.Errorf("failures by migratetype = %v, want %v", agg.Summary().FailuresByMigratetype, want)
	}
}

func TestSnapshotsAndCgroups(t *testing.T) {
	agg := aggregate.New(nil)
	feed(agg, aggtest.Session())
	if s := agg.Snapshot(); s == nil || s.Reason != "interval" {
		t.Errorf("latest snapshot = %+v, want the interval one", s)
	}
	if s := agg.FailureSnapshot(); s == nil || s.Reason != "failure" {
		t.Errorf("failure snapshot = %+v", s)
	}
	agg.Add(&event.CgroupPath{Time: aggtest.At(20 * time.Second), ID: aggtest.PodCgroup, Path: "/kubepods/besteffort/pod5f7e/3c1d", Removed: true})
	if c, ok := agg.Session().Cgroup(aggtest.PodCgroup); !ok || !c.Removed || c.Path == "" {
		t.Errorf("removed cgroup = %+v %v, want its last path kept", c, ok)
	}
	if _, ok := agg.Session().Cgroup(42); ok {
		t.Error("unknown cgroup resolved")
	}
	// A nil snapshot is ignored rather than dereferenced.
	agg.Add(&event.MemSnapshot{Reason: "interval"})
}

func TestSnapshotIsCopied(t *testing.T) {
	agg := aggregate.New(nil)
	ms := aggtest.Snapshot(aggtest.T0, "start")
	agg.Add(ms)
	ms.Snapshot.Zones[2].FreeBlocks[6] = 99
	if got := agg.Snapshot().Snapshot.Zones[2].FreeBlocks[6]; got != 0 {
		t.Errorf("kept snapshot changed with the source's buffer: %d", got)
	}
}

func TestDecodingNeedsStart(t *testing.T) {
	agg := aggregate.New(nil)
	agg.Add(&event.AllocFail{Time: aggtest.T0, Order: 6, GFP: aggtest.SeedGFP})
	if got := agg.FormatGFP(aggtest.SeedGFP); got != "0x10c0d0" {
		t.Errorf("FormatGFP without a table = %q", got)
	}
	if got := agg.MigratetypeName(2); got != "mt2" {
		t.Errorf("MigratetypeName without a table = %q", got)
	}
	agg.Add(aggtest.Start())
	if got := agg.FormatGFP(aggtest.SeedGFP); got != "GFP_KERNEL|GFP_COMP|GFP_ZERO|GFP_KMEMCG" {
		t.Errorf("FormatGFP = %q", got)
	}
	if got := agg.MigratetypeName(2); got != "Movable" {
		t.Errorf("MigratetypeName(2) = %q, want 3.10's Movable", got)
	}
}

func TestAddDoesNotAllocate(t *testing.T) {
	agg := aggregate.New(nil)
	feed(agg, aggtest.Session())
	tick, cgTick, fail := benchTick(), benchCgroupTick(), benchFail()
	// Warm up: the ring's stacks and the maps' keys.
	for range aggregate.RecentLen {
		agg.Add(tick)
		agg.Add(cgTick)
		agg.Add(fail)
	}
	if n := testing.AllocsPerRun(100, func() { agg.Add(tick) }); n != 0 {
		t.Errorf("Add(Tick) allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { agg.Add(cgTick) }); n != 0 {
		t.Errorf("Add(Tick) with per-cgroup counters allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { agg.Add(fail) }); n != 0 {
		t.Errorf("Add(AllocFail) allocates %v times", n)
	}
}

// IntervalCounters agrees with Interval on every count it carries.
func TestIntervalCountersMatchInterval(t *testing.T) {
	a := aggregate.New(nil)
	for _, ev := range aggtest.Session() {
		a.Add(ev)
		if _, ok := ev.(*event.Tick); !ok {
			continue
		}
		in, ic := a.Interval(), a.IntervalCounters()
		var allocs [event.Orders]uint64
		for _, o := range in.Orders {
			allocs[o.Order] = o.Allocs
		}
		if ic.Covered != in.Covered || ic.Allocs != allocs || ic.Extfrag != in.Extfrag.Events ||
			ic.Fragmenting != in.Extfrag.Fragmenting || ic.Drops != in.Drops ||
			ic.ExtfragOverflow != in.Extfrag.Overflow || ic.CgroupOverflow != in.CgroupOverflow {
			t.Errorf("tick %d: IntervalCounters %+v, Interval %+v", in.Seq, ic, in.Counts)
		}
	}
}
