package vmtest

import (
	"encoding/json"
	"strings"
	"testing"
)

type guestStall struct {
	CgroupPath string `json:"cgroup_path"`
	Kind       string `json:"kind"`
	Order      int    `json:"order"`
	Count      uint64 `json:"count"`
	TotalNS    uint64 `json:"total_ns"`
	Results    []struct {
		Result string `json:"result"`
		Count  uint64 `json:"count"`
	} `json:"results"`
}

type guestMemStalls struct {
	Stalls []guestStall `json:"stalls"`
}

type guestSnapshot struct {
	Compaction *struct {
		CompactStall     uint64 `json:"compact_stall"`
		THPFaultFallback uint64 `json:"thp_fault_fallback"`
	} `json:"compaction"`
}

// compactionContext returns the first and the last snapshot's /proc/vmstat
// compaction counters of a session, failing the test when none has them.
func compactionContext(t *testing.T, s *session) (first, last guestSnapshot) {
	t.Helper()
	n := 0
	for _, o := range OfType(s.objs, "mem_snapshot") {
		var g guestSnapshot
		if err := json.Unmarshal(o.Raw, &g); err != nil {
			t.Fatal(err)
		}
		if g.Compaction == nil {
			continue
		}
		if n == 0 {
			first = g
		}
		last = g
		n++
	}
	if n == 0 {
		t.Fatal("no snapshot carries /proc/vmstat's compaction counters")
	}
	return first, last
}

// directCompactions sums a session's direct compaction stalls of cgroup
// path (any order when order < 0), by result.
func directCompactions(t *testing.T, s *session, path string, order int) (n, ns uint64, results map[string]uint64) {
	t.Helper()
	results = map[string]uint64{}
	for _, o := range OfType(s.objs, "mem_stalls") {
		var m guestMemStalls
		if err := json.Unmarshal(o.Raw, &m); err != nil {
			t.Fatal(err)
		}
		for _, st := range m.Stalls {
			if st.Kind != "direct_compaction" || st.CgroupPath != path || (order >= 0 && st.Order != order) {
				continue
			}
			n += st.Count
			ns += st.TotalNS
			for _, r := range st.Results {
				results[r.Result] += r.Count
			}
		}
	}
	return n, ns, results
}

type guestTaskStalls struct {
	Task struct {
		CgroupPath string `json:"cgroup_path"`
	} `json:"task"`
	Stalls []struct {
		Kind   string `json:"kind"`
		Order  int    `json:"order"`
		Result string `json:"result"`
	} `json:"stalls"`
}

