package allocrule

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fragscope/fragscope/internal/snapshot"
)

// Verdict is a zone's answer for a request: the snapshot package's ok,
// fragmentation, exhaustion and none, plus reserved.
type Verdict = snapshot.Verdict

const (
	VerdictOK            = snapshot.VerdictOK
	VerdictFragmentation = snapshot.VerdictFragmentation
	VerdictExhaustion    = snapshot.VerdictExhaustion
	VerdictNone          = snapshot.VerdictNone
	// VerdictReserved: the zone could serve the request were it not for
	// the lowmem_reserve it keeps back from requests that may use a higher
	// zone.
	VerdictReserved Verdict = "reserved"
)

// Reserve sources.
const (
	ReserveKnown     = "lowmem_reserve" // zoneinfo "protection:" or Mem-Info "lowmem_reserve[]:"
	ReserveEstimated = "estimated"      // setup_per_zone_lowmem_reserve from managed pages
)

// Zone is one zone's judgment. Counts are pages.
type Zone struct {
	Node     int     `json:"node"`
	Name     string  `json:"zone"`
	Eligible bool    `json:"eligible"`
	Verdict  Verdict `json:"verdict"`
	// Free is the NR_FREE_PAGES counter the check reads (the free lists'
	// sum when zoneinfo lacked it).
	Free uint64 `json:"free_pages"`
	// Watermark is the zone's min watermark; Min is what the check holds
	// the zone to after the request's reductions (ALLOC_HIGH, ...).
	Watermark uint64 `json:"min_watermark_pages"`
	Min       uint64 `json:"min_pages"`
	// Reserve is lowmem_reserve[highest zone of the request], from
	// ReserveSource ("" when the zone is the request's highest: no reserve).
	Reserve       uint64 `json:"lowmem_reserve_pages"`
	ReserveSource string `json:"lowmem_reserve_source,omitempty"`
	// CMA and Highatomic are the free pages the check took out: free CMA
	// pages for a request without ALLOC_CMA, the HighAtomic reserve for an
	// ordinary one.
	CMA        uint64 `json:"cma_taken_out_pages"`
	Highatomic uint64 `json:"highatomic_taken_out_pages"`
	// LargestUsableOrder is the largest order with a free block on a list
	// this request may take, -1 if none.
	LargestUsableOrder int `json:"largest_usable_order"`
	FragIndex          int `json:"frag_index"`
	// Summary is the verdict's cause in a phrase ("no free block of order
	// 6 or more (largest 5)"); Reasons say, in order, what was checked and
	// with which numbers, each citing the kernel function and version.
	Summary string   `json:"summary"`
	Reasons []string `json:"reasons"`
}

// Judgment is a request judged on every zone of a snapshot.
type Judgment struct {
	Request Request `json:"-"`
	// Target is the zonelist's first zone: the highest eligible zone with
	// memory; "" when no eligible zone has any.
	Target string `json:"target_zone,omitempty"`
	Zones  []Zone `json:"zones"` // in snapshot order
	// Reasons are the era and request notes that apply to every zone.
	Reasons []string `json:"reasons"`
}

// Served returns the first zone in zonelist order (highest eligible zone
// first, nodes in snapshot order) that can serve the request, nil if none.
func (j *Judgment) Served() *Zone {
	var best *Zone
	for i := range j.Zones {
		z := &j.Zones[i]
		if z.Verdict == VerdictOK && (best == nil || ZoneRank(z.Name) > ZoneRank(best.Name)) {
			best = z
		}
	}
	return best
}

// canonical is enum zone_type's order (include/linux/mmzone.h): the zones a
// kernel was built with are a subsequence of it.
var canonical = [...]string{"DMA", "DMA32", "Normal", "HighMem", "Movable", "Device"}

// ZoneRank is a zone name's place in enum zone_type order, -1 for names
// not in it. The allocator falls back from the highest zone a request may
// use to lower ones, never up.
func ZoneRank(name string) int {
	for i, n := range canonical {
		if n == name {
			return i
		}
	}
	return -1
}

