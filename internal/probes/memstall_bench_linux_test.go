package probes

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/fragscope/fragscope/internal/bench"
	"github.com/fragscope/fragscope/internal/event"
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

// twinRawTp loads insns as a raw_tp program and attaches it to tp for the
// benchmark's duration.
func twinRawTp(b *testing.B, tp string, insns asm.Instructions) *ebpf.Program {
	b.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.RawTracepoint, License: "GPL", Instructions: insns})
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

// emptyRawTp attaches a do-nothing raw_tp program to a tracepoint: with BPF
// run-time stats on, its ns/event is the accounting's own floor (two clock
// reads), which the programs measured beside it also pay.
func emptyRawTp(b *testing.B, tp string) *ebpf.Program {
	return twinRawTp(b, tp, asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()})
}

// oneSlotRawTp attaches a raw_tp program that writes one slot of a
// one-entry array map: the least a begin must do (remember a start), in a
// line every event reuses and so keeps cached. Beside it, what a stall
// program costs over the empty twin is the lines of per-task and per-cgroup
// state it finds cold after the work between two stalls.
func oneSlotRawTp(b *testing.B, tp string) *ebpf.Program {
	b.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 64, MaxEntries: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return twinRawTp(b, tp, asm.Instructions{
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	})
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
// tracepoint (and a one-slot twin at memcg_reclaim_begin), and the mean
// memcg reclaim stall those events timed, for scale; the medians over the
// rounds are reported.
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
		"empty_page_alloc":     emptyRawTp(b, "mm_page_alloc"),
		"empty_memcg_begin":    emptyRawTp(b, "mm_vmscan_memcg_reclaim_begin"),
		"empty_memcg_end":      emptyRawTp(b, "mm_vmscan_memcg_reclaim_end"),
		"one_slot_memcg_begin": oneSlotRawTp(b, "mm_vmscan_memcg_reclaim_begin"),
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
			dd := func() {
				if out, err := workload.PageCache([]string{cg}, file, 128).CombinedOutput(); err != nil {
					b.Fatalf("dd: %v %s", err, out)
				}
				os.Remove(file)
			}
			dd() // warm-up: a map's first use on each CPU is not the steady state
			st0, _, _ := with.MemStalls()
			c = measure(b, with, empties, dd)
			st1, _, _ := with.MemStalls()
			add("memcg_reclaim_begin", c["memcg_reclaim_begin_raw"])
			add("memcg_reclaim_end", c["memcg_reclaim_end_raw"])
			add("empty_memcg_begin", c["empty_memcg_begin"])
			add("empty_memcg_end", c["empty_memcg_end"])
			add("one_slot_memcg_begin", c["one_slot_memcg_begin"])
			// The stalls timed, for scale: the bookkeeping against what it times.
			var n, ns uint64
			for k, v := range st1.Stalls {
				if k.Kind == event.StallMemcgReclaim {
					n += v.Count - st0.Stalls[k].Count
					ns += v.TotalNs - st0.Stalls[k].TotalNs
				}
			}
			if n > 0 {
				series["memcg_reclaim_stall"] = append(series["memcg_reclaim_stall"], float64(ns)/float64(n))
			}
		}
		with.Close()
	}
	b.StopTimer()
	for name, xs := range series {
		b.ReportMetric(bench.Median(xs), name+"-ns/event")
	}
}

// emptyFexit attaches a do-nothing fexit to a kernel function, the floor
// beside which an fexit program's cost is read; nil where the kernel
// refuses trampolines.
func emptyFexit(b *testing.B, fn string) *ebpf.Program {
	b.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.Tracing, AttachType: ebpf.AttachTraceFExit, AttachTo: fn, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		b.Logf("no empty fexit on %s: %v", fn, err)
		return nil
	}
	l, err := link.AttachTracing(link.TracingOptions{Program: prog})
	if err != nil {
		prog.Close()
		b.Logf("no empty fexit on %s: %v", fn, err)
		return nil
	}
	b.Cleanup(func() { l.Close(); prog.Close() })
	return prog
}

