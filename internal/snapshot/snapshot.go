package snapshot

import (
	"time"

	"github.com/fragscope/fragscope/internal/procfs"
)

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

	// The fields below are what internal/allocrule needs beyond the free
	// lists and watermarks; all are plain data so that a kernel-log parser
	// can fill them from a Mem-Info dump as Take fills them from /proc.

	// Protection is the zone's lowmem_reserve[] in pages, indexed by the
	// enum zone_type of an allocation's highest usable zone: /proc/zoneinfo's
	// "protection: (a, b, ...)" live, a Mem-Info's "lowmem_reserve[]: a b"
	// from a log. nil when unknown; allocrule then estimates it and says so.
	Protection []uint64 `json:"protection,omitempty"`
	// FreeCMA is NR_FREE_CMA_PAGES (zoneinfo nr_free_cma, Mem-Info
	// free_cma), which the watermark check takes out for requests that may
	// not use CMA pageblocks.
	FreeCMA uint64 `json:"free_cma_pages,omitempty"`
	// ReservedHighatomic is nr_reserved_highatomic in pages: Mem-Info's
	// reserved_highatomic, or HighAtomic pageblocks << pageblock order from
	// pagetypeinfo (reserve_highatomic_pageblock adds a whole pageblock at a
	// time, mm/page_alloc.c 4.4-6.12). 0 when unknown or none.
	ReservedHighatomic uint64 `json:"reserved_highatomic_pages,omitempty"`
	// FreeTypeLetters is, per order, the migratetype letters a Mem-Info
	// free-list line prints after a count ("UME": U unmovable, M movable,
	// E reclaimable, H highatomic, C CMA, I isolate, R reserve before 4.4):
	// which lists have a block of that order. nil when not from a log; live
	// snapshots have FreeByMigratetype instead.
	FreeTypeLetters []string `json:"free_type_letters,omitempty"`
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
	// Compaction is /proc/vmstat's compaction and THP fault fallback
	// counters, cumulative since boot; nil when not readable.
	Compaction *procfs.CompactionStat `json:"compaction,omitempty"`
	// CompactionProactiveness is vm.compaction_proactiveness (5.9+), which
	// sets the thresholds of the fragmentation score; nil when absent.
	CompactionProactiveness *int `json:"compaction_proactiveness,omitempty"`
}
