package snapshot

import (
	"testing"
	"time"
)

// The captured free lists, free pages and watermarks (with the boost, as
// zoneinfo prints them) replace /proc's; managed pages, lowmem_reserve
// and pageblock counts come from /proc; per-migratetype free lists, which
// would no longer add up, are dropped; other nodes are left out.
func TestFromCapture(t *testing.T) {
	th := 400
	base := &Snapshot{Time: time.Unix(100, 0), PageSize: 4096, PageblockOrder: 9, ExtfragThreshold: &th, Zones: []Zone{
		{Node: 0, Name: "DMA", Managed: 3840, FreeBlocks: []uint64{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 3}, HaveWatermarks: true},
		{Node: 0, Name: "DMA32", Managed: 60000, Present: 61000, Protection: []uint64{0, 0, 100, 100, 100},
			FreeBlocks: []uint64{5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 7}, Min: 90, Low: 110, High: 130, HaveWatermarks: true, NrFree: 7183,
			FreeByMigratetype:       map[string][]uint64{"Movable": {5, 4, 3, 2, 1, 0, 0, 0, 0, 0, 7}},
			PageblocksByMigratetype: map[string]uint64{"Movable": 110, "Unmovable": 7}, FreeCMA: 3, ReservedHighatomic: 512},
		{Node: 0, Name: "Normal"},
		{Node: 0, Name: "Movable"},
		{Node: 0, Name: "Device"},
		{Node: 1, Name: "DMA32", Managed: 1},
	}}
	at := time.Unix(99, 5)
	got := FromCapture(base, at, 0, []string{"DMA", "DMA32", "Normal", "Movable", "Device"}, []CapturedZone{
		{Index: 1, FreeBlocks: []uint64{9, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0}, NrFree: 55, Min: 80, Low: 100, High: 120, Boost: 10},
		{Index: 4, FreeBlocks: make([]uint64, 11)}, // unpopulated: no free lists, as buddyinfo
	})
	if !got.Time.Equal(at) || got.PageSize != 4096 || got.PageblockOrder != 9 || got.Threshold() != 400 || len(got.Zones) != 2 {
		t.Fatalf("snapshot %+v", got)
	}
	z := got.Zones[0]
	if z.Node != 0 || z.Name != "DMA32" || z.Managed != 60000 || z.Present != 61000 || len(z.Protection) != 5 ||
		z.FreeCMA != 3 || z.ReservedHighatomic != 512 || z.PageblocksByMigratetype["Unmovable"] != 7 {
		t.Errorf("the rest of the zone from /proc: %+v", z)
	}
	if z.NrFree != 55 || z.FreeBlocks[0] != 9 || z.LargestFreeOrder() != 2 || !z.HaveWatermarks ||
		z.Min != 90 || z.Low != 110 || z.High != 130 || z.FreeByMigratetype != nil {
		t.Errorf("the captured part: %+v", z)
	}
	if got.Zones[1].Name != "Device" || !got.Zones[1].Empty() || got.Zones[1].FreeBlocks != nil {
		t.Errorf("zone 4: %+v", got.Zones[1])
	}
	// The free lists decide now: the block /proc showed at order 10 is gone.
	if v := z.Verdict(3); v != VerdictFragmentation && v != VerdictExhaustion {
		t.Errorf("order 3 on the captured lists: %s", v)
	}
	base.Zones[1].Protection[2] = 7 // the capture must not share /proc's slices
	if z.Protection[2] != 100 {
		t.Error("Protection shared with the base snapshot")
	}

	// Without the kernel's names the node's zones in /proc order name them;
	// without a base, nothing but the capture.
	if n := FromCapture(base, at, 0, nil, []CapturedZone{{Index: 2}}).Zones[0].Name; n != "Normal" {
		t.Errorf("zone 2 without names: %q", n)
	}
	if s := FromCapture(nil, at, 1, nil, []CapturedZone{{Index: 3, FreeBlocks: []uint64{1}}}); s.Zones[0].Name != "zone3" || s.Zones[0].Managed != 0 || s.PageBytes() != 4096 {
		t.Errorf("no base: %+v", s.Zones[0])
	}
	if ZoneTypeName("ZONE_NORMAL") != "Normal" || ZoneTypeName("__MAX_NR_ZONES") != "" {
		t.Error("ZoneTypeName")
	}
}
