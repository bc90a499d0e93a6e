package metrics

import (
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/aggregate/aggtest"
	"github.com/fragscope/fragscope/internal/event"
)

// checkSummary asserts that every family fed by the aggregator shows the
// Summary's numbers.
func checkSummary(t *testing.T, f families, a *aggregate.Aggregator) {
	t.Helper()
	s := a.Summary()
	var allocs, fails float64
	for _, o := range s.Orders {
		ol := strconv.Itoa(o.Order)
		for _, n := range o.AllocsByMigratetype {
			f.want(t, float64(n.Count), "fragscope_page_allocations_total", "order", ol, "migratetype", n.Name)
		}
		f.want(t, float64(o.Failures), "fragscope_page_allocation_failures_total", "order", ol)
		fails += float64(o.Failures)
		allocs += float64(o.Allocs)
	}
	if got := f.sum("fragscope_page_allocations_total"); got != float64(s.Allocs) || allocs != got {
		t.Errorf("page allocations sum to %v, summary %d", got, s.Allocs)
	}
	if got := f.sum("fragscope_page_allocation_failures_total"); got != float64(s.Failures) || got != fails {
		t.Errorf("failures sum to %v, summary %d", got, s.Failures)
	}

	var frag, events float64
	for _, p := range s.Extfrag.ByMigratetype {
		f.want(t, float64(p.Fragmenting), "fragscope_extfrag_fallbacks_total",
			"alloc_migratetype", p.Alloc, "fallback_migratetype", p.Fallback, "fragmenting", "true")
		f.want(t, float64(p.Events-p.Fragmenting), "fragscope_extfrag_fallbacks_total",
			"alloc_migratetype", p.Alloc, "fallback_migratetype", p.Fallback, "fragmenting", "false")
		frag += float64(p.Fragmenting)
		events += float64(p.Events)
	}
	if got := f.sum("fragscope_extfrag_fallbacks_total"); got != events {
		t.Errorf("extfrag fallbacks sum to %v, pairs %v", got, events)
	}

	f.want(t, float64(s.SlabCreates-s.SlabFailures), "fragscope_slab_cache_creations_total", "result", "success")
	f.want(t, float64(s.SlabFailures), "fragscope_slab_cache_creations_total", "result", "failure")
	f.want(t, float64(s.Netns.Created), "fragscope_netns_creations_total", "result", "success")
	for _, e := range s.Netns.ByErrno {
		f.want(t, float64(e.Count), "fragscope_netns_creations_total", "result", "failure", "errno", e.Name)
	}
	if got := f.sum("fragscope_netns_creations_total"); got != float64(s.Netns.Created+s.Netns.Failed) {
		t.Errorf("netns creations sum to %v, summary %d+%d", got, s.Netns.Created, s.Netns.Failed)
	}
	bySys := map[[2]string]uint64{}
	for _, c := range s.Syscalls {
		bySys[[2]string{c.Syscall, c.ErrnoName}] += c.Count
	}
	for k, n := range bySys {
		f.want(t, float64(n), "fragscope_namespace_syscall_failures_total", "syscall", k[0], "errno", k[1])
	}
	if got := f.sum("fragscope_namespace_syscall_failures_total"); got != float64(s.SyscallFailures) {
		t.Errorf("syscall failures sum to %v, summary %d", got, s.SyscallFailures)
	}

	f.want(t, float64(s.Drops), "fragscope_events_dropped_total", "where", "ringbuf")
	f.want(t, float64(s.Extfrag.Overflow), "fragscope_events_dropped_total", "where", "extfrag_map")
	f.want(t, float64(s.CgroupOverflow), "fragscope_events_dropped_total", "where", "cgroup_map")

	// The per-cgroup families: the series add up to the cgroups' totals
	// (nothing has joined late or left in a first scrape).
	var tot cgroupValues
	for i := range s.Cgroups {
		v := valuesOf(&s.Cgroups[i].CgroupCounts)
		for k := range tot {
			tot[k] += v[k]
		}
	}
	for k, name := range []string{
		"fragscope_cgroup_unmovable_high_order_allocations_total",
		"fragscope_cgroup_fragmenting_fallbacks_total",
		"fragscope_cgroup_allocation_failures_total",
	} {
		if got := f.sum(name); got != float64(tot[k]) {
			t.Errorf("%s sums to %v, cgroups %d", name, got, tot[k])
		}
		if _, ok := f.get(name, "cgroup", "other"); !ok {
			t.Errorf("%s has no other series", name)
		}
	}

	if st := a.Start(); st != nil {
		for _, h := range st.Hooks {
			mech, v := h.Mechanism, 1.0
			if !h.Attached {
				mech, v = "none", 0
			}
			f.want(t, v, "fragscope_hook_attached", "hook", h.Hook, "mechanism", mech)
		}
		f.want(t, 1, "fragscope_build_info", "kernel", st.KernelRelease, "goversion", runtime.Version())
	}

	ms := a.Snapshot()
	if ms == nil {
		if len(f["fragscope_free_blocks"].GetMetric()) != 0 {
			t.Error("free blocks without a snapshot")
		}
		return
	}
	snap := ms.Snapshot
	f.want(t, float64(snap.Time.UnixNano())/1e9, "fragscope_last_snapshot_timestamp_seconds")
	page := float64(snap.PageSize)
	for i := range snap.Zones {
		z := &snap.Zones[i]
		node := strconv.Itoa(z.Node)
		if z.Empty() {
			if _, ok := f.get("fragscope_free_blocks", "node", node, "zone", z.Name, "order", "0"); ok {
				t.Errorf("empty zone %s exported", z.Name)
			}
			continue
		}
		for o, n := range z.FreeBlocks {
			ol := strconv.Itoa(o)
			f.want(t, float64(n), "fragscope_free_blocks", "node", node, "zone", z.Name, "order", ol)
			f.want(t, float64(z.Unusable(o))/1000, "fragscope_unusable_index", "node", node, "zone", z.Name, "order", ol)
			// -1 where a block is free, as debugfs extfrag_index prints it.
			f.want(t, float64(z.FragIndex(o))/1000, "fragscope_fragmentation_index", "node", node, "zone", z.Name, "order", ol)
		}
		free := z.NrFree
		if free == 0 {
			free = z.FreePages()
		}
		f.want(t, float64(free)*page, "fragscope_zone_free_bytes", "node", node, "zone", z.Name)
		if z.HaveWatermarks {
			f.want(t, float64(z.Min)*page, "fragscope_zone_watermark_bytes", "node", node, "zone", z.Name, "level", "min")
			f.want(t, float64(z.Low)*page, "fragscope_zone_watermark_bytes", "node", node, "zone", z.Name, "level", "low")
			f.want(t, float64(z.High)*page, "fragscope_zone_watermark_bytes", "node", node, "zone", z.Name, "level", "high")
		}
	}
}

