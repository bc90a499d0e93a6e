package probes

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/bench"
	"github.com/fragscope/fragscope/internal/workload"
)

// runtimeStats turns the kernel's BPF run-time accounting on for the
// benchmark, skipping it without root or on kernels before 5.8.
func runtimeStats(b *testing.B) {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("needs root to load BPF")
	}
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		b.Skipf("kernel cannot keep BPF run-time stats (Linux 5.8+): %v", err)
	}
	b.Cleanup(func() { stats.Close() })
}

// emptyRawTp attaches a do-nothing raw_tp program to a tracepoint: with BPF
// run-time stats on, its ns/event is the accounting's own floor (two clock
// reads), which the programs measured beside it also pay.
func emptyRawTp(b *testing.B, tp string) *ebpf.Program {
	b.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.RawTracepoint, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		b.Fatal(err)
	}
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: tp, Program: prog})
	if err != nil {
		prog.Close()
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close(); prog.Close() })
	return prog
}

type progCost struct{ ns, runs float64 }

func statsOf(p *ebpf.Program) ebpf.ProgramStats {
	st, err := p.Stats()
	if err != nil {
		return ebpf.ProgramStats{}
	}
	return *st
}

func cost(before, after ebpf.ProgramStats) progCost {
	runs := float64(after.RunCount - before.RunCount)
	if runs == 0 {
		return progCost{}
	}
	return progCost{ns: float64(after.Runtime-before.Runtime) / runs, runs: runs}
}

// measure runs work with the set's programs and the empty twins attached
// and returns each one's ns/event over it.
func measure(b *testing.B, s *Set, empties map[string]*ebpf.Program, work func()) map[string]progCost {
	b.Helper()
	before, err := s.ProgramStats()
	if err != nil {
		b.Fatal(err)
	}
	eb := map[string]ebpf.ProgramStats{}
	for n, p := range empties {
		eb[n] = statsOf(p)
	}
	work()
	after, err := s.ProgramStats()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]progCost{}
	for n, st := range after {
		out[n] = cost(before[n], st)
	}
	for n, p := range empties {
		out[n] = cost(eb[n], statsOf(p))
	}
	return out
}

// BenchmarkStallHooks measures, as the kernel accounts BPF programs, what
// the compaction and reclaim hooks add: per memcg reclaim event (a 32 MiB
// memory cgroup writing page cache), and on the page allocation hot path,
// where the mm_page_alloc closer of direct compactions runs on every
// allocation. Each round measures page_alloc alone and page_alloc with the
// stall hooks beside it, each next to an empty raw_tp twin on the same
// tracepoint; the medians over the rounds are reported.
func BenchmarkStallHooks(b *testing.B) {
	runtimeStats(b)
	cg := filepath.Join("/sys/fs/cgroup/memory", "fragscope-bench-"+strconv.Itoa(os.Getpid()))
	memcg := true
	if err := os.Mkdir(cg, 0o755); err != nil {
		memcg = false // no v1 memory hierarchy: the reclaim half is skipped
	} else {
		defer os.Remove(cg)
		os.WriteFile(filepath.Join(cg, "memory.limit_in_bytes"), []byte(strconv.Itoa(32<<20)), 0)
	}
	file := filepath.Join(b.TempDir(), "pagecache")
	empties := map[string]*ebpf.Program{
		"empty_page_alloc":  emptyRawTp(b, "mm_page_alloc"),
		"empty_memcg_begin": emptyRawTp(b, "mm_vmscan_memcg_reclaim_begin"),
		"empty_memcg_end":   emptyRawTp(b, "mm_vmscan_memcg_reclaim_end"),
	}
	series := map[string][]float64{}
	add := func(name string, c progCost) {
		if c.runs > 0 {
			series[name] = append(series[name], c.ns)
		}
	}
	rounds := max(b.N, 7)
	b.ResetTimer()
	for range rounds {
		alone, err := Open(Options{Hooks: []Hook{HookPageAlloc}, Modes: map[Hook]Mechanism{HookPageAlloc: RawTp}})
		if err != nil {
			b.Fatal(err)
		}
		c := measure(b, alone, empties, func() {
			for range 4 {
				populate(b)
			}
		})
		alone.Close()
		add("page_alloc-alone", c["page_alloc_raw"])
		add("empty-alone", c["empty_page_alloc"])

		with, err := Open(Options{Hooks: []Hook{HookPageAlloc, HookCompaction, HookReclaim},
			Modes: map[Hook]Mechanism{HookPageAlloc: RawTp, HookCompaction: RawTp, HookReclaim: RawTp}, CgroupV1Memory: true})
		if err != nil {
			b.Fatal(err)
		}
		if !with.Attached(HookCompaction) || !with.Attached(HookReclaim) {
			b.Fatalf("stall hooks not attached: %+v", with.Status)
		}
		c = measure(b, with, empties, func() {
			for range 4 {
				populate(b)
			}
		})
		add("page_alloc-with-stall-hooks", c["page_alloc_raw"])
		add("compact_close", c["compact_close_raw"])
		add("empty-with", c["empty_page_alloc"])
		if memcg {
			c = measure(b, with, empties, func() {
				if out, err := workload.PageCache([]string{cg}, file, 128).CombinedOutput(); err != nil {
					b.Fatalf("dd: %v %s", err, out)
				}
				os.Remove(file)
			})
			add("memcg_reclaim_begin", c["memcg_reclaim_begin_raw"])
			add("memcg_reclaim_end", c["memcg_reclaim_end_raw"])
			add("empty_memcg_begin", c["empty_memcg_begin"])
			add("empty_memcg_end", c["empty_memcg_end"])
		}
		with.Close()
	}
	b.StopTimer()
	for name, xs := range series {
		b.ReportMetric(bench.Median(xs), name+"-ns/event")
	}
}
