package snapshot

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fragscope/fragscope/internal/procfs"
)

const fixtures = "../../testdata/procfs"

func take(t testing.TB, tree string) *Snapshot {
	t.Helper()
	s, err := Take(filepath.Join(fixtures, tree))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func zone(t testing.TB, s *Snapshot, name string) *Zone {
	t.Helper()
	for i := range s.Zones {
		if s.Zones[i].Name == name {
			return &s.Zones[i]
		}
	}
	t.Fatalf("no zone %s", name)
	return nil
}

func TestTakeLiveFixture(t *testing.T) {
	s := take(t, "live-6.18")
	if s.PageblockOrder != 9 || s.Threshold() != 500 {
		t.Errorf("pageblock order %d, threshold %d", s.PageblockOrder, s.Threshold())
	}
	var names []string
	for _, z := range s.Zones {
		names = append(names, z.Name)
	}
	if want := []string{"DMA", "DMA32", "Normal", "Movable", "Device"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("zones %v, want %v", names, want)
	}
	n := zone(t, s, "Normal")
	if !n.HaveWatermarks || n.Min == 0 || n.Managed == 0 || len(n.FreeBlocks) != 11 {
		t.Errorf("Normal = %+v", n)
	}
	if n.FreeByMigratetype["Movable"] == nil || n.PageblocksByMigratetype["Unmovable"] == 0 {
		t.Errorf("Normal migratetypes missing: %v %v", n.FreeByMigratetype, n.PageblocksByMigratetype)
	}
	if mv := zone(t, s, "Movable"); !mv.Empty() || mv.Verdict(0) != VerdictNone {
		t.Errorf("Movable not empty: %+v", mv)
	}
}

// The fixture's debugfs files were read together with its buddyinfo (same
// buddyinfo before and after): our indices must equal the kernel's exactly.
func TestIndicesMatchKernelFixture(t *testing.T) {
	s := take(t, "live-6.18")
	for _, f := range []string{"extfrag_index", "unusable_index"} {
		b, err := os.ReadFile(filepath.Join(fixtures, "live-6.18/sys/kernel/debug/extfrag", f))
		if err != nil {
			t.Fatal(err)
		}
		kern, err := procfs.ParseExtfrag(strings.NewReader(string(b)), f)
		if err != nil {
			t.Fatal(err)
		}
		if d := compareIndices(s, kern, f == "unusable_index", 0); d != "" {
			t.Errorf("%s: %s", f, d)
		}
	}
}

// compareIndices returns "" when every kernel value is within tol of ours.
func compareIndices(s *Snapshot, kern []procfs.ZoneIndex, unusable bool, tol int) string {
	var bad []string
	for _, k := range kern {
		z := find(s.Zones, k.Node, k.Zone)
		if z == nil {
			return "kernel has zone " + k.Zone + ", snapshot does not"
		}
		for o, want := range k.Index {
			got := z.FragIndex(o)
			if unusable {
				got = z.Unusable(o)
			}
			if d := got - want; d < -tol || d > tol {
				bad = append(bad, k.Zone+" order "+FormatIndex(o*1000)+": ours "+FormatIndex(got)+" kernel "+FormatIndex(want))
			}
		}
	}
	return strings.Join(bad, "; ")
}

func TestTakeIncident(t *testing.T) {
	s := take(t, "incident-failing")
	if s.PageblockOrder != 0 || s.Threshold() != DefaultExtfragThreshold {
		t.Errorf("no pagetypeinfo/sysctl in tree, got order %d threshold %d", s.PageblockOrder, s.Threshold())
	}
	n := zone(t, s, "Normal")
	if n.FreePages() != 67045 || n.NrFree != 67045 || n.Min != 13884 || n.LargestFreeOrder() != 3 {
		t.Errorf("Normal = %+v, free %d, largest %d", n, n.FreePages(), n.LargestFreeOrder())
	}
	if n.FreeByMigratetype != nil {
		t.Error("FreeByMigratetype set without pagetypeinfo")
	}
	if got := zone(t, s, "DMA32").FragIndex(6); got != 974 {
		t.Errorf("DMA32 order 6 index %d, want 974", got)
	}
}

func TestTakeErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Take(dir); err == nil || !strings.Contains(err.Error(), "buddyinfo") {
		t.Errorf("missing buddyinfo: %v", err)
	}
	os.MkdirAll(filepath.Join(dir, "proc"), 0o755)
	os.WriteFile(filepath.Join(dir, "proc/buddyinfo"), []byte("Node 0, zone DMA 1\nNode 0, zone Normal 1 x\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "proc/zoneinfo"), []byte("Node 0, zone DMA\n"), 0o644)
	_, err := Take(dir)
	if err == nil || !strings.Contains(err.Error(), "buddyinfo line 2") {
		t.Errorf("malformed buddyinfo: %v", err)
	}
	// A zone only buddyinfo knows is kept, without watermarks.
	os.WriteFile(filepath.Join(dir, "proc/buddyinfo"), []byte("Node 0, zone DMA 1\nNode 1, zone Normal 0 1\n"), 0o644)
	s, err := Take(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Zones) != 2 || s.Zones[1].HaveWatermarks || s.Zones[1].Verdict(1) != VerdictOK {
		t.Errorf("zones = %+v", s.Zones)
	}
}

func TestTakeWithSkip(t *testing.T) {
	s, err := TakeWith(filepath.Join(fixtures, "live-6.18"), Options{SkipPagetypeinfo: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.PageblockOrder != 0 || zone(t, s, "Normal").FreeByMigratetype != nil {
		t.Error("pagetypeinfo read despite SkipPagetypeinfo")
	}
}

// BenchmarkTake measures one live snapshot. Take runs every interval and on
// every failure event; as root it includes /proc/pagetypeinfo, which walks
// every free list under the zone lock and dominates the cost.
func BenchmarkTake(b *testing.B) {
	if _, err := os.ReadFile("/proc/buddyinfo"); err != nil {
		b.Skip("no readable /proc/buddyinfo:", err)
	}
	for b.Loop() {
		if _, err := Take(""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTakeSkipPagetypeinfo is the hot-path variant.
func BenchmarkTakeSkipPagetypeinfo(b *testing.B) {
	if _, err := os.ReadFile("/proc/buddyinfo"); err != nil {
		b.Skip("no readable /proc/buddyinfo:", err)
	}
	for b.Loop() {
		if _, err := TakeWith("", Options{SkipPagetypeinfo: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// Take carries what internal/allocrule needs: the protection lines, and the
// HighAtomic reserve from pagetypeinfo's pageblock counts.
func TestTakeAllocruleFields(t *testing.T) {
	s := take(t, "live-6.18")
	if p := zone(t, s, "DMA").Protection; len(p) != 5 || p[2] != 4810 {
		t.Errorf("DMA protection %v, want the zoneinfo line (0, 3018, 4810, 4810, 4810)", p)
	}
	if n := zone(t, s, "Normal"); n.ReservedHighatomic != 0 || n.FreeCMA != 0 {
		t.Errorf("Normal highatomic %d cma %d, want 0 (no HighAtomic pageblocks, no CMA)", n.ReservedHighatomic, n.FreeCMA)
	}
	// One HighAtomic pageblock of order 9 is 512 pages reserved.
	p := &Snapshot{PageblockOrder: 9, Zones: []Zone{{Name: "Normal"}}}
	applyPagetypeinfo(p, &procfs.Pagetypeinfo{PageblockOrder: 9,
		Blocks: []procfs.PageblockCount{{Zone: "Normal", Blocks: map[string]uint64{"HighAtomic": 1}}}})
	if z := p.Zones[0]; z.ReservedHighatomic != 512 {
		t.Errorf("ReservedHighatomic %d, want 512", z.ReservedHighatomic)
	}
}
