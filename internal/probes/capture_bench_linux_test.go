package probes

import (
	"errors"
	"math"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// BenchmarkFailureCapture: what reading the free lists at a failure
// (emit_zone_capture) adds to the failure path. The raw_tp twin of
// page_alloc is loaded twice, capturing at every failure (capture_gap_ns
// 0) and at none after the first (the largest gap), and run with a failing
// mm_page_alloc's arguments through BPF_PROG_TEST_RUN; the kernel's
// run-time stats time each. Needs a kernel whose kallsyms lists node_data
// or contig_page_data (CONFIG_KALLSYMS_ALL: the Debian guests, not this
// development host), else it is skipped.
func BenchmarkFailureCapture(b *testing.B) {
	runtimeStats(b)
	if err := Probe().FreeListCapture(); err != nil {
		b.Skip(err)
	}
	progs := map[string]*ebpf.Program{}
	for name, gap := range map[string]uint64{"with-capture": 0, "without-capture": math.MaxUint64} {
		spec, err := loadPagealloc()
		if err != nil {
			b.Fatal(err)
		}
		if err := spec.Variables["capture_gap_ns"].Set(gap); err != nil {
			b.Fatal(err)
		}
		for p := range spec.Programs {
			if p != "page_alloc_raw" {
				delete(spec.Programs, p)
			}
		}
		coll, err := ebpf.NewCollection(spec)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { coll.Close() })
		// Drained as the runs go, so no reserve fails (a dropped record
		// would cost less than a written one).
		rd, err := ringbuf.NewReader(coll.Maps["events"])
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				if _, err := rd.Read(); errors.Is(err, ringbuf.ErrClosed) {
					return
				}
			}
		}()
		b.Cleanup(func() { rd.Close(); <-done })
		progs[name] = coll.Programs["page_alloc_raw"]
	}
	// struct page *page (NULL: failed), order 6, GFP_KERNEL|__GFP_NORETRY
	// on 6.x, MIGRATE_UNMOVABLE.
	args := []uint64{0, 6, 0xcc0 | 0x10000, 0}
	before := map[string]ebpf.ProgramStats{}
	for name, p := range progs {
		before[name] = statsOf(p)
	}
	const perRound = 1000
	b.ResetTimer()
	for range b.N {
		for range perRound {
			for _, p := range progs {
				if _, err := p.Run(&ebpf.RunOptions{Context: args}); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.StopTimer()
	ns := map[string]float64{}
	for name, p := range progs {
		c := cost(before[name], statsOf(p))
		ns[name] = c.ns
		b.ReportMetric(c.ns, name+"-ns/failure")
	}
	b.ReportMetric(ns["with-capture"]-ns["without-capture"], "capture-ns")
}
