package snapshot

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// ReasonAtFailure is the MemSnapshot reason of a picture built from the
// kernel's own reading of the free lists at an allocation failure
// (FromCapture), as against "failure", /proc read after it.
const ReasonAtFailure = "at_failure"

// AtFailureLead bounds how long before its failure's AllocFail a capture
// may be timed: both are written by one BPF program run, microseconds
// apart. An older capture belongs to a failure whose record was lost (a
// full ringbuf) or cut from a window, never to a later failure.
const AtFailureLead = time.Millisecond

// CapturedZone is one zone as the kernel read it at a failure: its free
// lists, NR_FREE_PAGES and watermarks, in pages (FreeBlocks in blocks).
type CapturedZone struct {
	Index          int // enum zone_type
	FreeBlocks     []uint64
	NrFree         uint64
	Min, Low, High uint64 // _watermark[], without the boost
	Boost          uint64 // watermark_boost
}

// FromCapture is the picture of node's zones at a failure: the captured
// free lists, free pages and watermarks, and the rest of each zone
// (managed and present pages, lowmem_reserve, CMA, HighAtomic, pageblock
// counts) from base, the latest /proc snapshot, matched by name; those
// change with configuration or slowly, not within the moment between a
// failure and a /proc read. A zone's name is names[Index] (the kernel's
// enum zone_type, ZoneTypeName), else the Index-th zone of the node in base
// (zoneinfo lists every zone of a node in index order). Per-migratetype
// free lists are left out: base's would not add up to the captured ones.
// Other nodes are left out: the capture is one node's. base may be nil.
func FromCapture(base *Snapshot, at time.Time, node int, names []string, zones []CapturedZone) *Snapshot {
	s := &Snapshot{Time: at}
	var baseZones []Zone
	if base != nil {
		s.PageSize, s.PageblockOrder = base.PageSize, base.PageblockOrder
		s.ExtfragThreshold, s.CompactionProactiveness = base.ExtfragThreshold, base.CompactionProactiveness
		for _, z := range base.Zones {
			if z.Node == node {
				baseZones = append(baseZones, z)
			}
		}
	}
	for _, c := range zones {
		name := ""
		switch {
		case c.Index < len(names) && names[c.Index] != "":
			name = names[c.Index]
		case c.Index < len(baseZones):
			name = baseZones[c.Index].Name
		default:
			name = fmt.Sprintf("zone%d", c.Index)
		}
		z := Zone{Node: node, Name: name, FreeBlocks: slices.Clone(c.FreeBlocks)}
		if i := slices.IndexFunc(baseZones, func(b Zone) bool { return b.Name == name }); i >= 0 {
			b := &baseZones[i]
			z.Managed, z.Present, z.Protection = b.Managed, b.Present, slices.Clone(b.Protection)
			z.FreeCMA, z.ReservedHighatomic = b.FreeCMA, b.ReservedHighatomic
			z.PageblocksByMigratetype = maps.Clone(b.PageblocksByMigratetype)
			if b.FreeBlocks == nil && z.LargestFreeOrder() < 0 {
				// Unpopulated (buddyinfo lists only populated zones):
				// no free lists, as in the /proc snapshot.
				z.FreeBlocks = nil
			}
		}
		z.NrFree = c.NrFree
		// What zoneinfo prints and the watermark check uses: wmark_pages()
		// adds the boost (Linux 5.0, commit 1c30844d2dfe).
		z.Min, z.Low, z.High = c.Min+c.Boost, c.Low+c.Boost, c.High+c.Boost
		z.HaveWatermarks = true
		s.Zones = append(s.Zones, z)
	}
	return s
}

// zoneTypeNames are the kernel's zone_names[] (mm/page_alloc.c) by the
// enumerator of enum zone_type.
var zoneTypeNames = map[string]string{
	"ZONE_DMA": "DMA", "ZONE_DMA32": "DMA32", "ZONE_NORMAL": "Normal",
	"ZONE_HIGHMEM": "HighMem", "ZONE_MOVABLE": "Movable", "ZONE_DEVICE": "Device",
}

// ZoneTypeName is the name /proc gives the zone of an enum zone_type
// enumerator ("ZONE_DMA32" -> "DMA32"); "" for one it does not know
// (__MAX_NR_ZONES).
func ZoneTypeName(enumerator string) string { return zoneTypeNames[enumerator] }