// zoneEnum reconstructs the running kernel's enum zone_type from the zone
// names of the snapshot: zoneinfo lists every configured zone since 4.12
// ("mm, vmstat: print non-populated zones in zoneinfo"), only populated
// ones before, and ZONE_NORMAL and ZONE_MOVABLE always exist (ZONE_NORMAL
// is unconditional in include/linux/mmzone.h; Movable since 2.6.23): a
// kernel log's Mem-Info lists only populated zones, and a 256 MiB guest has
// no Normal pages. ZONE_DEVICE follows Movable when a protection line has
// one more entry than that.
func zoneEnum(s *snapshot.Snapshot) []string {
	have := map[string]bool{"Normal": true, "Movable": true}
	maxProt := 0
	for i := range s.Zones {
		have[s.Zones[i].Name] = true
		maxProt = max(maxProt, len(s.Zones[i].Protection))
	}
	var enum []string
	for _, n := range canonical {
		if have[n] || (n == "Device" && maxProt == len(enum)+1) {
			enum = append(enum, n)
		}
	}
	return enum
}

// Judge judges req on every zone of s.
func Judge(s *snapshot.Snapshot, req Request) *Judgment {
	j := &Judgment{Request: req, Zones: make([]Zone, 0, len(s.Zones))}
	era := req.Era
	if !era.Known {
		j.addf("kernel %s: the newest rule is applied", era)
	}
	enum := zoneEnum(s)
	idx := func(name string) int { return slices.Index(enum, name) }
	target := req.HighestZone
	if idx(target) < 0 {
		// OPT_ZONE_DMA/DMA32/HIGHMEM (include/linux/gfp.h): a zone the
		// kernel was built without maps to ZONE_NORMAL.
		j.addf("gfp_zone asks for %s, which this kernel lacks: GFP_ZONE_TABLE maps it to Normal", target)
		target = "Normal"
	}
	ti := idx(target)
	best := -1
	for i := range s.Zones {
		z := &s.Zones[i]
		zi := idx(z.Name)
		v := judgeZone(s, z, req, enum, zi, ti)
		if v.Eligible && !z.Empty() && zi > best {
			best, j.Target = zi, z.Name
		}
		j.Zones = append(j.Zones, v)
	}
	return j
}

func (j *Judgment) addf(format string, args ...any) {
	j.Reasons = append(j.Reasons, fmt.Sprintf(format, args...))
}

// check is the outcome of __zone_watermark_ok and the free-list look-up
// for one reserve.
type check struct {
	ok      bool
	order0  bool // failed the order-0 part: free <= min + reserve
	reason  string
	summary string
}

