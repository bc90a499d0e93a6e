// Package snapshot takes and models the free-memory picture of every zone:
// free blocks by order (buddyinfo), by migratetype (pagetypeinfo), watermarks
// (zoneinfo), and the indices the kernel's mm/vmstat.c derives from them.
//
// The indices are computed with the kernel's own integer arithmetic, so they
// equal what /sys/kernel/debug/extfrag/{extfrag_index,unusable_index} would
// print for the same free lists; a Verdict per zone and order turns them,
// with the min watermark, into "would an order-N allocation succeed now, and
// if not, is it fragmentation or exhaustion".
package snapshot
