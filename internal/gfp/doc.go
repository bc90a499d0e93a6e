// Package gfp decodes page-allocator gfp flags and migratetypes with tables
// read from the running kernel.
//
// gfp bit positions have moved many times (3.10: GFP_KERNEL = 0xd0; 4.19:
// 0x6000c0; 5.x and later: 0xcc0), and so has the migratetype order
// (RECLAIMABLE and MOVABLE swapped in 4.4). A hard-coded table decodes the
// numbers of one kernel only and silently mislabels the others, as perf kmem
// 6.1 does on a 6.18 kernel. So the tables come from the kernel itself: the
// __print_flags table in tracefs events/kmem/mm_page_alloc/format (every
// kernel with tracefs), the ___GFP_*_BIT enum (6.10+) and enum migratetype
// from BTF. A recording carries the table of the kernel it was made on, and
// Table decodes with whatever table it is given.
//
// For a kernel that is not running here (a log from a 3.10 node), ForRelease
// picks a table generated from that era's own headers (eras.go,
// eras_generated.go); FallbackMigratetypes takes the migratetype order from
// the same eras.
package gfp