func judgeZone(s *snapshot.Snapshot, z *snapshot.Zone, req Request, enum []string, zi, ti int) Zone {
	v := Zone{Node: z.Node, Name: z.Name, Free: z.FreeCounter(), Watermark: z.Min,
		LargestUsableOrder: -1, FragIndex: z.FragIndex(req.Order)}
	kb := kbFunc(s)
	add := func(format string, args ...any) { v.Reasons = append(v.Reasons, fmt.Sprintf(format, args...)) }
	switch {
	case zi < 0:
		v.Verdict, v.Summary = VerdictNone, "unknown zone"
		add("zone %s is not one of enum zone_type's", z.Name)
		return v
	case zi > ti:
		v.Verdict, v.Summary = VerdictNone, "not eligible"
		add("above the request's highest zone %s (gfp_zone): not in its zonelist", enum[ti])
		return v
	}
	v.Eligible = true
	o := req.Order
	switch {
	case z.Empty():
		v.Verdict, v.Summary = VerdictNone, "empty zone"
		add("empty zone: the zonelist skips it")
		return v
	case o < 0 || o >= len(z.FreeBlocks) || o >= 64:
		v.Verdict, v.Summary = VerdictNone, "order beyond the zone's free lists"
		add("order %d is beyond the zone's largest order %d: the allocator refuses it outright "+
			"(__alloc_pages_slowpath 3.10: order >= MAX_ORDER; __alloc_pages 6.12: order > MAX_PAGE_ORDER)",
			o, len(z.FreeBlocks)-1)
		return v
	}

	era := req.Era
	// lowmem_reserve[highest zone]: 0 for the zone itself.
	if zi < ti {
		if len(z.Protection) > ti {
			v.Reserve, v.ReserveSource = z.Protection[ti], ReserveKnown
		} else {
			v.Reserve, v.ReserveSource = estimateReserve(s, z, enum, zi, ti, era), ReserveEstimated
		}
	}
	v.Min = adjustedMin(z.Min, req)
	if !req.CMA {
		v.CMA = z.FreeCMA
	}
	v.Highatomic = highatomicTakenOut(z, req)
	if !z.HaveWatermarks {
		add("watermarks unknown (zone missing from zoneinfo): checked against min 0")
	}

	usable, typesKnown := usableFunc(z, req)
	for k := len(z.FreeBlocks) - 1; k >= o; k-- {
		if usable(k) {
			v.LargestUsableOrder = k
			break
		}
	}

	c := watermark(z, req, v, usable, kb)
	if c.ok {
		v.Verdict, v.Summary = VerdictOK, c.summary
		add("%s", c.reason)
		if !typesKnown && o > 0 {
			add("migratetypes of the free blocks unknown (no pagetypeinfo): every block counted as usable")
		}
		v.reserveNote(kb, add)
		return v
	}
	add("%s", c.reason)
	if c.order0 && v.Reserve > 0 {
		plain := v
		plain.Reserve = 0
		p := watermark(z, req, plain, usable, kb)
		if p.ok {
			v.Verdict = VerdictReserved
			v.Summary = fmt.Sprintf("held back by its lowmem_reserve of %s", kb(v.Reserve))
			add("without the reserve kept back from %s requests it would pass", enum[ti])
			v.reserveNote(kb, add)
			return v
		}
		if !p.order0 {
			add("%s", p.reason)
			c = p
		}
	}
	v.reserveNote(kb, add)
	v.Summary = c.summary
	if c.order0 {
		v.Verdict = VerdictExhaustion
		return v
	}
	// Enough memory, no block the request may take: today's split,
	// compaction_suitable's fragmentation index against extfrag_threshold.
	th := s.Threshold()
	if snapshot.CompactionWouldHelp(z.FreeBlocks, o, th) {
		v.Verdict = VerdictFragmentation
		add("fragmentation index %s > extfrag_threshold %s: compaction could help (compaction_suitable)",
			snapshot.FormatIndex(v.FragIndex), snapshot.FormatIndex(th))
	} else {
		v.Verdict = VerdictExhaustion
		add("fragmentation index %s <= extfrag_threshold %s: too little free memory, compaction would "+
			"not help (compaction_suitable)", snapshot.FormatIndex(v.FragIndex), snapshot.FormatIndex(th))
	}
	return v
}

func (v *Zone) reserveNote(kb func(uint64) string, add func(string, ...any)) {
	if v.ReserveSource == ReserveEstimated && v.Reserve > 0 {
		add("lowmem_reserve %s estimated from the managed pages above (no protection line; "+
			"setup_per_zone_lowmem_reserve)", kb(v.Reserve))
	}
}

// adjustedMin applies the request's reductions of the min watermark
// (__zone_watermark_ok): before 6.3 ALLOC_HIGH takes min/2 and ALLOC_HARDER
// min/4, each on its own (3.10, 4.4); from 6.3 (1ebbb21811b7 "mm/page_alloc:
// explicitly define how __GFP_HIGH non-blocking allocations accesses
// reserves") ALLOC_MIN_RESERVE takes min/2 and ALLOC_NON_BLOCK a further
// min/4 only together with it. C long division, truncating.
func adjustedMin(min uint64, req Request) uint64 {
	if !req.Era.AtLeast(6, 3) {
		if req.High {
			min -= min / 2
		}
		if req.Harder {
			min -= min / 4
		}
		return min
	}
	if req.High {
		min -= min / 2
		if req.Harder {
			min -= min / 4
		}
	}
	return min
}

