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
		CompactStall uint64 `json:"compact_stall"`
	} `json:"compaction"`
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
// the cgroup /fragmenter. Its order-6 ring block allocations stall in
// direct compaction before they fail, and fragscope attributes the stalls
// to /fragmenter with every way of ending a compaction: fexit and
// kretprobe (the compact_result of try_to_compact_pages) and raw_tp (the
// task's next mm_page_alloc). The failing task's own stalls follow its
// failures, and the recordings replay as they were seen.
func TestVMCompactionStalls(t *testing.T) {
	e := getEnv(t)
	k := e.kernel(t, "debian-6.12")
	res := e.boot(t, k, "stalls", 256)
	for _, mech := range []string{"fentry", "kprobe", "raw_tp"} {
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
			var n, ns, withResult, all, skipped uint64
			results := map[string]uint64{}
			for _, o := range OfType(s.objs, "mem_stalls") {
				var m guestMemStalls
				if err := json.Unmarshal(o.Raw, &m); err != nil {
					t.Fatal(err)
				}
				for _, st := range m.Stalls {
					if st.Kind == "direct_compaction" {
						all += st.Count
						for _, r := range st.Results {
							if r.Result == "skipped" {
								skipped += r.Count
							}
						}
					}
					if st.Kind != "direct_compaction" || st.CgroupPath != "/fragmenter" {
						continue
					}
					n += st.Count
					ns += st.TotalNS
					for _, r := range st.Results {
						results[r.Result] += r.Count
						if r.Result != "unknown" {
							withResult += r.Count
						}
					}
				}
			}
			t.Logf("/fragmenter: %d direct compaction stalls, %d ns; results %v", n, ns, results)
			if n == 0 || ns == 0 {
				t.Fatalf("no direct compaction stalls attributed to /fragmenter (%d mem_stalls objects)", len(OfType(s.objs, "mem_stalls")))
			}
			// An exit probe sees every compaction's result; the mm_page_alloc
			// fallback knows the result only where a zone ran.
			if mech != "raw_tp" && withResult != n {
				t.Errorf("%s: %d of %d compactions with a result: %v", mech, withResult, n, results)
			}
			// The kernel counts compact_stall for every direct compaction
			// that did not return COMPACT_SKIPPED (__alloc_pages_direct_compact):
			// with exit probes the stalls seen must be exactly those.
			var first, last *uint64
			for _, o := range OfType(s.objs, "mem_snapshot") {
				var g guestSnapshot
				if err := json.Unmarshal(o.Raw, &g); err != nil {
					t.Fatal(err)
				}
				if g.Compaction == nil {
					continue
				}
				v := g.Compaction.CompactStall
				if first == nil {
					first = &v
				}
				last = &v
			}
			if first == nil {
				t.Fatal("no snapshot carries /proc/vmstat's compaction counters")
			}
			t.Logf("compact_stall +%d in the session; direct compactions seen %d, %d of them skipped", *last-*first, all, skipped)
			if mech != "raw_tp" && all-skipped != *last-*first {
				t.Errorf("%s: %d direct compactions not skipped, the kernel's compact_stall grew by %d", mech, all-skipped, *last-*first)
			}
			var after int
			for _, o := range OfType(s.objs, "task_mem_stalls") {
				var ts guestTaskStalls
				if err := json.Unmarshal(o.Raw, &ts); err != nil {
					t.Fatal(err)
				}
				for _, st := range ts.Stalls {
					if st.Kind == "direct_compaction" && ts.Task.CgroupPath == "/fragmenter" {
						after++
						break
					}
				}
			}
			if after == 0 {
				t.Errorf("no failure of the workload came with its task's direct compaction stalls (%d alloc_fail)", len(OfType(s.objs, "alloc_fail")))
			}
			t.Logf("%d failures with the task's direct compaction stalls", after)
			if mech == "fentry" {
				e.saveFixture(t, "compaction-stalls-6.12.trace", s.trace)
			}
			checkReplay(t, e, s)
		})
	}
	if sc := string(res.Files["scenario.log"]); !strings.Contains(sc, "compact_stall") {
		t.Logf("scenario log:\n%s", sc)
	}
}
