package source

import (
	"testing"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/probes"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// Real failures on this host (memcg charges, TestRealMemcgChargeFailure's
// child) come with the kernel's capture of their node's free lists just
// before them: the zones the kernel has, named as /proc names them, the
// orders /proc shows, NR_FREE_PAGES agreeing with the captured lists, and
// watermarks spaced as zoneinfo's (the boost moves all three alike). At
// most one capture per CPU per 10 ms, so a storm has fewer captures than
// failures, never more.
func TestAtFailureCaptureOnRealFailure(t *testing.T) {
	requireRoot(t)
	if err := probes.Probe().FreeListCapture(); err != nil {
		// This development host's 6.18 is such a kernel (no
		// CONFIG_KALLSYMS_ALL); the guests' Debian kernels are not
		// (internal/vmtest TestVMFragmentation checks the capture there).
		t.Skipf("this kernel cannot be captured: %v", err)
	}
	evs, childPID := memcgChargeFailures(t)
	var (
		proc              *snapshot.Snapshot // the latest /proc snapshot
		pending           *event.MemSnapshot // an at-failure capture not followed by its failure yet
		fails, captured   int
		checkedOneCapture bool
	)
	for _, ev := range evs {
		switch e := ev.(type) {
		case *event.MemSnapshot:
			if e.Reason == snapshot.ReasonAtFailure {
				if pending != nil {
					t.Errorf("two captures in a row without a failure between (%v, %v)", pending.Snapshot.Time, e.Snapshot.Time)
				}
				pending = e
			} else {
				proc = e.Snapshot
			}
		case *event.AllocFail:
			if int(e.Task.PID) == childPID {
				fails++
			}
			c := pending
			pending = nil
			if c == nil {
				continue
			}
			if lead := e.Time.Sub(c.Snapshot.Time); lead < 0 || lead > snapshot.AtFailureLead {
				t.Errorf("capture %v before its failure", lead)
			}
			if int(e.Task.PID) != childPID {
				continue
			}
			captured++
			if proc == nil {
				t.Fatal("a capture before any /proc snapshot")
			}
			checkCapture(t, c.Snapshot, proc, !checkedOneCapture)
			checkedOneCapture = true
		}
	}
	if pending != nil {
		t.Errorf("a capture at %v never followed by its failure", pending.Snapshot.Time)
	}
	t.Logf("%d failures of the child, %d with a capture", fails, captured)
	if fails == 0 {
		t.Fatal("the child's charges did not fail")
	}
	if captured == 0 {
		t.Error("no failure of the child has an at-failure capture")
	}
}

func checkCapture(t *testing.T, c, proc *snapshot.Snapshot, log bool) {
	t.Helper()
	var procZones []snapshot.Zone
	for _, z := range proc.Zones {
		if z.Node == c.Zones[0].Node {
			procZones = append(procZones, z)
		}
	}
	if len(c.Zones) != len(procZones) {
		t.Fatalf("captured %d zones, /proc lists %d on node %d", len(c.Zones), len(procZones), c.Zones[0].Node)
	}
	for i, z := range c.Zones {
		p := procZones[i]
		if z.Name != p.Name || len(z.FreeBlocks) != len(p.FreeBlocks) || z.Managed != p.Managed {
			t.Errorf("zone %d captured as %s with %d orders, managed %d; /proc: %s, %d, %d",
				i, z.Name, len(z.FreeBlocks), z.Managed, p.Name, len(p.FreeBlocks), p.Managed)
			continue
		}
		if log {
			t.Logf("%s: captured free %v (%d pages, NR_FREE_PAGES %d, min %d); /proc before: %v (%d pages)",
				z.Name, z.FreeBlocks, z.FreePages(), z.NrFree, z.Min, p.FreeBlocks, p.FreePages())
		}
		if p.Managed == 0 {
			continue
		}
		// NR_FREE_PAGES trails the free lists by per-CPU counter drift
		// (vmstat thresholds of at most 125 pages a CPU) and by what
		// changed while the lists were read.
		if d := int64(z.NrFree) - int64(z.FreePages()); d > 4096 || d < -4096 {
			t.Errorf("%s: NR_FREE_PAGES %d against %d pages on the captured lists", z.Name, z.NrFree, z.FreePages())
		}
		if z.Min == 0 || z.Low-z.Min != p.Low-p.Min || z.High-z.Low != p.High-p.Low {
			t.Errorf("%s: watermarks %d/%d/%d, zoneinfo's %d/%d/%d", z.Name, z.Min, z.Low, z.High, p.Min, p.Low, p.High)
		}
	}
}
