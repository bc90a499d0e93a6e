package snapshot

// Verdict says whether an allocation of some order would succeed in a zone
// now and, if not, what is in the way. The values are part of the JSON
// outputs; internal/allocrule adds "reserved".
type Verdict string

const (
	// VerdictOK: a free block of the order (or larger) exists and taking it
	// leaves the zone above its min watermark.
	VerdictOK Verdict = "ok"
	// VerdictFragmentation: enough memory is free, but not in a block large
	// enough. Compaction (vm.compact_memory, proactive compaction) is the cure.
	VerdictFragmentation Verdict = "fragmentation"
	// VerdictExhaustion: not enough memory is free, whatever its layout.
	// Reclaim, not compaction, is the cure.
	VerdictExhaustion Verdict = "exhaustion"
	// VerdictNone: the zone is empty, or the order is beyond the zone's
	// largest order; the question does not apply.
	VerdictNone Verdict = "none"
)

// DefaultExtfragThreshold is the default vm.extfrag_threshold.
const DefaultExtfragThreshold = 500

// CompactionWouldHelp is the fragmentation/exhaustion split for a zone that
// has no free block of the order: compaction_suitable (mm/compaction.c,
// 3.10 to 6.12) refuses a zone whose fragmentation index is in
// [0, vm.extfrag_threshold] ("failure due to lack of memory",
// COMPACT_NOT_SUITABLE_ZONE); above the threshold (or the rare small
// negative index of a zone with a handful of smaller blocks) compaction is
// worth it. internal/allocrule and VerdictAt both decide with it.
func CompactionWouldHelp(free []uint64, order, threshold int) bool {
	idx := FragmentationIndex(free, order)
	return idx < 0 || idx > threshold
}

// Verdict decides for an order with the default vm.extfrag_threshold.
func (z *Zone) Verdict(order int) Verdict { return z.VerdictAt(order, DefaultExtfragThreshold) }

// VerdictAt is the verdict of the free-list layout alone, for no request in
// particular: the min watermark without lowmem_reserve, any free block
// regardless of its migratetype. It is what a per-order table of a zone can
// say without knowing who asks; "could this zone serve this request" is
// internal/allocrule's, which also weighs the gfp's zones, lowmem_reserve,
// CMA and HighAtomic reserves and the kernel era.
//
//  1. Empty zone, or an order the zone's free lists do not have: none.
//  2. Taking 2^order pages would leave min pages or fewer free: exhaustion.
//  3. A free block of order >= order exists: ok.
//  4. Otherwise CompactionWouldHelp decides fragmentation or exhaustion.
func (z *Zone) VerdictAt(order, threshold int) Verdict {
	if z.Empty() || order < 0 || order >= len(z.FreeBlocks) {
		return VerdictNone
	}
	if !z.aboveMin(order) {
		return VerdictExhaustion
	}
	if z.LargestFreeOrder() >= order {
		return VerdictOK
	}
	if !CompactionWouldHelp(z.FreeBlocks, order, threshold) {
		return VerdictExhaustion
	}
	return VerdictFragmentation
}

// Threshold is the vm.extfrag_threshold the snapshot's verdicts use.
func (s *Snapshot) Threshold() int {
	if s.ExtfragThreshold != nil {
		return *s.ExtfragThreshold
	}
	return DefaultExtfragThreshold
}

// PageBytes is the page size, 4096 when the snapshot did not record it.
func (s *Snapshot) PageBytes() uint32 {
	if s.PageSize == 0 {
		return 4096
	}
	return s.PageSize
}
