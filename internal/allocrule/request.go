package allocrule

import (
	"fmt"
	"strconv"
	"strings"
)

// FlagTable is the part of a gfp table the rule reads: the recording
// kernel's own (session.GFP(), a *gfp.Table), so that flags that moved
// between versions are found where that kernel put them.
type FlagTable interface {
	Lookup(name string) (mask uint64, ok bool)
}

// Migratetype names, as pagetypeinfo prints them.
const (
	Unmovable   = "Unmovable"
	Movable     = "Movable"
	Reclaimable = "Reclaimable"
)

// Request is an allocation as the allocator sees it: gfp_zone's highest
// usable zone, the migratetype, and the alloc flags that change the
// watermark check.
type Request struct {
	Order   int
	GFP     uint64
	GFPText string // the caller's rendering of GFP ("GFP_KERNEL|__GFP_COMP"), for reasons
	Era     Era

	// HighestZone is gfp_zone(gfp): "DMA", "DMA32", "Normal", "HighMem" or
	// "Movable". Judge maps a zone the kernel was built without to the one
	// GFP_ZONE_TABLE's OPT_ZONE_* gives (Normal).
	HighestZone string
	Migratetype string // Unmovable, Movable or Reclaimable
	// High is ALLOC_HIGH (ALLOC_MIN_RESERVE from 6.3): __GFP_HIGH.
	High bool
	// Harder is ALLOC_HARDER before 6.3 (atomic requests), ALLOC_NON_BLOCK
	// from 6.3 (no __GFP_DIRECT_RECLAIM), both unless __GFP_NOMEMALLOC.
	Harder bool
	// HighAtomic: the request may take blocks from the HighAtomic lists
	// (ALLOC_HARDER 4.4-6.2, ALLOC_HIGHATOMIC from 6.3).
	HighAtomic bool
	// CMA is ALLOC_CMA: a movable request may use CMA pageblocks.
	CMA bool

	Reasons []string // how the gfp was read, each citing its source
}

func (r *Request) addf(format string, args ...any) {
	r.Reasons = append(r.Reasons, fmt.Sprintf(format, args...))
}

// Zone modifier bits: the low four bits of gfp in every kernel from 2.6.31
// (GFP_ZONE_TABLE) to 6.18 (___GFP_DMA_BIT 0 ... ___GFP_MOVABLE_BIT 3).
// Tables may lack them (3.10's print table has no DMA, DMA32 or HIGHMEM
// entry), so these are the fallback when the table does not name them.
const (
	gfpDMA     = 0x01
	gfpHighmem = 0x02
	gfpDMA32   = 0x04
	gfpMovable = 0x08
	// ___GFP_HIGH is 0x20 in 3.10 and 4.x and bit 5 in 6.x: never moved.
	gfpHigh = 0x20
)

// gfpZoneTable is GFP_ZONE_TABLE (include/linux/gfp.h, identical in 3.10
// and 6.12) indexed by the four zone bits; "" marks GFP_ZONE_BAD
// combinations, for which the table holds 0 (the lowest zone) and a
// CONFIG_DEBUG_VM kernel BUGs.
var gfpZoneTable = [16]string{
	0x0: "Normal", 0x1: "DMA", 0x2: "HighMem", 0x4: "DMA32",
	0x8: "Normal", 0x9: "DMA", 0xa: "Movable", 0xc: "DMA32",
}