// highatomicTakenOut is the HighAtomic reserve an ordinary request cannot
// count: none before 4.4 (no such reserve); nr_reserved_highatomic for a
// request without ALLOC_HARDER 4.4-6.2 (0aaa29a56e4f "mm, page_alloc:
// reserve pageblocks for high-order atomic allocations on demand") and
// without any of ALLOC_RESERVES from 6.3; from 6.12 the free pages on the
// HighAtomic lists instead ("mm/page_alloc: keep track of free
// highatomic", nr_free_highatomic).
func highatomicTakenOut(z *snapshot.Zone, req Request) uint64 {
	era := req.Era
	switch {
	case !era.AtLeast(4, 4):
		return 0
	case !era.AtLeast(6, 3):
		if req.Harder {
			return 0
		}
	default:
		if req.Harder || req.High || req.HighAtomic {
			return 0
		}
	}
	if era.AtLeast(6, 12) {
		if free, ok := z.FreeByMigratetype["HighAtomic"]; ok {
			var n uint64
			for o, b := range free {
				if o < 64 {
					n += b << o
				}
			}
			return n
		}
	}
	return z.ReservedHighatomic
}

// letters are show_migration_types' (mm/page_alloc.c, mm/show_mem.c).
var letters = map[byte]string{'U': Unmovable, 'M': Movable, 'E': Reclaimable, 'H': "HighAtomic",
	'C': "CMA", 'I': "Isolate", 'R': "Reserve"}

// usableFunc says whether the zone has a free block of an order on a list
// the request may take; typesKnown is false when neither pagetypeinfo nor a
// log's letters say which lists hold the blocks.
//
// Before 4.4 that is __rmqueue's: the request's own list, then fallbacks[]
// (every other type and MIGRATE_RESERVE; MIGRATE_CMA only for movable
// requests), never MIGRATE_ISOLATE (mm/page_alloc.c 3.10). From 4.4 it is
// __zone_watermark_ok's look-up: the Unmovable, Movable and Reclaimable
// lists (MIGRATE_PCPTYPES), CMA with ALLOC_CMA, HighAtomic with
// ALLOC_HARDER (ALLOC_HIGHATOMIC or ALLOC_OOM from 6.3); 4.4 to 4.14
// returned true for ALLOC_HARDER on any non-empty order, which b050e3769c6b
// ("mm, page_alloc: fix potential false positive in __zone_watermark_ok",
// 4.15) narrowed to the HighAtomic list.
func usableFunc(z *snapshot.Zone, req Request) (usable func(order int) bool, typesKnown bool) {
	era := req.Era
	ok := func(t string) bool {
		switch t {
		case "Isolate":
			return false
		case "CMA":
			return req.CMA
		case "HighAtomic":
			return req.HighAtomic
		}
		return true
	}
	if era.AtLeast(4, 4) && !era.AtLeast(4, 15) && req.Harder {
		return func(o int) bool { return z.FreeBlocks[o] > 0 }, true
	}
	switch {
	case z.FreeByMigratetype != nil:
		return func(o int) bool {
			for t, free := range z.FreeByMigratetype {
				if o < len(free) && free[o] > 0 && ok(t) {
					return true
				}
			}
			return false
		}, true
	case z.FreeTypeLetters != nil:
		return func(o int) bool {
			if o >= len(z.FreeTypeLetters) {
				return false
			}
			for i := 0; i < len(z.FreeTypeLetters[o]); i++ {
				t, known := letters[z.FreeTypeLetters[o][i]]
				if !known || ok(t) {
					return true
				}
			}
			return false
		}, true
	}
	return func(o int) bool { return z.FreeBlocks[o] > 0 }, false
}

