package probes

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/workload"
)

// memcgPageCache writes mib MiB of page cache inside the memory cgroup dir
// limited to limit bytes (workload.PageCache).
func memcgPageCache(t *testing.T, dir string, limit, mib int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.Itoa(limit)), 0); err != nil {
		t.Fatalf("set the memory limit: %v", err)
	}
	f := filepath.Join(t.TempDir(), "pagecache")
	if out, err := workload.PageCache([]string{dir}, f, mib).CombinedOutput(); err != nil {
		t.Fatalf("page cache writer in %s: %v\n%s", dir, err, out)
	}
	os.Remove(f)
}

// A memory cgroup limited to 32 MiB writing 400 MiB of page cache reclaims
// at its limit: the memcg_reclaim histogram names that cgroup, with the
// raw_tp twins and with the classic tracepoint ones (fields at the format
// file's offsets).
func TestMemcgReclaimStalls(t *testing.T) {
	requireRoot(t)
	for _, m := range []Mechanism{RawTp, Tracepoint} {
		t.Run(string(m), func(t *testing.T) {
			dir, id := cgroupDir(t, "/sys/fs/cgroup/memory")
			s := openSet(t, Options{Hooks: []Hook{HookCompaction, HookReclaim}, CgroupV1Memory: true,
				Modes: map[Hook]Mechanism{HookCompaction: m, HookReclaim: m}})
			for _, h := range []Hook{HookCompaction, HookReclaim} {
				if !s.Attached(h) {
					t.Fatalf("%s not attached: %+v", h, s.Status)
				}
			}
			memcgPageCache(t, dir, 32<<20, 400)
			st, ok, err := s.MemStalls()
			if err != nil || !ok {
				t.Fatalf("MemStalls: ok=%v err=%v", ok, err)
			}
			c := st.Stalls[StallKey{CgroupID: id, Kind: event.StallMemcgReclaim, Order: 0}]
			var inBuckets uint64
			for _, n := range c.Buckets {
				inBuckets += n
			}
			t.Logf("cgroup %d memcg reclaim: %d stalls, %d ns, %d pages reclaimed", id, c.Count, c.TotalNs, c.Reclaimed)
			if c.Count == 0 || c.TotalNs == 0 || c.Reclaimed == 0 {
				t.Fatalf("no memcg reclaim stalls counted for cgroup %s (id %d): %+v; keys: %v", dir, id, c, keys(st.Stalls))
			}
			if inBuckets != c.Count {
				t.Errorf("histogram holds %d stalls, count %d", inBuckets, c.Count)
			}
			// Each writer's entry keeps its ring of recent stalls after the
			// writer exited (the incident of a failure reads it later), and
			// no stall is left in flight.
			var (
				tid     uint32
				ts      memstallTaskStalls
				writers int
			)
			it := s.stallMaps["stalls_by_task"].Iterate()
			for it.Next(&tid, &ts) {
				if ts.CgroupId != id {
					continue
				}
				writers++
				if ts.Kind != 0 {
					t.Errorf("task %d: a stall of kind %d still in flight after the workload", tid, ts.Kind)
				}
				rs, err := s.RecentStalls(tid)
				if err != nil {
					t.Fatal(err)
				}
				if len(rs) == 0 || rs[len(rs)-1].Kind != event.StallMemcgReclaim || rs[len(rs)-1].DurNs == 0 {
					t.Errorf("task %d: recent stalls %+v, want memcg reclaims", tid, rs)
				}
			}
			if err := it.Err(); err != nil {
				t.Fatal(err)
			}
			if writers == 0 {
				t.Errorf("no task of cgroup %d kept its recent stalls", id)
			}
			t.Logf("%d exited writers kept their recent stalls", writers)
			// No direct compaction was opened by this workload, so none may
			// stay open: the mm_page_alloc closer's gate is shut again.
			var open uint64
			if err := s.stallMaps["open_compactions"].Lookup(uint32(0), &open); err != nil {
				t.Fatal(err)
			}
			if open != 0 {
				t.Errorf("%d direct compactions still open after the workload", open)
			}
		})
	}
}

func keys(m map[StallKey]StallCounts) []StallKey {
	var out []StallKey
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Forced to an exit probe, the compaction hook attaches with it or says in
// one line why not (fentry refused with EPERM and no kprobes here, on the
// development machine); the reclaim hook has no exit-probe mechanism.
func TestCompactionExitProbeOrReason(t *testing.T) {
	requireRoot(t)
	for _, m := range []Mechanism{Fentry, Kprobe} {
		s := openSet(t, Options{Hooks: []Hook{HookCompaction}, Modes: map[Hook]Mechanism{HookCompaction: m}})
		st := s.Status[0]
		switch {
		case st.Attached && (st.Mechanism != string(m) || !strings.Contains(st.Target, "try_to_compact_pages")):
			t.Errorf("%s: attached as %s on %q", m, st.Mechanism, st.Target)
		case !st.Attached && (st.Reason == "" || strings.Contains(st.Reason, "\n") || !strings.HasPrefix(st.Reason, string(m)+": ")):
			t.Errorf("%s: not attached, reason %q", m, st.Reason)
		}
		s.Close()
	}
	if _, err := ParseModes("reclaim=fentry"); err == nil {
		t.Error("reclaim=fentry accepted")
	}
}
