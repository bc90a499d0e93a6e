package aggregate_test

import (
	"slices"
	"testing"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/container"
	"github.com/fragscope/fragscope/internal/event"
)

func ids(rows []aggregate.CgroupRank) []uint64 {
	out := make([]uint64, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

func row(t *testing.T, rows []aggregate.CgroupRank, id uint64) aggregate.CgroupRank {
	t.Helper()
	for _, r := range rows {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("cgroup %d not in the ranking %v", id, ids(rows))
	return aggregate.CgroupRank{}
}

func TestCgroupSums(t *testing.T) {
	agg := aggregate.New(nil)
	feed(agg, aggtest.Kubelet()[:6]) // up to and including the first Tick
	iv := agg.Interval()
	rows := agg.Top(aggregate.SortFragmenting, 0)
	want := map[uint64]aggregate.CgroupCounts{
		aggtest.ContainerdCgroup: {Fragmenting: 50, Fallbacks: 50, UnmovableHighOrder: 24, Unmovable: 124, HighOrder: 24},
		aggtest.CgroupfsCgroup:   {Fallbacks: 20},
		aggtest.CRIOCgroup: {Fragmenting: 60, Fallbacks: 60, UnmovableHighOrder: 10, ReclaimableHighOrder: 5,
			Unmovable: 10, Reclaimable: 5, HighOrder: 15, Failures: 2},
		aggtest.ServiceCgroup: {Reclaimable: 1000},
		aggtest.UnknownCgroup: {UnmovableHighOrder: 1, Unmovable: 1, HighOrder: 1},
	}
	if len(rows) != len(want) || len(iv.Cgroups) != len(want) {
		t.Fatalf("%d ranked cgroups, %d in the interval; want %d", len(rows), len(iv.Cgroups), len(want))
	}
	for id, w := range want {
		r := row(t, rows, id)
		if r.CgroupCounts != w || r.Interval != w {
			t.Errorf("cgroup %d: session %+v, interval %+v; want %+v", id, r.CgroupCounts, r.Interval, w)
		}
	}
	for _, s := range iv.Cgroups {
		if s.CgroupCounts != want[s.ID] {
			t.Errorf("interval cgroup %d = %+v, want %+v", s.ID, s.CgroupCounts, want[s.ID])
		}
	}

	feed(agg, aggtest.Kubelet()[6:])
	rows = agg.Top(aggregate.SortFragmenting, 0)
	c := row(t, rows, aggtest.ContainerdCgroup)
	if c.Fragmenting != 60 || c.Interval != (aggregate.CgroupCounts{}) {
		t.Errorf("containerd after the quiet interval: session %+v, interval %+v", c.CgroupCounts, c.Interval)
	}
	f := row(t, rows, aggtest.CgroupfsCgroup)
	if want := (aggregate.CgroupCounts{Fallbacks: 20, Unmovable: 5, HighOrder: 64, Failures: 1}); f.CgroupCounts != want {
		t.Errorf("cgroupfs pod session = %+v, want %+v", f.CgroupCounts, want)
	}
	s := agg.Summary()
	if s.CgroupOverflow != 7 || len(s.Cgroups) != 5 {
		t.Errorf("summary: cgroup overflow %d, %d cgroups; want 7, 5", s.CgroupOverflow, len(s.Cgroups))
	}
	if iv := agg.Interval(); len(iv.Cgroups) != 0 || iv.CgroupOverflow != 0 {
		t.Errorf("quiet interval has cgroups %v, overflow %d", iv.Cgroups, iv.CgroupOverflow)
	}
}

func TestCgroupIdentity(t *testing.T) {
	agg := aggregate.New(nil)
	feed(agg, aggtest.Kubelet())
	rows := agg.Top(aggregate.SortFragmenting, 0)
	for _, tc := range []struct {
		id      uint64
		path    string
		removed bool
		want    container.Identity
	}{
		{aggtest.ContainerdCgroup, aggtest.ContainerdPath, false, container.Identity{
			Runtime: container.RuntimeContainerd, ContainerID: aggtest.ContainerdID, PodUID: aggtest.BurstableUID,
			QoS: container.QoSBurstable, Driver: container.DriverSystemd}},
		{aggtest.CgroupfsCgroup, aggtest.CgroupfsPath, false, container.Identity{
			ContainerID: aggtest.CgroupfsID, PodUID: aggtest.BestEffortUID,
			QoS: container.QoSBestEffort, Driver: container.DriverCgroupfs}},
		// Removed during the session: it keeps its path and identity.
		{aggtest.CRIOCgroup, aggtest.CRIOPath, true, container.Identity{
			Runtime: container.RuntimeCRIO, ContainerID: aggtest.CRIOContainerID, PodUID: aggtest.GuaranteedUID,
			QoS: container.QoSGuaranteed, Driver: container.DriverSystemd}},
		{aggtest.ServiceCgroup, aggtest.ServicePath, false, container.Identity{}},
		{aggtest.UnknownCgroup, "", false, container.Identity{}},
	} {
		r := row(t, rows, tc.id)
		if r.Path != tc.path || r.Removed != tc.removed || r.Container != tc.want {
			t.Errorf("cgroup %d = %q removed %v %+v; want %q removed %v %+v",
				tc.id, r.Path, r.Removed, r.Container, tc.path, tc.removed, tc.want)
		}
	}
	if got := row(t, rows, aggtest.UnknownCgroup).Label(); got != "cgroup id 2005" {
		t.Errorf("unresolved label = %q", got)
	}
	// The extfrag list by cgroup names the removed cgroup too.
	for _, c := range agg.Summary().Extfrag.ByCgroup {
		if c.ID == aggtest.CRIOCgroup && (c.Path != aggtest.CRIOPath || !c.Removed || c.Fragmenting != 60) {
			t.Errorf("extfrag by cgroup, removed CRI-O container = %+v", c)
		}
	}
}

func TestCgroupRankings(t *testing.T) {
	evs := aggtest.Kubelet()
	agg := aggregate.New(nil)
	feed(agg, evs[:len(evs)-1]) // through the second Tick
	// 2001 and 2003 tie at 60 fragmenting: 2001 did 10 of them in the
	// latest interval. Among the rest, unmovable high-order decides, then
	// failures.
	if got, want := ids(agg.Top(aggregate.SortFragmenting, 0)), []uint64{2001, 2003, 2005, 2002, 2004}; !slices.Equal(got, want) {
		t.Errorf("by fragmenting after interval 2 = %v, want %v", got, want)
	}
	feed(agg, evs[len(evs)-1:])
	for _, tc := range []struct {
		key  aggregate.SortKey
		want []uint64
	}{
		// Tied in the session and in the quiet interval: unmovable
		// high-order allocations (24 against 10) decide.
		{aggregate.SortFragmenting, []uint64{2001, 2003, 2005, 2002, 2004}},
		{aggregate.SortUnmovable, []uint64{2001, 2003, 2005, 2002, 2004}},
		{aggregate.SortFailures, []uint64{2003, 2002, 2001, 2005, 2004}},
		{aggregate.SortHighOrder, []uint64{2002, 2001, 2003, 2005, 2004}},
	} {
		rows := agg.Top(tc.key, 0)
		if got := ids(rows); !slices.Equal(got, tc.want) {
			t.Errorf("by %s = %v, want %v", tc.key, got, tc.want)
		}
		for i, r := range rows {
			if r.Rank != i+1 {
				t.Errorf("by %s row %d has rank %d", tc.key, i, r.Rank)
			}
		}
		if got := ids(agg.Top(tc.key, 2)); !slices.Equal(got, tc.want[:2]) {
			t.Errorf("by %s, top 2 = %v", tc.key, got)
		}
	}
	if got := ids(agg.Top(aggregate.SortFragmenting, 100)); len(got) != 5 {
		t.Errorf("a limit above the cgroups' number gives %v", got)
	}
}

// Identical cgroups rank by id, whatever order the kernel listed them in
// and whatever the map iteration order is.
func TestCgroupTiesByID(t *testing.T) {
	for range 20 {
		agg := aggregate.New(nil)
		tick := &event.Tick{Time: aggtest.At(time.Second), Interval: time.Second}
		for _, id := range []uint64{907, 12, 450, 3, 77, 8000, 41} {
			tick.Extfrag = append(tick.Extfrag, event.ExtfragCount{
				ExtfragKey: event.ExtfragKey{CgroupID: id, Fragmenting: true}, Count: 5})
			a := event.CgroupAlloc{CgroupID: id, Failures: 1}
			a.Unmovable[5] = 2
			tick.Cgroups = append(tick.Cgroups, a)
		}
		agg.Add(tick)
		want := []uint64{3, 12, 41, 77, 450, 907, 8000}
		for _, k := range aggregate.SortKeys {
			if got := ids(agg.Top(k, 0)); !slices.Equal(got, want) {
				t.Fatalf("by %s = %v, want %v", k, got, want)
			}
		}
		var got []uint64
		for _, s := range agg.Interval().Cgroups {
			got = append(got, s.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("interval cgroups = %v, want %v", got, want)
		}
	}
}

func TestCgroupOpenInterval(t *testing.T) {
	// Counts before the first Tick are in the session ranking; the
	// interval column is empty until a Tick closes one.
	agg := aggregate.New(nil)
	if rows := agg.Top(aggregate.SortFragmenting, 0); len(rows) != 0 {
		t.Errorf("empty aggregator ranks %v", rows)
	}
	agg.Add(&event.CgroupPath{Time: aggtest.T0, ID: 5, Path: "/a"})
	if rows := agg.Top(aggregate.SortFragmenting, 0); len(rows) != 0 {
		t.Errorf("a cgroup with no counts is ranked: %v", rows)
	}
}

func TestParseSortKey(t *testing.T) {
	for _, k := range aggregate.SortKeys {
		if got, err := aggregate.ParseSortKey(string(k)); err != nil || got != k {
			t.Errorf("ParseSortKey(%q) = %q, %v", k, got, err)
		}
	}
	if got, err := aggregate.ParseSortKey(""); err != nil || got != aggregate.SortFragmenting {
		t.Errorf("default sort = %q, %v", got, err)
	}
	if _, err := aggregate.ParseSortKey("memory"); err == nil {
		t.Error("unknown sort key accepted")
	}
}

// Pod names from the CRI survive the cgroup's removal, which the resolver
// reports without them.
func TestCgroupPodNames(t *testing.T) {
	agg := aggregate.New(nil)
	agg.Add(&event.CgroupPath{Time: aggtest.T0, ID: aggtest.CRIOCgroup, Path: aggtest.CRIOPath, PodName: "db-0", PodNamespace: "shop"})
	tick := &event.Tick{Time: aggtest.At(time.Second), Interval: time.Second, Cgroups: []event.CgroupAlloc{{CgroupID: aggtest.CRIOCgroup, Failures: 1}}}
	agg.Add(tick)
	agg.Add(&event.CgroupPath{Time: aggtest.At(time.Second), ID: aggtest.CRIOCgroup, Path: aggtest.CRIOPath, Removed: true})
	r := agg.Top(aggregate.SortFailures, 1)[0]
	if r.PodName != "db-0" || r.PodNamespace != "shop" || !r.Removed || r.Container.PodUID != aggtest.GuaranteedUID {
		t.Errorf("removed pod's row = %+v", r)
	}
}
