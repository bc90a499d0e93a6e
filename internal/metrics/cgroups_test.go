package metrics

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
)

const famFrag = "fragscope_cgroup_fragmenting_fallbacks_total"

// cgroupStream feeds ticks of fragmenting fallbacks per cgroup and scrapes
// after each, checking that no series of the per-cgroup families goes down
// and that at most max cgroups have series of their own.
type cgroupStream struct {
	t    *testing.T
	st   *lockedState
	c    *Collector
	max  int
	tick int
	prev map[string]map[string]float64 // family -> series -> value
	f    families
}

func newCgroupStream(t *testing.T, top, max int) *cgroupStream {
	st := &lockedState{s: State{Agg: newAgg(aggtest.Start())}}
	return &cgroupStream{t: t, st: st, c: NewCollector(st, Options{TopCgroups: top, MaxCgroups: max}), max: max,
		prev: map[string]map[string]float64{}}
}

func path(id uint64) string { return fmt.Sprintf("/kubepods/burstable/pod%d/c", id) }

func (s *cgroupStream) name(ids ...uint64) {
	for _, id := range ids {
		s.st.add(&event.CgroupPath{Time: aggtest.At(time.Duration(s.tick) * time.Second), ID: id, Path: path(id)})
	}
}

func (s *cgroupStream) remove(id uint64, p string) {
	s.st.add(&event.CgroupPath{Time: aggtest.At(time.Duration(s.tick) * time.Second), ID: id, Path: p, Removed: true})
}

// step adds one tick with the given fragmenting fallbacks per cgroup id
// (and failures for ids in fails), then scrapes.
func (s *cgroupStream) step(frag map[uint64]uint64, fails map[uint64]uint64) {
	s.t.Helper()
	s.tick++
	tk := &event.Tick{Time: aggtest.At(time.Duration(s.tick) * time.Second), Interval: time.Second}
	for id, n := range frag {
		tk.Extfrag = append(tk.Extfrag, event.ExtfragCount{ExtfragKey: event.ExtfragKey{CgroupID: id,
			AllocMT: aggtest.Unmovable, FallbackMT: aggtest.Movable, Fragmenting: true}, Count: n})
	}
	for id, n := range fails {
		tk.Cgroups = append(tk.Cgroups, event.CgroupAlloc{CgroupID: id, Failures: n})
	}
	s.st.add(tk)

	s.f = scrapeCollector(s.t, s.c) // the same collector each time: its state spans scrapes
	for _, fam := range cgroupFamilyNames {
		cur := s.f.series(fam)
		own := 0
		for k, v := range cur {
			if old, ok := s.prev[fam][k]; ok && v < old {
				s.t.Errorf("tick %d: %s{%s} went down: %v -> %v", s.tick, fam, k, old, v)
			}
			if !strings.HasPrefix(k, "cgroup=other,") {
				own++
			}
		}
		if own > s.max {
			s.t.Errorf("tick %d: %s has %d cgroups of its own, cap %d", s.tick, fam, own, s.max)
		}
		s.prev[fam] = cur
	}
}

var cgroupFamilyNames = []string{
	"fragscope_cgroup_unmovable_high_order_allocations_total",
	famFrag,
	"fragscope_cgroup_allocation_failures_total",
}

// frag is the fragmenting series of cgroup id, and whether it exists.
func (s *cgroupStream) frag(id uint64) (float64, bool) { return s.f.get(famFrag, "cgroup", path(id)) }

func (s *cgroupStream) want(id uint64, v float64) {
	s.t.Helper()
	got, ok := s.frag(id)
	if !ok || got != v {
		s.t.Errorf("tick %d: cgroup %d = %v (exported %v), want %v", s.tick, id, got, ok, v)
	}
}

func (s *cgroupStream) wantAbsent(id uint64) {
	s.t.Helper()
	if v, ok := s.frag(id); ok {
		s.t.Errorf("tick %d: cgroup %d exported (%v)", s.tick, id, v)
	}
}

func (s *cgroupStream) wantOther(v float64) {
	s.t.Helper()
	s.f.want(s.t, v, famFrag, "cgroup", "other")
}

// TestTopNOther: rankings change, a cgroup leaves the top N, one is
// removed, one arrives with the cap full. Every series only grows.
func TestTopNOther(t *testing.T) {
	const a, b, c, d, e, f = 1, 2, 3, 4, 5, 6
	s := newCgroupStream(t, 2, 3)
	s.name(a, b, c, d, e, f)

	s.step(map[uint64]uint64{a: 10, b: 5, c: 1}, nil)
	s.want(a, 10)
	s.want(b, 5)
	s.wantAbsent(c)
	s.wantOther(1)

	// c overtakes both: it joins with its full count, its past stays in
	// other. b is out of the top 2 and keeps its series.
	s.step(map[uint64]uint64{c: 100}, nil)
	s.want(c, 101)
	s.want(b, 5)
	s.wantOther(1)

	// d leads, but the cap (3) is reached: d counts in other.
	s.step(map[uint64]uint64{d: 500}, nil)
	s.wantAbsent(d)
	s.wantOther(501)

	// a is removed: exported once more with its last counts.
	s.step(map[uint64]uint64{a: 3}, nil)
	s.remove(a, path(a))
	s.step(nil, nil)
	s.want(a, 13)

	// a leaves, its late growth goes to other, and its slot goes to d,
	// whose series starts at its full count.
	s.step(map[uint64]uint64{a: 2, d: 1}, nil)
	s.wantAbsent(a)
	s.want(d, 501)
	s.wantOther(503)

	// e fragments less than the leaders: other. f suffers failures: it
	// leads the failures ranking, but the set is full again.
	s.step(map[uint64]uint64{e: 50, b: 1}, map[uint64]uint64{f: 4})
	s.want(b, 6)
	s.wantAbsent(e)
	s.wantOther(553)
	s.f.want(t, 4, "fragscope_cgroup_allocation_failures_total", "cgroup", "other")

	// The values: the aggregator's total, less what a counted while it had
	// a series (gone with it), plus the pasts of c and d (in other and in
	// their own series' first samples, which rate() does not count).
	var total float64
	for _, r := range s.st.s.Agg.Top("fragmenting", 0) {
		total += float64(r.Fragmenting)
	}
	if got, want := s.f.sum(famFrag), total-13+1+500; total != 673 || got != want {
		t.Errorf("fragmenting series sum to %v, want %v (aggregator %v)", got, want, total)
	}
}

