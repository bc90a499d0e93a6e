package procfs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// addFixtures seeds f with fixture files, on top of the committed corpus in
// testdata/fuzz/<FuzzName>.
func addFixtures(f *testing.F, rels ...string) {
	for _, rel := range rels {
		b, err := os.ReadFile(filepath.Join(fixtures, rel))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseBuddyinfo(f *testing.F) {
	addFixtures(f, "live-6.18/proc/buddyinfo", "incident-failing/proc/buddyinfo", "incident-healthy/proc/buddyinfo")
	f.Fuzz(func(t *testing.T, in []byte) {
		zs, err := ParseBuddyinfo(bytes.NewReader(in))
		if err != nil {
			return
		}
		for _, z := range zs {
			if len(z.Free) == 0 || z.Zone == "" {
				t.Fatalf("accepted zone without name or columns: %+v", z)
			}
		}
	})
}

func FuzzParseZoneinfo(f *testing.F) {
	addFixtures(f, "live-6.18/proc/zoneinfo", "incident-failing/proc/zoneinfo")
	f.Fuzz(func(t *testing.T, in []byte) {
		zs, err := ParseZoneinfo(bytes.NewReader(in))
		if err != nil {
			return
		}
		for _, z := range zs {
			if z.Zone == "" {
				t.Fatalf("accepted zone without name: %+v", z)
			}
		}
	})
}

func FuzzParsePagetypeinfo(f *testing.F) {
	addFixtures(f, "live-6.18/proc/pagetypeinfo")
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := ParsePagetypeinfo(bytes.NewReader(in))
		if err != nil {
			return
		}
		if p.PageblockOrder < -1 || p.PageblockOrder >= 64 {
			t.Fatalf("pageblock order %d", p.PageblockOrder)
		}
		for _, r := range p.Free {
			if len(r.Free) == 0 || r.Type == "" {
				t.Fatalf("accepted empty row %+v", r)
			}
		}
	})
}

func FuzzParseMemInfo(f *testing.F) {
	addFixtures(f, "meminfo/incident-page-alloc-failure.log", "meminfo/old-format-no-types.log")
	f.Fuzz(func(t *testing.T, in []byte) {
		ls, err := ParseMemInfoFreeLists(bytes.NewReader(in))
		if err != nil {
			return
		}
		for _, l := range ls {
			if len(l.Free) == 0 || len(l.Free) != len(l.Types) || l.PageKB == 0 || l.Zone == "" {
				t.Fatalf("inconsistent result %+v", l)
			}
			_ = l.SumKB()
		}
	})
}

func FuzzParseExtfrag(f *testing.F) {
	addFixtures(f, "live-6.18/sys/kernel/debug/extfrag/extfrag_index", "live-6.18/sys/kernel/debug/extfrag/unusable_index")
	f.Add([]byte("Node 0, zone DMA32 -1.000 0.970 0.-500 1.000\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		zs, err := ParseExtfrag(bytes.NewReader(in), "extfrag_index")
		if err != nil {
			return
		}
		for _, z := range zs {
			for _, v := range z.Index {
				if v < -1000999 || v > 1000999 {
					t.Fatalf("index %d out of range", v)
				}
			}
		}
	})
}
