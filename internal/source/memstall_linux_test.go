package source

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/cgroup"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/metrics"
	"github.com/fragscope/fragscope/internal/probes"
	"github.com/fragscope/fragscope/internal/snapshot"
	"github.com/fragscope/fragscope/internal/trace"
	"github.com/fragscope/fragscope/internal/workload"
)

// stallRecording, when set, is where TestMemcgReclaimStallsLive records
// its session (to refresh testdata/traces/memcg-reclaim-stalls.fst).
var stallRecording = os.Getenv("FRAGSCOPE_STALL_RECORDING")

// A memory cgroup limited to 32 MiB writing 400 MiB of page cache stalls in
// memcg reclaim at its limit: the live session's mem_stalls name that
// cgroup, the agent's fragscope_direct_reclaim_seconds{reclaim="memcg"}
// histogram has its own series for it, its memory.pressure grew (where
// cgroup v2 is mounted beside), and a recording of the session replays
// with the same stalls.
func TestMemcgReclaimStallsLive(t *testing.T) {
	requireRoot(t)
	mode, mounts, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}
	if mode.MemoryV1() && mounts.Memory == "" || !mode.MemoryV1() && mounts.V2 == "" {
		t.Skipf("no memory cgroup hierarchy mounted (mode %s)", mode)
	}
	mount, hier, root, err := mounts.Hierarchy(mode)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("fragscope-stall-test-%d", os.Getpid())
	dir := filepath.Join(mount, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	limit, procs := filepath.Join(dir, "memory.max"), []string{dir}
	if mode.MemoryV1() {
		limit = filepath.Join(dir, "memory.limit_in_bytes")
		// PSI lives in the v2 tree: the same path there, as systemd makes it.
		if mounts.V2 != "" {
			v2 := filepath.Join(mounts.V2, name)
			if err := os.Mkdir(v2, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(v2) })
			procs = append(procs, v2)
		}
	}
	if err := os.WriteFile(limit, []byte(strconv.Itoa(32<<20)), 0); err != nil {
		t.Fatal(err)
	}
	id := inode(t, dir)

	set, err := probes.Open(probes.Options{
		Hooks:          []probes.Hook{probes.HookPageAlloc, probes.HookCompaction, probes.HookReclaim},
		CgroupV1Memory: mode.MemoryV1(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	for _, h := range []probes.Hook{probes.HookCompaction, probes.HookReclaim} {
		if !set.Attached(h) {
			t.Fatalf("hook %s did not attach: %+v", h, set.Status)
		}
	}
	live := &Live{
		Set: set, Interval: 200 * time.Millisecond,
		Start: event.Start{Hostname: "test", KernelRelease: probes.Probe().Release, PageSize: 4096},
		TakeSnapshot: func(string) (*snapshot.Snapshot, error) {
			return snapshot.TakeWith("", snapshot.Options{SkipPagetypeinfo: true})
		},
		Cgroups: cgroup.NewResolver(mount, hier, cgroup.WithMountRoot(root), cgroup.WithMinWalkInterval(10*time.Millisecond)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	var evs []event.Event
	done := make(chan error, 1)
	go func() { done <- live.Run(ctx, func(ev event.Event) { evs = append(evs, ev) }) }()
	time.Sleep(300 * time.Millisecond)
	file := filepath.Join(t.TempDir(), "pagecache")
	if out, err := workload.PageCache(procs, file, 400).CombinedOutput(); err != nil {
		t.Fatalf("dd: %v\n%s", err, out)
	}
	os.Remove(file)
	time.Sleep(500 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	var stalls, reclaimed, psi uint64
	named := false
	for _, ev := range evs {
		switch e := ev.(type) {
		case *event.MemStalls:
			for _, s := range e.Stalls {
				if s.CgroupID == id && s.Kind == event.StallMemcgReclaim {
					stalls += s.Count
					reclaimed += s.Reclaimed
				}
			}
			for _, p := range e.PSI {
				if p.CgroupID == id {
					psi += p.SomeUs
				}
			}
		case *event.CgroupPath:
			if e.ID == id && e.Path == "/"+name {
				named = true
			}
		}
	}
	t.Logf("cgroup %s: %d memcg reclaim stalls, %d pages reclaimed, PSI some +%d us", dir, stalls, reclaimed, psi)
	if stalls == 0 || reclaimed == 0 {
		t.Fatalf("no memcg reclaim stalls for cgroup %s (id %d) in %d events", dir, id, len(evs))
	}
	if !named {
		t.Errorf("no cgroup_path event names cgroup %d as /%s", id, name)
	}
	if len(procs) > 1 && psi == 0 {
		t.Errorf("the cgroup's memory.pressure did not grow over %d stalls", stalls)
	}

	// The agent's histogram names the cgroup.
	agg := aggregate.New(nil)
	for _, ev := range evs {
		agg.Add(ev)
	}
	if n := histCount(t, agg, "/"+name); n != stalls {
		t.Errorf("fragscope_direct_reclaim_seconds{cgroup=/%s,reclaim=memcg} count %d, want %d", name, n, stalls)
	}

	// A recording replays with the same stalls.
	path := filepath.Join(t.TempDir(), "stalls.fst")
	if stallRecording != "" {
		path = stallRecording
	}
	w, err := trace.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if err := w.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, f, err := trace.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	replayed := aggregate.New(nil)
	if err := (&trace.Source{Reader: r}).Run(context.Background(), replayed.Add); err != nil {
		t.Fatal(err)
	}
	if n := histCount(t, replayed, "/"+name); n != stalls {
		t.Errorf("replayed histogram count %d, want %d", n, stalls)
	}
}

// histCount is the sample count of the cgroup's memcg reclaim histogram
// in a scrape of agg.
func histCount(t *testing.T, agg *aggregate.Aggregator, cgroupPath string) uint64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(metrics.NewCollector(metrics.ReaderFunc(func(f func(metrics.State)) {
		f(metrics.State{Agg: agg})
	}), metrics.Options{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "fragscope_direct_reclaim_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["cgroup"] == cgroupPath && labels["reclaim"] == "memcg" {
				return m.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

// The kernel's copy at the failure and the ring read later overlap: each
// stall appears once, oldest first, and a compaction the copy held open
// (ending at the failure) is the same stall as the one the closer ended a
// few ns later in the ring.
func TestMergeStalls(t *testing.T) {
	st := func(start, dur uint64, kind string) probes.RecentStall {
		return probes.RecentStall{EndNs: start + dur, DurNs: dur, Kind: kind}
	}
	copied := []probes.RecentStall{st(100, 10, event.StallDirectReclaim), st(200, 50, event.StallDirectCompaction)}
	// Later: the open compaction closed at 253, and two newer stalls.
	ring := []probes.RecentStall{st(100, 10, event.StallDirectReclaim), st(200, 53, event.StallDirectCompaction),
		st(300, 5, event.StallDirectCompaction), st(400, 5, event.StallDirectReclaim)}
	got := mergeStalls(copied, ring)
	var starts []uint64
	for _, r := range got {
		starts = append(starts, r.EndNs-r.DurNs)
	}
	if fmt.Sprint(starts) != "[100 200 300 400]" {
		t.Fatalf("merged stalls start at %v, want [100 200 300 400]", starts)
	}
	if got[1].DurNs != 50 {
		t.Errorf("the open compaction kept the ring's duration %d, want the copy's 50", got[1].DurNs)
	}
	if got := mergeStalls(nil, ring[:1]); len(got) != 1 {
		t.Errorf("ring alone: %d stalls, want 1", len(got))
	}
}
