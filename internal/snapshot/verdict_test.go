package snapshot

import (
	"testing"
)

func TestVerdictIncident(t *testing.T) {
	tests := []struct {
		tree  string
		zone  string
		order int
		want  Verdict
	}{
		// The failure: order 6, GFP_KERNEL (Normal, then DMA32). Both have
		// plenty free above min but no block of order >= 6: fragmentation.
		{"incident-failing", "Normal", 6, VerdictFragmentation},
		{"incident-failing", "DMA32", 6, VerdictFragmentation},
		{"incident-failing", "Normal", 3, VerdictOK},
		{"incident-failing", "Normal", 4, VerdictFragmentation},
		{"incident-failing", "DMA", 6, VerdictOK},
		{"incident-failing", "Normal", 11, VerdictNone},
		{"incident-healthy", "Normal", 6, VerdictOK},
		{"incident-healthy", "DMA32", 6, VerdictOK},
		{"incident-healthy", "Normal", 10, VerdictFragmentation},
		// compact_memory left exactly one order-6 block in Normal.
		{"incident-compacted", "Normal", 6, VerdictOK},
		{"incident-compacted", "Normal", 7, VerdictFragmentation},
		{"incident-compacted", "DMA32", 6, VerdictFragmentation},
	}
	for _, tt := range tests {
		s := take(t, tt.tree)
		if got := zone(t, s, tt.zone).Verdict(tt.order); got != tt.want {
			t.Errorf("%s %s order %d: %s, want %s", tt.tree, tt.zone, tt.order, got, tt.want)
		}
	}
}

func TestVerdictAt(t *testing.T) {
	wm := func(free []uint64, nrFree, min uint64) Zone {
		return Zone{Name: "Normal", FreeBlocks: free, NrFree: nrFree, Min: min, Low: min, High: min,
			Managed: 1 << 20, HaveWatermarks: true}
	}
	tests := []struct {
		name      string
		z         Zone
		order     int
		threshold int
		want      Verdict
	}{
		{"empty zone", Zone{Name: "Movable"}, 0, 500, VerdictNone},
		{"block and free above min", wm([]uint64{0, 0, 1}, 100, 10), 2, 500, VerdictOK},
		// __zone_watermark_ok: free - (2^order - 1) must stay above min.
		{"block exists but min watermark breached", wm([]uint64{0, 0, 1}, 12, 10), 2, 500, VerdictExhaustion},
		{"exactly at the edge fails", wm([]uint64{0, 0, 1}, 13, 10), 2, 500, VerdictExhaustion},
		{"one page above the edge passes", wm([]uint64{0, 0, 1}, 14, 10), 2, 500, VerdictOK},
		{"nothing free at all", wm(make([]uint64, 11), 0, 10), 0, 500, VerdictExhaustion},
		// 3 order-5 blocks for order 6: index 167 <= 500: reclaim, not compaction.
		{"index under threshold", wm([]uint64{0, 0, 0, 0, 0, 3, 0}, 96, 10), 6, 500, VerdictExhaustion},
		{"same with threshold 100", wm([]uint64{0, 0, 0, 0, 0, 3, 0}, 96, 10), 6, 100, VerdictFragmentation},
		// A negative index (one smaller block) is "compaction suitable" in
		// compaction_suitable: fragmentation (the counter includes pages on
		// per-cpu lists, so it may exceed the lists' 32 pages).
		{"negative index", wm([]uint64{0, 0, 0, 0, 0, 1, 0}, 100, 10), 6, 500, VerdictFragmentation},
		{"negative index but below min", wm([]uint64{0, 0, 0, 0, 0, 1, 0}, 32, 10), 6, 500, VerdictExhaustion},
		{"no watermarks known", Zone{FreeBlocks: []uint64{5, 0, 0}}, 2, 500, VerdictFragmentation},
		{"order out of range", wm([]uint64{1}, 100, 1), 1, 500, VerdictNone},
		{"huge order", wm(make([]uint64, 70), 100, 1), 69, 500, VerdictExhaustion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.z.VerdictAt(tt.order, tt.threshold); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}