func TestSeedSession(t *testing.T) {
	a := newAgg(aggtest.Session()...)
	st := &lockedState{s: State{Agg: a, NodeName: "node-7",
		Incidents: map[string]uint64{"fragmentation": 1, "namespace_limit": 1}}}
	f := scrape(t, NewRegistry(st, Options{Version: "v9"}))
	checkSummary(t, f, a)

	// The seed's own numbers, so that checkSummary cannot pass on an empty
	// summary.
	f.want(t, 1500, "fragscope_page_allocations_total", "order", "0", "migratetype", "Unmovable")
	f.want(t, 1, "fragscope_page_allocation_failures_total", "order", "6")
	f.want(t, 0, "fragscope_page_allocation_failures_total", "order", "10") // declared from the snapshot's orders
	f.want(t, 40, "fragscope_extfrag_fallbacks_total", "alloc_migratetype", "Unmovable", "fallback_migratetype", "Movable", "fragmenting", "true")
	f.want(t, 8, "fragscope_slab_cache_creations_total", "result", "success")
	f.want(t, 1, "fragscope_slab_cache_creations_total", "result", "failure")
	f.want(t, 1, "fragscope_netns_creations_total", "result", "failure", "errno", "ENOMEM")
	f.want(t, 0, "fragscope_netns_creations_total", "result", "failure", "errno", "ENOSPC")
	f.want(t, 1, "fragscope_namespace_syscall_failures_total", "syscall", "clone", "errno", "ENOMEM")
	f.want(t, 1, "fragscope_namespace_syscall_failures_total", "syscall", "unshare", "errno", "ENOSPC")
	f.want(t, 0, "fragscope_namespace_syscall_failures_total", "syscall", "setns", "errno", "ENOMEM")
	f.want(t, 3, "fragscope_events_dropped_total", "where", "ringbuf")
	f.want(t, 1, "fragscope_incidents_total", "verdict", "fragmentation")
	f.want(t, 1, "fragscope_incidents_total", "verdict", "namespace_limit")
	for _, v := range []string{"exhaustion", "memcg_limit", "unknown"} {
		f.want(t, 0, "fragscope_incidents_total", "verdict", v)
	}
	f.want(t, 1, "fragscope_build_info", "version", "v9", "kernel", "3.10.0-514.el7.x86_64")
	f.want(t, 1, "fragscope_node_info", "nodename", "node-7", "hostname", "node-7")
	f.want(t, 1, "fragscope_hook_attached", "hook", "extfrag", "mechanism", "tracepoint")
	// The interval snapshot: Normal has 17 free order-3 blocks and none
	// above, so order 3 has the kernel's "a block is free" (-1) and order
	// 6 its index.
	f.want(t, 17, "fragscope_free_blocks", "node", "0", "zone", "Normal", "order", "3")
	f.want(t, -1, "fragscope_fragmentation_index", "node", "0", "zone", "Normal", "order", "3")
	f.want(t, 0.981, "fragscope_fragmentation_index", "node", "0", "zone", "Normal", "order", "6")
	f.want(t, 13884*4096, "fragscope_zone_watermark_bytes", "node", "0", "zone", "Normal", "level", "min")
	f.want(t, 40, "fragscope_cgroup_fragmenting_fallbacks_total", "cgroup", "/kubepods/besteffort/pod5f7e/3c1d")
	if _, ok := f["go_goroutines"]; !ok {
		t.Error("no Go collector")
	}
	if _, ok := f["process_cpu_seconds_total"]; !ok && runtime.GOOS == "linux" {
		t.Error("no process collector")
	}
}