// NewRequest reads an order-N request with gfp mask g the way the kernel of
// era reads it, with that kernel's flag table t (nil: none, only the zone
// modifiers and __GFP_HIGH, whose bits never moved, can be read).
func NewRequest(g uint64, order int, t FlagTable, era Era) Request {
	r := Request{Order: order, GFP: g, Era: era}
	has := func(name string, fallback uint64) (set, known bool) {
		if t != nil {
			if m, ok := t.Lookup(name); ok {
				return g&m == m, true
			}
		}
		if fallback != 0 {
			return g&fallback != 0, true
		}
		return false, false
	}
	bit := func(name string, fallback uint64) bool { set, _ := has(name, fallback); return set }

	zb := 0
	for i, f := range []struct {
		name string
		m    uint64
	}{{"__GFP_DMA", gfpDMA}, {"__GFP_HIGHMEM", gfpHighmem}, {"__GFP_DMA32", gfpDMA32}, {"__GFP_MOVABLE", gfpMovable}} {
		if bit(f.name, f.m) {
			zb |= 1 << i
		}
	}
	r.HighestZone = gfpZoneTable[zb]
	if r.HighestZone == "" {
		r.HighestZone = "DMA"
		r.addf("gfp zone bits %#x are a GFP_ZONE_BAD combination: gfp_zone gives the lowest zone "+
			"(include/linux/gfp.h GFP_ZONE_TABLE), and a CONFIG_DEBUG_VM kernel BUGs", zb)
	}

	// allocflags_to_migratetype (3.10) / gfp_migratetype (6.12): movable
	// and reclaimable bits; __GFP_RECLAIMABLE was 0x80000 until 4.4 moved
	// it next to __GFP_MOVABLE (016c13daa5c9 "mm, page_alloc: use masks
	// and shifts when converting GFP flags to migrate types"), 0x10 since.
	reclFallback := uint64(0x10)
	if !era.AtLeast(4, 4) {
		reclFallback = 0x80000
	}
	mov, recl := bit("__GFP_MOVABLE", gfpMovable), bit("__GFP_RECLAIMABLE", reclFallback)
	switch {
	case mov && recl:
		r.Migratetype = Unmovable
		r.addf("gfp has both __GFP_MOVABLE and __GFP_RECLAIMABLE: the kernel warns " +
			"(gfp_migratetype); judged as unmovable")
	case mov:
		r.Migratetype = Movable
	case recl:
		r.Migratetype = Reclaimable
	default:
		r.Migratetype = Unmovable
	}
	// gfp_to_alloc_flags_cma (6.12; inline in gfp_to_alloc_flags and
	// __alloc_pages_nodemask in 3.10): only movable requests may use CMA.
	r.CMA = r.Migratetype == Movable

	r.High = bit("__GFP_HIGH", gfpHigh)
	nomemalloc, _ := has("__GFP_NOMEMALLOC", 0)
	switch {
	case !era.AtLeast(4, 4):
		// gfp_to_alloc_flags 3.10: atomic = !(gfp & (__GFP_WAIT |
		// __GFP_NO_KSWAPD)); ALLOC_HARDER unless __GFP_NOMEMALLOC. Both
		// bits stayed put from 2.6.38 to 4.3 (0x10, 0x400000).
		wait := bit("__GFP_WAIT", 0x10)
		noKswapd := bit("__GFP_NO_KSWAPD", 0x400000)
		r.Harder = !wait && !noKswapd && !nomemalloc
	case !era.AtLeast(6, 3):
		// 4.4 (d0164adc89f6 "mm, page_alloc: distinguish between being
		// unable to sleep, unwilling to sleep and avoiding waking kswapd")
		// to 6.2: ALLOC_HARDER for __GFP_ATOMIC unless __GFP_NOMEMALLOC.
		atomic, known := has("__GFP_ATOMIC", 0)
		if !known {
			r.addf("this kernel's gfp table lacks __GFP_ATOMIC: ALLOC_HARDER not applied")
		}
		r.Harder = atomic && !nomemalloc
		r.HighAtomic = r.Harder
	default:
		// 6.3 (2973d8229b78 "mm: discard __GFP_ATOMIC"): ALLOC_NON_BLOCK
		// for requests without __GFP_DIRECT_RECLAIM, ALLOC_HIGHATOMIC when
		// also __GFP_HIGH and order > 0 (gfp_to_alloc_flags 6.12).
		blocking, known := has("__GFP_DIRECT_RECLAIM", 0)
		if !known {
			blocking = true
			r.addf("this kernel's gfp table lacks __GFP_DIRECT_RECLAIM: judged as a request that may reclaim")
		}
		r.Harder = !blocking && !nomemalloc
		r.HighAtomic = r.Harder && r.High && order > 0
	}
	return r
}

// KernelRequest is GFP_KERNEL at an order without a flag table: Normal and
// below, unmovable, may reclaim, no reserves. It is what `snapshot` and the
// free-memory table judge when no request is named.
func KernelRequest(order int, era Era) Request {
	return Request{Order: order, GFPText: "GFP_KERNEL", Era: era, HighestZone: "Normal", Migratetype: Unmovable}
}

// composites are the few GFP_* combinations a bits-only table (BTF's
// ___GFP_*_BIT enum, gfp.BitsTable) cannot name, per era
// (include/linux/gfp.h 3.10 and 4.4, gfp_types.h 6.12).
func composite(name string, era Era) []string {
	switch name {
	case "__GFP_RECLAIM":
		return []string{"__GFP_DIRECT_RECLAIM", "__GFP_KSWAPD_RECLAIM"}
	case "GFP_KERNEL":
		if !era.AtLeast(4, 4) {
			return []string{"__GFP_WAIT", "__GFP_IO", "__GFP_FS"}
		}
		return []string{"__GFP_DIRECT_RECLAIM", "__GFP_KSWAPD_RECLAIM", "__GFP_IO", "__GFP_FS"}
	case "GFP_ATOMIC":
		switch {
		case !era.AtLeast(4, 4):
			return []string{"__GFP_HIGH"}
		case !era.AtLeast(6, 3):
			return []string{"__GFP_HIGH", "__GFP_ATOMIC", "__GFP_KSWAPD_RECLAIM"}
		}
		return []string{"__GFP_HIGH", "__GFP_KSWAPD_RECLAIM"}
	}
	return nil
}

// ParseGFP turns "GFP_KERNEL|__GFP_COMP", "0x10c0d0" or a mix into a mask
// with the kernel's table t. A name the table lacks is expanded when it is
// one of the combinations above; otherwise it is an error naming it.
func ParseGFP(expr string, t FlagTable, era Era) (uint64, error) {
	var mask uint64
	for _, part := range strings.Split(expr, "|") {
		p := strings.TrimSpace(part)
		if p == "" {
			return 0, fmt.Errorf("gfp %q: empty flag", expr)
		}
		if v, err := strconv.ParseUint(p, 0, 64); err == nil {
			mask |= v
			continue
		}
		m, err := lookupName(p, t, era)
		if err != nil {
			return 0, fmt.Errorf("gfp %q: %w", expr, err)
		}
		mask |= m
	}
	return mask, nil
}

func lookupName(name string, t FlagTable, era Era) (uint64, error) {
	if t != nil {
		if m, ok := t.Lookup(name); ok {
			return m, nil
		}
	}
	parts := composite(name, era)
	if parts == nil {
		return 0, fmt.Errorf("%s is not in this kernel's gfp table (mount tracefs for the full table: "+
			"mount -t tracefs tracefs /sys/kernel/tracing), give the mask in hex", name)
	}
	var m uint64
	for _, p := range parts {
		v, err := lookupName(p, t, era)
		if err != nil {
			return 0, err
		}
		m |= v
	}
	return m, nil
}