// startHeld runs a shell command in the background until it prints a line
// "held", and kills it when the benchmark ends.
func startHeld(b *testing.B, command string) {
	b.Helper()
	cmd := exec.Command("sh", "-c", command)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("%s: %v", command, err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		b.Logf("%s: %s", command, sc.Text())
		if sc.Text() == "held" {
			go io.Copy(io.Discard, out)
			return
		}
	}
	b.Fatalf("%s ended before holding", command)
}

// BenchmarkCompactionHooks measures, as the kernel accounts BPF programs,
// what each program of the compaction hook costs per event, for every
// mechanism of the hook, beside do-nothing twins: a raw_tp on each
// tracepoint the hook uses and an fexit on try_to_compact_pages. The
// workload asks for order-6 AF_PACKET ring blocks, which compact directly
// only where free memory is fragmented: BenchmarkVMCompactionHooks
// (internal/vmtest) runs this in a QEMU guest, with
// FRAGSCOPE_BENCH_FRAGMENTER naming the command that fragments the guest's
// memory and prints "held"; a machine that serves the blocks without
// compacting skips after the first round.
//
// The four mechanisms' programs are attached together, each Set with its
// own maps, before the fragmenter runs: a Set opened in fragmented memory
// failed to create its maps (ENOMEM, seen in the 256 MiB guest). Medians
// over the rounds (at least 5): "raw_tp:compact_begin_raw-ns/event",
// "empty:mm_compaction_end-ns/event", "compactions/round".
func BenchmarkCompactionHooks(b *testing.B) {
	runtimeStats(b)
	empties := map[string]*ebpf.Program{}
	for _, tp := range []string{"mm_compaction_try_to_compact_pages", "mm_compaction_begin", "mm_compaction_end",
		"compact_retry", "mm_page_alloc"} {
		empties["empty:"+tp] = emptyRawTp(b, tp)
	}
	if p := emptyFexit(b, compactExitTarget); p != nil {
		empties["empty:fexit"] = p
	}
	sets := map[Mechanism]*Set{}
	for _, m := range Mechanisms[HookCompaction] {
		s, err := Open(Options{Hooks: []Hook{HookCompaction}, Modes: map[Hook]Mechanism{HookCompaction: m}})
		if err != nil {
			b.Fatal(err)
		}
		if !s.Attached(HookCompaction) {
			b.Logf("%s not measured: %s", m, s.Status[0].Reason)
			s.Close()
			continue
		}
		sets[m] = s
		b.Cleanup(func() { s.Close() })
	}
	if cmd := os.Getenv("FRAGSCOPE_BENCH_FRAGMENTER"); cmd != "" {
		startHeld(b, cmd)
	}
	read := func() map[string]ebpf.ProgramStats {
		out := map[string]ebpf.ProgramStats{}
		for m, s := range sets {
			st, err := s.ProgramStats()
			if err != nil {
				b.Fatal(err)
			}
			for name, v := range st {
				out[string(m)+":"+name] = v
			}
		}
		for name, p := range empties {
			out[name] = statsOf(p)
		}
		return out
	}
	series := map[string][]float64{}
	rounds := max(b.N, 5)
	b.ResetTimer()
	for round := range rounds {
		before := read()
		// 4 MiB of 256 KiB blocks, freed at once: every round asks afresh
		// (the fragmenter holds ring blocks of its own, so that freed
		// blocks are all there is to serve these without compacting).
		fd, err := workload.PacketRing(256<<10, 16)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
		after := read()
		for name, st := range after {
			if c := cost(before[name], st); c.runs > 0 {
				series[name] = append(series[name], c.ns)
			}
		}
		n := cost(before["empty:mm_compaction_try_to_compact_pages"], after["empty:mm_compaction_try_to_compact_pages"]).runs
		series["compactions"] = append(series["compactions"], n)
		if round == 0 && n == 0 {
			b.Skip("no direct compaction: this machine served the order-6 ring blocks without compacting " +
				"(BenchmarkVMCompactionHooks measures it in a fragmented QEMU guest)")
		}
	}
	b.StopTimer()
	for name, xs := range series {
		unit := name + "-ns/event"
		if name == "compactions" {
			unit = "compactions/round"
		}
		b.ReportMetric(bench.Median(xs), unit)
	}
}