// watermark is __zone_watermark_ok for the era with v's numbers, then the
// free-block look-up.
func watermark(z *snapshot.Zone, req Request, v Zone, usable func(int) bool, kb func(uint64) string) check {
	o := req.Order
	need := int64(1)<<o - 1 // free_pages -= (1 << order) - 1
	free := int64(v.Free) - need - int64(v.CMA)
	min, res := int64(v.Min), int64(v.Reserve)
	var b strings.Builder
	fmt.Fprintf(&b, "%s free", kb(v.Free))
	if v.CMA > 0 {
		fmt.Fprintf(&b, " less %s free CMA (no ALLOC_CMA)", kb(v.CMA))
	}
	if !req.Era.AtLeast(4, 4) {
		// 3.10: free CMA is left out of the first test only; the loop runs
		// on free_pages with it (3.10.99, after 026b08147923).
		if free <= min+res {
			fmt.Fprintf(&b, " minus the %s asked for is at or below %s (__zone_watermark_ok, mm/page_alloc.c 3.10)",
				kb(uint64(need+1)), minText(v, kb))
			return check{order0: true, reason: b.String(), summary: belowMin(v)}
		}
		fl, m := int64(v.Free)-need, min
		for k := 0; k < o; k++ {
			fl -= int64(z.FreeBlocks[k] << k)
			m >>= 1
			if fl <= m {
				fmt.Fprintf(&b, " is above %s, but what is left in blocks of order %d or more after the "+
					"request, %s, is at or below min>>%d = %s: the per-order check fails "+
					"(__zone_watermark_ok 3.10, before 4.4's 97a16fc82a7c)", minText(v, kb), k+1,
					kb(uint64(max(fl, 0))), k+1, kb(uint64(m)))
				sum := noBlock(z, o)
				if v.LargestUsableOrder >= 0 {
					sum = fmt.Sprintf("too little free in blocks of order %d or more", k+1)
				}
				return check{reason: b.String(), summary: sum}
			}
		}
		if v.LargestUsableOrder < 0 {
			fmt.Fprintf(&b, " passes __zone_watermark_ok 3.10, but no free block of order %d or more is on a "+
				"list the request may take (__rmqueue's fallbacks, 3.10)", o)
			return check{reason: b.String(), summary: noBlock(z, o)}
		}
		fmt.Fprintf(&b, " stays above %s at every order up to %d, and a free block of order %d is on a "+
			"usable list (__zone_watermark_ok and __rmqueue, 3.10)", minText(v, kb), o, v.LargestUsableOrder)
		return check{ok: true, reason: b.String(), summary: okBlock(v)}
	}
	free -= int64(v.Highatomic)
	if v.Highatomic > 0 {
		fmt.Fprintf(&b, " less %s HighAtomic reserve", kb(v.Highatomic))
	}
	if free <= min+res {
		fmt.Fprintf(&b, " minus the %s asked for is at or below %s (__zone_watermark_ok, order-0 part, "+
			"mm/page_alloc.c 4.4+)", kb(uint64(need+1)), minText(v, kb))
		return check{order0: true, reason: b.String(), summary: belowMin(v)}
	}
	if o == 0 {
		fmt.Fprintf(&b, " is above %s: an order-0 request needs nothing more (__zone_watermark_ok 4.4+)",
			minText(v, kb))
		return check{ok: true, reason: b.String(), summary: "above min"}
	}
	if v.LargestUsableOrder < 0 {
		fmt.Fprintf(&b, " is above %s, but no free block of order %d or more is on a list the request may "+
			"take (__zone_watermark_ok 4.4+, 97a16fc82a7c)", minText(v, kb), o)
		if lf := z.LargestFreeOrder(); lf >= o {
			fmt.Fprintf(&b, "; the order-%d blocks sit only on HighAtomic, CMA or Isolate lists", lf)
		}
		return check{reason: b.String(), summary: noBlock(z, o)}
	}
	fmt.Fprintf(&b, " is above %s and a free block of order %d is on a list the request may take "+
		"(__zone_watermark_ok 4.4+, 97a16fc82a7c)", minText(v, kb), v.LargestUsableOrder)
	return check{ok: true, reason: b.String(), summary: okBlock(v)}
}

