package snapshot

import "time"

// Zone is one node's zone at the moment of the snapshot. Counts are in pages
// (watermarks, managed) or blocks (FreeBlocks[o] = free blocks of order o).
type Zone struct {
	Node       int      `json:"node"`
	Name       string   `json:"zone"`
	FreeBlocks []uint64 `json:"free_blocks"` // index = order
	// FreeByMigratetype is free blocks per order per migratetype name, from
	// /proc/pagetypeinfo; nil when that file was not readable.
	FreeByMigratetype map[string][]uint64 `json:"free_by_migratetype,omitempty"`
	Managed           uint64              `json:"managed_pages"`
	Min               uint64              `json:"min_pages"`
	Low               uint64              `json:"low_pages"`
	High              uint64              `json:"high_pages"`
	HaveWatermarks    bool                `json:"have_watermarks"` // false when zoneinfo lacked the zone

	// NrFree is zoneinfo's "pages free": the NR_FREE_PAGES counter that the
	// kernel's watermark check reads. It differs a little from FreePages()
	// (the sum of the free lists) because of per-cpu counter drift; 0 with
	// HaveWatermarks false when zoneinfo lacked the zone.
	NrFree  uint64 `json:"nr_free_pages,omitempty"`
	Present uint64 `json:"present_pages,omitempty"`
	// PageblocksByMigratetype is the number of pageblocks of each
	// migratetype, from /proc/pagetypeinfo; nil when not readable. Unmovable
	// and Reclaimable blocks spread over a zone are what defeat compaction.
	PageblocksByMigratetype map[string]uint64 `json:"pageblocks_by_migratetype,omitempty"`
	// FreeByMigratetypeCapped is true when the kernel stopped counting some
	// free list at 100000 entries: FreeByMigratetype holds lower bounds.
	FreeByMigratetypeCapped bool `json:"free_by_migratetype_capped,omitempty"`
}

// Snapshot is the free-memory picture of every zone at one moment.
type Snapshot struct {
	Time     time.Time `json:"time"`
	PageSize uint32    `json:"page_size"`
	Zones    []Zone    `json:"zones"`

	// PageblockOrder is pagetypeinfo's "Page block order"; 0 when
	// pagetypeinfo was not readable.
	PageblockOrder int `json:"pageblock_order,omitempty"`
	// ExtfragThreshold is vm.extfrag_threshold when it could be read; nil
	// means unknown and DefaultExtfragThreshold applies.
	ExtfragThreshold *int `json:"extfrag_threshold,omitempty"`
}