// Scenario "stalls": real fragmentation in a 256 MiB guest, the workload in
// the cgroup /fragmenter. Its order-6 ring blocks stall in direct
// compaction before they fail, and fragscope attributes the stalls to
// /fragmenter with every way of ending a compaction: fexit and kretprobe
// (the compact_result of try_to_compact_pages), raw_tp and the classic
// tracepoint (the task's next mm_page_alloc). The failing task's own stalls
// follow its failures, and the recordings replay as they were seen. Then,
// in the same boot, transparent huge pages (subtest thp).
func TestVMCompactionStalls(t *testing.T) {
	e := getEnv(t)
	k := e.kernel(t, "debian-6.12")
	res := e.boot(t, k, "stalls", 256)
	for _, mech := range []string{"fentry", "kprobe", "raw_tp", "tracepoint"} {
		t.Run(mech, func(t *testing.T) {
			t.Logf("workload: %s", workloadOut(t, res, "stalls-"+mech+"-workload"))
			s := loadSession(t, res, "stalls-"+mech)
			h := s.hook("compaction")
			if !h.Attached || h.Mechanism != mech {
				t.Fatalf("compaction hook: attached=%v mechanism %q, want %s; reason %q", h.Attached, h.Mechanism, mech, h.Reason)
			}
			if r := s.hook("reclaim"); !r.Attached {
				t.Errorf("reclaim hook not attached: %s", r.Reason)
			}
			// fexit and kretprobe see try_to_compact_pages return; raw_tp
			// and tracepoint close a compaction at the task's next
			// mm_page_alloc (or reclaim, or retry decision).
			exitProbe := mech == "fentry" || mech == "kprobe"
			var all, skipped uint64
			for _, o := range OfType(s.objs, "mem_stalls") {
				var m guestMemStalls
				if err := json.Unmarshal(o.Raw, &m); err != nil {
					t.Fatal(err)
				}
				for _, st := range m.Stalls {
					if st.Kind != "direct_compaction" {
						continue
					}
					all += st.Count
					for _, r := range st.Results {
						if r.Result == "skipped" {
							skipped += r.Count
						}
					}
				}
			}
			n, ns, results := directCompactions(t, s, "/fragmenter", -1)
			t.Logf("/fragmenter: %d direct compaction stalls, %d ns; results %v", n, ns, results)
			if n == 0 || ns == 0 {
				t.Fatalf("no direct compaction stalls attributed to /fragmenter (%d mem_stalls objects)", len(OfType(s.objs, "mem_stalls")))
			}
			// An exit probe sees every compaction's result; the mm_page_alloc
			// fallback knows the result only where a zone ran.
			if exitProbe && results["unknown"] != 0 {
				t.Errorf("%s: %d of %d compactions without a result: %v", mech, results["unknown"], n, results)
			}
			// The kernel counts compact_stall for every direct compaction
			// that did not return COMPACT_SKIPPED (__alloc_pages_direct_compact):
			// with exit probes the stalls seen must be exactly those.
			first, last := compactionContext(t, s)
			grew := last.Compaction.CompactStall - first.Compaction.CompactStall
			t.Logf("compact_stall +%d in the session; direct compactions seen %d, %d of them skipped", grew, all, skipped)
			if exitProbe && all-skipped != grew {
				t.Errorf("%s: %d direct compactions not skipped, the kernel's compact_stall grew by %d", mech, all-skipped, grew)
			}
			// Every order-6 failure of the fragmenter comes after its
			// direct compaction (try_to_compact_pages runs even when it
			// defers), so each failure's task_mem_stalls must list one: the
			// kernel copies the ring at the failure, which a late read of
			// the ring could not promise (CI found 0 of 88 that way).
			var read, after int
			for _, o := range OfType(s.objs, "task_mem_stalls") {
				var ts guestTaskStalls
				if err := json.Unmarshal(o.Raw, &ts); err != nil {
					t.Fatal(err)
				}
				if ts.Task.CgroupPath != "/fragmenter" {
					continue
				}
				read++
				for _, st := range ts.Stalls {
					if st.Kind == "direct_compaction" {
						after++
						break
					}
				}
			}
			if read == 0 || after != read {
				t.Errorf("%d of %d failures of the workload read came with its task's direct compaction stalls (%d alloc_fail)", after, read, len(OfType(s.objs, "alloc_fail")))
			}
			t.Logf("%d of %d failures read (one per task per 100 ms) with the task's direct compaction stalls; %d alloc_fail", after, read, len(OfType(s.objs, "alloc_fail")))
			if mech == "fentry" {
				e.saveFixture(t, "compaction-stalls-6.12.trace", s.trace)
			}
			checkReplay(t, e, s)
		})
	}
	// THP: with transparent_hugepage/{enabled,defrag} at madvise, each
	// MADV_HUGEPAGE fault of the workload in /thp compacts directly at order
	// 9 (HPAGE_PMD_ORDER on x86_64) while the fragmenter holds its memory,
	// and falls back to a 4 KiB page: fragscope must count those stalls for
	// /thp, beside the kernel's thp_fault_fallback and compact_stall in its
	// snapshots.
	t.Run("thp", func(t *testing.T) {
		t.Logf("fragmenter: %s", workloadOut(t, res, "stalls-thp-fragment"))
		out := workloadOut(t, res, "stalls-thp-workload")
		t.Logf("workload: %s", out)
		s := loadSession(t, res, "stalls-thp")
		if h := s.hook("compaction"); !h.Attached || h.Mechanism != "fentry" {
			t.Fatalf("compaction hook: attached=%v mechanism %q; reason %q", h.Attached, h.Mechanism, h.Reason)
		}
		n, ns, results := directCompactions(t, s, "/thp", 9)
		t.Logf("/thp: %d order-9 direct compaction stalls, %d ns; results %v", n, ns, results)
		if n == 0 || ns == 0 {
			t.Errorf("no order-9 direct compaction stalls attributed to /thp")
		}
		first, last := compactionContext(t, s)
		fallback := last.Compaction.THPFaultFallback - first.Compaction.THPFaultFallback
		stalls := last.Compaction.CompactStall - first.Compaction.CompactStall
		t.Logf("snapshots: thp_fault_fallback +%d, compact_stall +%d; the workload saw thp_fault_fallback +%s", fallback, stalls, kv(out, "thp_fault_fallback"))
		if fallback == 0 || stalls == 0 {
			t.Errorf("snapshots: thp_fault_fallback +%d, compact_stall +%d over the session; want both to grow", fallback, stalls)
		}
		e.saveFixture(t, "compaction-thp-6.12.trace", s.trace)
		checkReplay(t, e, s)
	})
	if sc := string(res.Files["scenario.log"]); !strings.Contains(sc, "compact_stall") {
		t.Logf("scenario log:\n%s", sc)
	}
}