// TestLabelCollision: a cgroup made again at a removed cgroup's path while
// the removed one is still exported must not repeat a series: it waits for
// the removed one to leave.
func TestLabelCollision(t *testing.T) {
	s := newCgroupStream(t, 5, 10)
	s.name(1)
	s.step(map[uint64]uint64{1: 10}, nil)
	s.remove(1, path(1))
	s.st.add(&event.CgroupPath{Time: aggtest.At(time.Second), ID: 2, Path: path(1)})
	s.step(map[uint64]uint64{2: 20}, nil) // the removed 1 keeps the path for this scrape; 2 waits
	s.want(1, 10)
	s.wantOther(20)
	s.step(map[uint64]uint64{2: 1}, nil)
	s.want(1, 21) // the series now is cgroup 2's, at its full count
	s.wantOther(20)
}

// scrapeCollector gathers one collector alone.
func scrapeCollector(t testing.TB, c *Collector) families {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	return scrape(t, reg)
}

// TestRandomStream: rankings reshuffled at every tick, cgroups removed and
// new ones arriving. At each scrape "other" grows by exactly the growth of
// the cgroups without a series of their own, and no series goes down (step
// checks that, and the cap).
func TestRandomStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := newCgroupStream(t, 3, 8)
	var live []uint64
	next := uint64(1)
	counts := map[uint64]float64{}
	for range 120 {
		for len(live) < 30 {
			s.name(next)
			live = append(live, next)
			next++
		}
		frag := map[uint64]uint64{}
		for _, id := range live {
			if rng.IntN(3) == 0 {
				frag[id] = uint64(rng.IntN(1000))
			}
		}
		if rng.IntN(2) == 0 {
			i := rng.IntN(len(live))
			s.remove(live[i], path(live[i]))
			live = append(live[:i], live[i+1:]...)
		}
		before, _ := s.f.get(famFrag, "cgroup", "other")
		s.step(frag, nil)
		after, _ := s.f.get(famFrag, "cgroup", "other")
		var grew float64
		for id, n := range frag {
			counts[id] += float64(n)
			if _, own := s.frag(id); !own {
				grew += float64(n)
			}
		}
		if after-before != grew {
			t.Fatalf("tick %d: other grew by %v, the cgroups it stands for by %v", s.tick, after-before, grew)
		}
		for id, n := range counts {
			if v, own := s.frag(id); own && v != n {
				t.Fatalf("tick %d: cgroup %d = %v, aggregator %v", s.tick, id, v, n)
			}
		}
	}
	if next < 60 {
		t.Fatalf("only %d cgroups", next)
	}
}

func TestLeaders(t *testing.T) {
	stat := func(id uint64, frag uint64, removed bool) aggregate.CgroupStat {
		return aggregate.CgroupStat{ID: id, Removed: removed, CgroupCounts: aggregate.CgroupCounts{Fragmenting: frag}}
	}
	stats := []aggregate.CgroupStat{stat(5, 3, false), stat(1, 9, true), stat(4, 7, false), stat(2, 3, false),
		stat(3, 0, false), stat(6, 8, false)}
	got := leaders(stats, 1, 3) // index 1: fragmenting
	var ids []uint64
	for _, i := range got {
		ids = append(ids, stats[i].ID)
	}
	// 1 is removed, 3 has none; 2 and 5 tie and 2 wins.
	if fmt.Sprint(ids) != "[6 4 2]" {
		t.Errorf("leaders = %v", ids)
	}
	if got := leaders(stats, 2, 3); len(got) != 0 {
		t.Errorf("leaders of an all-zero count = %v", got)
	}
}

// A member's labels are fixed when it joins: the pod name arriving later
// (often only with the removal) must not end its series and start another.
func TestMemberLabelsFixed(t *testing.T) {
	s := newCgroupStream(t, 2, 4)
	s.name(1)
	s.step(map[uint64]uint64{1: 10}, nil)
	s.want(1, 10)
	before := s.f.series(famFrag)
	s.st.add(&event.CgroupPath{Time: aggtest.At(2 * time.Second), ID: 1, Path: path(1), PodName: "web-1", PodNamespace: "shop"})
	s.step(map[uint64]uint64{1: 5}, nil)
	s.want(1, 15) // grew by 5
	after := s.f.series(famFrag)
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("a new series %s appeared when the pod name arrived: the member's labels changed", k)
		}
	}
}
