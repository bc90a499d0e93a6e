// Package snapshot takes and models the free-memory picture of every zone:
// free blocks by order (buddyinfo), by migratetype (pagetypeinfo), watermarks
// (zoneinfo), and the indices the kernel's mm/vmstat.c derives from them.
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
}

// Snapshot is the free-memory picture of every zone at one moment.
type Snapshot struct {
	Time     time.Time `json:"time"`
	PageSize uint32    `json:"page_size"`
	Zones    []Zone    `json:"zones"`
}
