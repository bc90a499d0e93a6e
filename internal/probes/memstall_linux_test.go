package probes

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

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

// The raw_tp twin is picked by the kernel's prototype: the arguments a
// program reads must be where it reads them with the type it reads, by BTF;
// arguments added after them do not matter. The prototypes are the Debian
// 5.10, 6.18 and 7.3 kernels' (their BTF), plus ones no twin fits.
func TestRawTwinByPrototype(t *testing.T) {
	var (
		data   = &btf.Pointer{Target: &btf.Void{}}
		intT   = &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
		ulong  = &btf.Int{Name: "long unsigned int", Size: 8}
		gfp    = &btf.Typedef{Name: "gfp_t", Type: &btf.Int{Name: "unsigned int", Size: 4}}
		boolT  = &btf.Typedef{Name: "bool", Type: &btf.Int{Name: "_Bool", Size: 1, Encoding: btf.Bool}}
		cc     = &btf.Pointer{Target: &btf.Struct{Name: "compact_control"}}
		memcg  = &btf.Pointer{Target: &btf.Struct{Name: "mem_cgroup"}}
		constI = &btf.Const{Type: intT}
	)
	proto := func(args ...btf.Type) *btf.FuncProto {
		fp := &btf.FuncProto{Return: &btf.Void{}, Params: []btf.FuncParam{{Type: data}}}
		for _, a := range args {
			fp.Params = append(fp.Params, btf.FuncParam{Type: a})
		}
		return fp
	}
	byName := map[string]memstallTP{compactCloser.name: compactCloser}
	for _, tp := range append(append([]memstallTP(nil), compactionTPs...), reclaimTPs...) {
		byName[tp.name] = tp
	}
	for _, c := range []struct {
		tp    string
		proto *btf.FuncProto
		want  string // "" = refused
	}{
		{"mm_vmscan_direct_reclaim_begin", proto(intT, gfp), "direct_reclaim_begin_raw"},
		{"mm_vmscan_direct_reclaim_begin", proto(gfp, intT, memcg), "direct_reclaim_begin_raw7"},
		{"mm_vmscan_direct_reclaim_begin", proto(intT, intT), ""}, // same count, other type
		{"mm_vmscan_direct_reclaim_begin", proto(gfp), ""},
		{"mm_vmscan_memcg_reclaim_begin", proto(gfp, intT, memcg), "memcg_reclaim_begin_raw7"},
		{"mm_vmscan_direct_reclaim_end", proto(ulong), "direct_reclaim_end_raw"},
		{"mm_vmscan_direct_reclaim_end", proto(ulong, memcg), "direct_reclaim_end_raw"},
		{"mm_compaction_end", proto(cc, ulong, ulong, boolT, intT), "zone_end_raw"},
		{"mm_compaction_end", proto(ulong, ulong, ulong, ulong, boolT, intT), "zone_end_raw515"},
		{"mm_compaction_begin", proto(ulong, ulong, ulong, ulong, boolT), "zone_begin_raw"},
		{"mm_compaction_try_to_compact_pages", proto(constI, gfp, intT), "compact_begin_raw"},
		{"compact_retry", proto(intT, intT, intT, intT, intT, boolT), "compact_retry_raw"},
		{"compact_retry", proto(intT, intT, intT, intT, intT), ""},
	} {
		got, err := byName[c.tp].rawProgram(c.proto)
		switch {
		case c.want != "" && (err != nil || got != c.want):
			t.Errorf("%s %v: %q, %v; want %s", c.tp, c.proto.Params[1:], got, err, c.want)
		case c.want == "" && (err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "raw_tp programs read")):
			t.Errorf("%s %v: %q, %v; want a one-line refusal", c.tp, c.proto.Params[1:], got, err)
		case c.want == "":
			t.Logf("refused: %v", err)
		}
	}
}

// Every program the loader may pick is in the object.
func TestMemstallProgramsExist(t *testing.T) {
	spec, err := loadMemstall()
	if err != nil {
		t.Fatal(err)
	}
	progs := []string{fmt.Sprintf("compact_fexit%d", compactExitParams), "compact_kretprobe"}
	for _, tp := range append(append([]memstallTP{compactCloser}, compactionTPs...), reclaimTPs...) {
		progs = append(progs, tp.prog+"_tp")
		for _, twin := range tp.raw {
			progs = append(progs, twin.prog)
		}
	}
	for _, p := range progs {
		if spec.Programs[p] == nil {
			t.Errorf("no program %s in memstall.bpf.c", p)
		}
	}
}
