package probes

import (
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkPageAllocHook measures what the page_alloc program costs per
// mm_page_alloc event, as the kernel accounts it (BPF run-time stats), for
// each mechanism and attribution setting. Wall-clock workload timings on a
// shared VM swing by hundreds of ns per page; the kernel's own accounting
// of the program does not. It excludes the attach mechanism's dispatch
// (measured separately by the overhead command of make bench).
func BenchmarkPageAllocHook(b *testing.B) {
	runtimeStats(b)
	// The kernel's accounting itself costs two clock reads per run: an
	// empty program on the same tracepoint shows that floor.
	b.Run("empty-raw_tp", func(b *testing.B) {
		prog := emptyRawTp(b, "mm_page_alloc")
		before, _ := prog.Stats()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			populate(b)
		}
		b.StopTimer()
		after, _ := prog.Stats()
		if runs := after.RunCount - before.RunCount; runs > 0 {
			b.ReportMetric(float64(after.Runtime-before.Runtime)/float64(runs), "prog-ns/event")
			b.ReportMetric(float64(runs)/float64(b.N), "events/op")
		}
	})
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"raw_tp", Options{Modes: map[Hook]Mechanism{HookPageAlloc: RawTp}}},
		{"tp_btf", Options{Modes: map[Hook]Mechanism{HookPageAlloc: TpBTF}}},
		{"tracepoint", Options{Modes: map[Hook]Mechanism{HookPageAlloc: Tracepoint}}},
		{"raw_tp/no-attribution", Options{Modes: map[Hook]Mechanism{HookPageAlloc: RawTp}, NoAttribution: true}},
		{"raw_tp/attribute-all", Options{Modes: map[Hook]Mechanism{HookPageAlloc: RawTp}, AttributeAll: true}},
		{"raw_tp/v1-memcg-all", Options{Modes: map[Hook]Mechanism{HookPageAlloc: RawTp}, AttributeAll: true, CgroupV1Memory: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			c.opts.Hooks = []Hook{HookPageAlloc}
			s, err := Open(c.opts)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if !s.Attached(HookPageAlloc) {
				b.Fatalf("page_alloc not attached: %+v", s.Status)
			}
			before, err := s.ProgramStats()
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				populate(b)
			}
			b.StopTimer()
			after, err := s.ProgramStats()
			if err != nil {
				b.Fatal(err)
			}
			for name, st := range after {
				runs := st.RunCount - before[name].RunCount
				if runs == 0 {
					continue
				}
				ns := float64(st.Runtime-before[name].Runtime) / float64(runs)
				b.ReportMetric(ns, "prog-ns/event")
				b.ReportMetric(float64(runs)/float64(b.N), "events/op")
			}
		})
	}
}

// populate maps and populates 16 MiB: 4096 order-0 allocations.
func populate(b *testing.B) {
	m, err := unix.Mmap(-1, 0, 16<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		b.Fatal(err)
	}
	unix.Munmap(m)
}