func belowMin(v Zone) string {
	if v.Reserve > 0 {
		return "at or below min + lowmem_reserve after the request"
	}
	return "at or below min after the request"
}

func okBlock(v Zone) string {
	return fmt.Sprintf("free block of order %d, above min", v.LargestUsableOrder)
}

// noBlock says why no block serves: none that large, or only on lists the
// request may not take.
func noBlock(z *snapshot.Zone, o int) string {
	lf := z.LargestFreeOrder()
	if lf >= o {
		return fmt.Sprintf("no free block of order %d or more on a list it may take (largest %d on "+
			"HighAtomic/CMA/Isolate)", o, lf)
	}
	return fmt.Sprintf("no free block of order %d or more (largest %d)", o, lf)
}

func minText(v Zone, kb func(uint64) string) string {
	s := "min " + kb(v.Min)
	if v.Min != v.Watermark {
		s += fmt.Sprintf(" (watermark %s reduced for the request)", kb(v.Watermark))
	}
	if v.Reserve > 0 {
		s += " + lowmem_reserve " + kb(v.Reserve)
	}
	return s
}

func kbFunc(s *snapshot.Snapshot) func(uint64) string {
	ps := uint64(s.PageBytes())
	return func(p uint64) string { return fmt.Sprintf("%d kB", p*ps/1024) }
}

// estimateReserve is setup_per_zone_lowmem_reserve for zone z and the
// request's highest zone ti: the managed pages of the zones above z up to
// ti on z's node, over z's lowmem_reserve_ratio default (mm/page_alloc.c:
// DMA 256, DMA32 256, Normal 32 in 3.10 and 6.12; HighMem 32 until
// "mm/page_alloc: don't reserve ZONE_HIGHMEM for ZONE_MOVABLE request",
// 4.14, 0 since; Movable 0). A ratio of 0 or a zone with nothing managed
// keeps no reserve (6.12's "clear"). A zone with unknown managed pages
// counts with its free pages, a lower bound.
func estimateReserve(s *snapshot.Snapshot, z *snapshot.Zone, enum []string, zi, ti int, era Era) uint64 {
	var ratio uint64
	switch z.Name {
	case "DMA", "DMA32":
		ratio = 256
	case "Normal":
		ratio = 32
	case "HighMem":
		if !era.AtLeast(4, 14) {
			ratio = 32
		}
	}
	if ratio == 0 || max(z.Managed, z.FreePages()) == 0 {
		return 0
	}
	var upper uint64
	for i := range s.Zones {
		y := &s.Zones[i]
		yi := slices.Index(enum, y.Name)
		if y.Node != z.Node || yi <= zi || yi > ti {
			continue
		}
		upper += max(y.Managed, y.FreePages())
	}
	return upper / ratio
}

// Row is the free-memory table's verdict row for requests made by req (one
// per order), judged on s: the cells the snapshot package prints.
func Row(s *snapshot.Snapshot, legendRequest string, req func(order int) Request) *snapshot.VerdictRow {
	cache := map[int]*Judgment{}
	return &snapshot.VerdictRow{
		Legend: "verdict for " + legendRequest + ": ok | FRAG (compaction helps) | EXHAUST | RESERVE " +
			"(lowmem_reserve) | - (n/a)",
		Cell: func(zone, order int) string {
			j, ok := cache[order]
			if !ok {
				j = Judge(s, req(order))
				cache[order] = j
			}
			return Cell(j.Zones[zone].Verdict)
		},
	}
}

// Cell is the short, upper-case-for-failures form of a verdict for tables.
func Cell(v Verdict) string {
	switch v {
	case VerdictOK:
		return "ok"
	case VerdictFragmentation:
		return "FRAG"
	case VerdictExhaustion:
		return "EXHAUST"
	case VerdictReserved:
		return "RESERVE"
	}
	return "-"
}
