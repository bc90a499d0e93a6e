package snapshot

import (
	"fmt"
	"strings"
)

// Verdict says whether an allocation of some order would succeed in a zone
// now and, if not, what is in the way.
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

// Verdict decides for an order with the default vm.extfrag_threshold.
func (z *Zone) Verdict(order int) Verdict { return z.VerdictAt(order, DefaultExtfragThreshold) }

// VerdictAt decides for an order given vm.extfrag_threshold, in the order
// the kernel's allocator and compaction code ask the questions:
//
//  1. Empty zone, or an order the zone's free lists do not have: none.
//  2. The min watermark (__zone_watermark_ok with ALLOC_WMARK_MIN, the level
//     the slow path allocates down to): if taking 2^order pages would leave
//     min pages or fewer free, the allocation fails for lack of memory:
//     exhaustion, whatever the free lists look like.
//  3. A free block of order >= order exists: ok.
//  4. Otherwise the fragmentation index decides, exactly as
//     compaction_suitable (mm/compaction.c) does with vm.extfrag_threshold:
//     an index in [0, threshold] means "failure due to lack of memory,
//     compaction would not help" (COMPACT_NOT_SUITABLE_ZONE): exhaustion;
//     above the threshold (or the rare small negative index of a zone with a
//     handful of smaller blocks) compaction is worth it: fragmentation.
//
// Simplifications, all erring towards "ok": lowmem_reserve (which depends on
// the allocation's highest usable zone) is ignored, and so is the migratetype
// of the free blocks (a block only on the HighAtomic or CMA list does not
// serve an ordinary unmovable allocation), as are per-cpu lists, which only
// hold order <= 3 and are not in buddyinfo.
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
	if idx := z.FragIndex(order); idx >= 0 && idx <= threshold {
		return VerdictExhaustion
	}
	return VerdictFragmentation
}

// Answer is one zone's answer to "would an order-N allocation succeed now?".
type Answer struct {
	Node      int     `json:"node"`
	Zone      string  `json:"zone"`
	Order     int     `json:"order"`
	Succeed   bool    `json:"succeed"`
	Verdict   Verdict `json:"verdict"`
	FragIndex int     `json:"frag_index"` // thousandths, as the kernel computes it
	Reason    string  `json:"reason"`     // one line, for people
}

// Threshold is the vm.extfrag_threshold the snapshot's verdicts use.
func (s *Snapshot) Threshold() int {
	if s.ExtfragThreshold != nil {
		return *s.ExtfragThreshold
	}
	return DefaultExtfragThreshold
}

// Would answers, zone by zone, whether an allocation of the given order would
// succeed now and, if not, why. Which zones an allocation may use depends on
// its gfp flags (GFP_KERNEL: Normal and below), so every zone is answered.
func (s *Snapshot) Would(order int) []Answer {
	th := s.Threshold()
	out := make([]Answer, 0, len(s.Zones))
	for i := range s.Zones {
		z := &s.Zones[i]
		v := z.VerdictAt(order, th)
		out = append(out, Answer{
			Node:      z.Node,
			Zone:      z.Name,
			Order:     order,
			Succeed:   v == VerdictOK,
			Verdict:   v,
			FragIndex: z.FragIndex(order),
			Reason:    s.reason(z, order, v, th),
		})
	}
	return out
}

func (s *Snapshot) reason(z *Zone, order int, v Verdict, th int) string {
	kb := func(pages uint64) string { return fmt.Sprintf("%d kB", pages*uint64(s.pageSize())/1024) }
	var b strings.Builder
	switch v {
	case VerdictNone:
		if z.Empty() {
			return "empty zone"
		}
		return fmt.Sprintf("order %d is beyond the zone's largest order %d", order, len(z.FreeBlocks)-1)
	case VerdictOK:
		fmt.Fprintf(&b, "largest free block is order %d", z.LargestFreeOrder())
		if z.HaveWatermarks {
			fmt.Fprintf(&b, "; %s free, above min %s", kb(z.freeCounter()), kb(z.Min))
		}
		return b.String()
	}
	if !z.aboveMin(order) {
		fmt.Fprintf(&b, "%s free, at or below min watermark %s after the request", kb(z.freeCounter()), kb(z.Min))
		return b.String()
	}
	fmt.Fprintf(&b, "no free block of order %d or more (largest %d)", order, z.LargestFreeOrder())
	if z.HaveWatermarks {
		fmt.Fprintf(&b, ", %s free above min %s", kb(z.freeCounter()), kb(z.Min))
	} else {
		fmt.Fprintf(&b, ", %s free", kb(z.FreePages()))
	}
	idx := z.FragIndex(order)
	if v == VerdictExhaustion {
		fmt.Fprintf(&b, "; fragmentation index %s <= extfrag_threshold %s: too little free memory, compaction would not help",
			FormatIndex(idx), FormatIndex(th))
	} else {
		fmt.Fprintf(&b, "; fragmentation index %s > extfrag_threshold %s: compaction could help",
			FormatIndex(idx), FormatIndex(th))
	}
	return b.String()
}

func (s *Snapshot) pageSize() uint32 {
	if s.PageSize == 0 {
		return 4096
	}
	return s.PageSize
}
