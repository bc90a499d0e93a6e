// Package allocrule owns the kernel's rule for "could this zone serve an
// order-N request with this gfp now": every view (snapshot --order, the
// watch panel, incidents) asks it instead of modelling the allocator
// itself, so two views cannot disagree about the same snapshot.
//
// The rule is mm/page_alloc.c's, per kernel era (Era, from the release):
//
//   - the request (NewRequest): gfp_zone's highest usable zone from the
//     zone modifiers (GFP_ZONE_TABLE, include/linux/gfp.h, the same table in
//     3.10 and 6.12), the migratetype (allocflags_to_migratetype 3.10,
//     gfp_migratetype 6.12), and the alloc flags gfp_to_alloc_flags derives:
//     ALLOC_HIGH / ALLOC_MIN_RESERVE from __GFP_HIGH, ALLOC_HARDER /
//     ALLOC_NON_BLOCK for requests that cannot direct-reclaim, ALLOC_CMA for
//     movable ones (gfp_to_alloc_flags_cma);
//   - the eligible zones (Judge): the zonelist from the highest usable zone
//     down, on every node, zones the machine lacks falling through;
//   - lowmem_reserve[highest zone] of each eligible zone: zoneinfo's
//     "protection:" or a Mem-Info's "lowmem_reserve[]:", else estimated as
//     setup_per_zone_lowmem_reserve computes it, said in the reasons;
//   - __zone_watermark_ok: before 4.4 the per-order loop, from 4.4
//     (97a16fc82a7c) the order-0 watermark and then a free block of the
//     order on a list the request may take; the min reductions of each era;
//     free CMA pages out for requests without ALLOC_CMA, the HighAtomic
//     reserve out for ordinary ones.
//
// What a gfp cannot tell is described, not guessed: the OOM victim's
// reserve (ALLOC_OOM), rt tasks' ALLOC_HARDER before 6.3, cpusets,
// __GFP_THISNODE and mempolicies, per-cpu lists (order <= 3 only).
package allocrule