// TestKubeletIdentity: the per-cgroup series carry the container and pod
// the cgroup path and the CRI name.
func TestKubeletIdentity(t *testing.T) {
	evs := aggtest.Kubelet()
	evs = append(evs[:2:2], append([]event.Event{&event.CgroupPath{Time: aggtest.T0, ID: aggtest.ContainerdCgroup,
		Path: aggtest.ContainerdPath, PodName: "web-0", PodNamespace: "shop"}}, evs[2:]...)...)
	a := newAgg(evs...)
	f := scrape(t, NewRegistry(&lockedState{s: State{Agg: a}}, Options{}))
	checkSummary(t, f, a)
	f.want(t, 60, "fragscope_cgroup_fragmenting_fallbacks_total", "cgroup", aggtest.ContainerdPath,
		"container", aggtest.ContainerdID, "pod", "web-0", "namespace", "shop")
	f.want(t, 24, "fragscope_cgroup_unmovable_high_order_allocations_total", "cgroup", aggtest.ContainerdPath)
	f.want(t, 1, "fragscope_cgroup_allocation_failures_total", "cgroup", aggtest.CgroupfsPath, "container", aggtest.CgroupfsID, "pod", "")
	// The CRI-O cgroup was removed before the first scrape: it never joins.
	f.want(t, 60, "fragscope_cgroup_fragmenting_fallbacks_total", "cgroup", "other")
	f.want(t, 2, "fragscope_cgroup_allocation_failures_total", "cgroup", "other")
}

