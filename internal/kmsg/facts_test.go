package kmsg

import (
	"path/filepath"
	"testing"
)

// zoneFact is one zone's expected numbers; lfo is the largest free order
// (-1: no free block at all; -2: no free-list line read).
type zoneFact struct {
	node     int
	zone     string
	lfo      int
	aboveMin bool
}

// TestCorpusFacts checks the numbers testdata/kmsg/README.md reasons from.
func TestCorpusFacts(t *testing.T) {
	facts := []struct {
		file  string
		kind  Kind
		order int
		zones []zoneFact
	}{
		{"001-seed-rhel7-nf_conntrack.log", KindPageAllocFailure, 6, []zoneFact{{0, "DMA", 10, true}, {0, "DMA32", 3, true}, {0, "Normal", 5, true}}},
		{"002-moby-31037-rhel74-kmem.log", KindMemInfo, -1, []zoneFact{{0, "DMA", 10, false}, {0, "DMA32", 3, false}, {0, "Normal", 2, false}}},
		{"003-moby-40835-runc-child-order4.log", KindPageAllocFailure, 4, nil},
		{"004-coreos-1106-java-atomic-4.9.log", KindPageAllocFailure, 0, nil},
		{"005-dm-writeboost-72-order8-3.18.log", KindPageAllocFailure, 8, nil},
		{"006-kasan-quarantine-order4-3.18.log", KindPageAllocFailure, 4, nil},
		{"007-spl-217-splat-per-cpu-3.8.log", KindPageAllocFailure, 0, nil},
		{"010-unixse-593335-csky-cma-order10-4.9.log", KindPageAllocFailure, 10, []zoneFact{{-1, "Normal", -2, true}}},
		{"011-pixelchaos-2.6.18-echo-order9.log", KindPageAllocFailure, 9, nil},
		{"012-rhel6-90883-swapper-order1-2.6.32.log", KindPageAllocFailure, 1, nil},
		{"014-kata-1310-memcg-oom-4.14.log", KindOOM, 0, nil},
		{"015-harvester-2419-kvm-oom-sles-5.3.log", KindOOM, 0, nil},
		{"021-rpi-5395-armv7-6.1-rx-refill-syslog.log", KindPageAllocFailure, 0, nil},
		{"022-zfs-9814-aarch64-numa-vmap.log", KindMemInfo, -1, []zoneFact{{3, "Normal", -2, true}, {4, "Normal", -2, true}, {5, "Normal", -2, true}}},
		{"025-x86-pagealloc-dma-oom-2.6.24-wrapped-frames.log", KindOOM, 0, nil},
		{"026-zfs-251-normal-exhausted-slub-xfrm.log", KindMemInfo, -1, []zoneFact{{0, "Normal", -1, false}, {0, "DMA", 10, false}, {0, "DMA32", 6, false}}},
		{"027-zfs-325-txg_sync-markdown-underscores.log", KindMemInfo, -1, []zoneFact{{0, "Normal", 3, false}, {0, "DMA", 10, false}, {0, "DMA32", 6, false}}},
		{"030-ndpi-49-vmalloc-armada-4.14.log", KindVmallocFailure, -1, nil},
		{"032-netcat-cpi-10-highmem-32bit-vmalloc.log", KindVmallocFailure, -1, nil},
	}
	for _, f := range facts {
		t.Run(f.file, func(t *testing.T) {
			rs := parseFile(t, filepath.Join(corpusDir, f.file))
			var r *Report
			for i := range rs {
				if rs[i].Kind == f.kind {
					r = &rs[i]
					break
				}
			}
			if r == nil {
				t.Fatalf("no %s report in %d", f.kind, len(rs))
			}
			if r.Order != f.order {
				t.Errorf("order %d, want %d", r.Order, f.order)
			}
			if f.zones == nil {
				return
			}
			if r.MemInfo == nil || len(r.MemInfo.Zones) != len(f.zones) {
				t.Fatalf("zones %+v, want %d", r.MemInfo, len(f.zones))
			}
			for i, want := range f.zones {
				z := r.MemInfo.Zones[i]
				lfo := -2
				if z.FreeList != nil {
					lfo = -1
					for o, n := range z.FreeList.Count {
						if n > 0 {
							lfo = o
						}
					}
				}
				if z.Node != want.node || z.Zone != want.zone || lfo != want.lfo {
					t.Errorf("zone %d: node %d %s lfo %d, want node %d %s lfo %d", i, z.Node, z.Zone, lfo, want.node, want.zone, want.lfo)
				}
				if got := z.HaveStats && z.FreeKB > z.MinKB; got != want.aboveMin {
					t.Errorf("zone %s: free %d min %d (stats %v): above min %v, want %v", z.Zone, z.FreeKB, z.MinKB, z.HaveStats, got, want.aboveMin)
				}
			}
		})
	}
}
