package metrics

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/procfs"
	"github.com/fragscope/fragscope/internal/snapshot"
)

func hist(f families, name string, kv ...string) *dto.Histogram {
	for _, m := range f[name].GetMetric() {
		l := labelsOfMetric(m)
		match := true
		for i := 0; i+1 < len(kv); i += 2 {
			match = match && l[kv[i]] == kv[i+1]
		}
		if match {
			return m.GetHistogram()
		}
	}
	return nil
}

func stallsOf(at time.Duration, id uint64, kind string, count uint64, bucket int) *event.MemStalls {
	h := event.StallHist{CgroupID: id, Kind: kind, Count: count, TotalNs: count << bucket}
	h.Buckets[bucket] = count
	return &event.MemStalls{Time: aggtest.At(at), Stalls: []event.StallHist{h}}
}

// With one exported cgroup (MaxCgroups 1), the stall leader has its own
// histogram series, bucket bounds as the kernel's log2 buckets say; the
// other cgroup's stalls are in cgroup="other", which only grows, even when
// that cgroup outgrows the member.
func TestStallHistograms(t *testing.T) {
	st := &lockedState{s: State{Agg: newAgg(aggtest.Start(),
		&event.CgroupPath{Time: aggtest.At(0), ID: 1, Path: "/a"},
		&event.CgroupPath{Time: aggtest.At(0), ID: 2, Path: "/b"})}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(st, Options{TopCgroups: 1, MaxCgroups: 1}))

	// /a: 5 memcg reclaims of [2^14, 2^15) ns; /b: 2 direct compactions of [2^21, 2^22).
	st.add(stallsOf(time.Second, 1, event.StallMemcgReclaim, 5, 14),
		&event.Tick{Time: aggtest.At(time.Second), Interval: time.Second})
	f := scrape(t, reg)
	a := hist(f, "fragscope_direct_reclaim_seconds", "cgroup", "/a", "reclaim", "memcg")
	if a == nil || a.GetSampleCount() != 5 || a.GetSampleSum() != float64(5<<14)/1e9 {
		t.Fatalf("/a memcg reclaim histogram %v", a)
	}
	for _, b := range a.GetBucket() {
		// Stalls of [2^14, 2^15) ns are under every bound from 2^16 on
		// and under none up to 2^14.
		le := b.GetUpperBound()
		want := uint64(0)
		if le >= float64(uint64(1)<<16)/1e9 || math.IsInf(le, 1) {
			want = 5
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("/a bucket le=%g: %d, want %d", le, b.GetCumulativeCount(), want)
		}
	}
	if len(a.GetBucket()) != 14 { // 2^10 to 2^34 ns every second power, and +Inf
		t.Errorf("%d buckets, want 14", len(a.GetBucket()))
	}

	st.add(stallsOf(2*time.Second, 2, event.StallDirectCompaction, 2, 21),
		&event.Tick{Time: aggtest.At(2 * time.Second), Interval: time.Second})
	f = scrape(t, reg)
	if h := hist(f, "fragscope_direct_compaction_seconds", "cgroup", "/b"); h != nil {
		t.Errorf("/b has a series of its own beyond MaxCgroups 1: %v", h)
	}
	o := hist(f, "fragscope_direct_compaction_seconds", "cgroup", "other")
	if o == nil || o.GetSampleCount() != 2 || math.Abs(o.GetSampleSum()-float64(2<<21)/1e9) > 1e-12 {
		t.Fatalf("other direct compaction histogram %v", o)
	}
	st.add(stallsOf(3*time.Second, 2, event.StallDirectCompaction, 10, 21),
		&event.Tick{Time: aggtest.At(3 * time.Second), Interval: time.Second})
	f = scrape(t, reg)
	if o2 := hist(f, "fragscope_direct_compaction_seconds", "cgroup", "other"); o2.GetSampleCount() != 12 {
		t.Errorf("other grew to %d, want 12", o2.GetSampleCount())
	}
	if v, ok := f.get("fragscope_cgroup_stalls_total", "cgroup", "/a"); !ok || v != 5 {
		t.Errorf("fragscope_cgroup_stalls_total{/a} = %v (%v)", v, ok)
	}
}

// The kernel's counters and the fragmentation score come from the latest
// snapshot that has them.
func TestKernelCompactionFamilies(t *testing.T) {
	pro := 20
	snap := &snapshot.Snapshot{Time: aggtest.At(time.Second), PageSize: 4096,
		Compaction:              &procfs.CompactionStat{CompactStall: 7, CompactFail: 5, CompactSuccess: 2, THPFaultFallback: 3, THPFaultFallbackCharge: 1},
		CompactionProactiveness: &pro,
		Zones: []snapshot.Zone{{Node: 0, Name: "Normal", Present: 100, Managed: 100,
			FreeBlocks: []uint64{50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}}}
	st := &lockedState{s: State{Agg: newAgg(aggtest.Start(), &event.MemSnapshot{Reason: "interval", Snapshot: snap})}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(st, Options{}))
	f := scrape(t, reg)
	f.want(t, 7, "fragscope_vmstat_total", "counter", "compact_stall")
	f.want(t, 1, "fragscope_vmstat_total", "counter", "thp_fault_fallback_charge")
	f.want(t, 99, "fragscope_fragmentation_score", "node", "0") // 100*100/101
}