// TestRecordings replays the recordings of real kernels and checks each
// scrape against the aggregator and the linters.
func TestRecordings(t *testing.T) {
	var paths []string
	for _, g := range []string{"../../testdata/traces/*.fst", "../../testdata/vm/*.trace"} {
		m, _ := filepath.Glob(g)
		paths = append(paths, m...)
	}
	if len(paths) < 4 {
		t.Fatalf("recordings: %v", paths)
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			a := replay(t, p)
			st := &lockedState{s: State{Agg: a}}
			reg := NewRegistry(st, Options{})
			checkSummary(t, scrape(t, reg), a)
			promtool(t, exposition(t, reg))
			lint(t, NewCollector(st, Options{}))
		})
	}
}

func lint(t *testing.T, c *Collector) {
	t.Helper()
	probs, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestLint(t *testing.T) {
	lint(t, NewCollector(&lockedState{s: State{Agg: newAgg(aggtest.Session()...)}}, Options{}))
	lint(t, NewCollector(&lockedState{s: State{Agg: newAgg(aggtest.Kubelet()...)}}, Options{}))
	lint(t, NewCollector(&lockedState{}, Options{})) // no aggregator yet
}

// TestNoSession: before the pipeline has an aggregator, a scrape still
// serves build info and the declared zeros.
func TestNoSession(t *testing.T) {
	f := scrape(t, NewRegistry(&lockedState{}, Options{}))
	f.want(t, 1, "fragscope_build_info", "version", "unknown", "kernel", "unknown")
	f.want(t, 0, "fragscope_incidents_total", "verdict", "fragmentation")
	f.want(t, 0, "fragscope_cgroup_fragmenting_fallbacks_total", "cgroup", "other")
	f.want(t, 0, "fragscope_events_dropped_total", "where", "ringbuf")
	if n := len(f["fragscope_free_blocks"].GetMetric()); n != 0 {
		t.Errorf("%d free block series without a snapshot", n)
	}
}

// TestDuplicateHooks: a hook listed twice must not make the registry reject
// the scrape.
func TestDuplicateHooks(t *testing.T) {
	s := aggtest.Start()
	s.Hooks = append(s.Hooks,
		event.HookStatus{Hook: "netns", Reason: "no fentry"},
		event.HookStatus{Hook: "netns", Reason: "no kprobe"},
		event.HookStatus{Hook: "extfrag", Mechanism: "tracepoint", Attached: true})
	f := scrape(t, NewRegistry(&lockedState{s: State{Agg: newAgg(s)}}, Options{}))
	f.want(t, 0, "fragscope_hook_attached", "hook", "netns", "mechanism", "none")
	f.want(t, 1, "fragscope_hook_attached", "hook", "extfrag", "mechanism", "tracepoint")
}

// TestConcurrentScrapes runs scrapes while the pipeline adds events under
// the Reader's lock (run with -race).
func TestConcurrentScrapes(t *testing.T) {
	st := &lockedState{s: State{Agg: newAgg()}}
	reg := NewRegistry(st, Options{TopCgroups: 2})
	evs := aggtest.Kubelet()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			st.add(evs...)
			st.add(&event.Tick{Time: aggtest.At(time.Duration(10+i) * time.Second), Interval: time.Second})
		}
	}()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := reg.Gather(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	<-done
}

// TestInvalidUTF8: cgroup paths are the kernel's bytes; the scrape must
// neither panic nor repeat a series when two paths differ only there.
func TestInvalidUTF8(t *testing.T) {
	tk := &event.Tick{Time: aggtest.At(time.Second), Interval: time.Second}
	for _, id := range []uint64{1, 2} {
		tk.Extfrag = append(tk.Extfrag, event.ExtfragCount{ExtfragKey: event.ExtfragKey{CgroupID: id, Fragmenting: true}, Count: id})
	}
	a := newAgg(aggtest.Start(),
		&event.CgroupPath{Time: aggtest.T0, ID: 1, Path: "/x\xff"},
		&event.CgroupPath{Time: aggtest.T0, ID: 2, Path: "/x\xfe"}, tk)
	reg := NewRegistry(&lockedState{s: State{Agg: a}}, Options{})
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
	f := scrape(t, reg)
	f.want(t, 2, famFrag, "cgroup", "/x\uFFFD") // id 2 leads; 1 waits for the labels
	f.want(t, 1, famFrag, "cgroup", "other")
}
