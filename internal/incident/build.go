package incident

import (
	"fmt"
	"slices"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/session"
	"github.com/fragscope/fragscope/internal/slabname"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// build assembles the incident from the pending evidence p.
func (c *Correlator) build(p *pending, task event.Task, at time.Time, closedBy string, sys *event.NsSyscall) *Incident {
	inc := &Incident{
		Time:     at,
		ClosedBy: closedBy,
		Task: Task{PID: task.PID, TID: task.TID, Comm: task.Comm, CgroupID: task.CgroupID,
			CgroupPath: c.sess.CgroupPath(task.CgroupID)},
	}
	if sys != nil {
		ns := aggregate.Namespaces(sys.Syscall, sys.Flags)
		errno := aggregate.AbsErrno(sys.Errno)
		inc.Syscall = Syscall{
			Name: sys.Syscall, Flags: sys.Flags, FlagsText: aggregate.FormatNamespaces(ns),
			Errno: errno, ErrnoName: aggregate.ErrnoName(errno), Enter: sys.Enter, Latency: sys.Latency,
		}
	}

	// Evidence arrives in stream order; sort by time (stable) so a replay
	// merged from several CPUs still lists it chronologically.
	allocs := slices.Clone(p.allocs)
	slices.SortStableFunc(allocs, func(a, b event.AllocFail) int { return a.Time.Compare(b.Time) })
	primary := c.primary(allocs)
	for i := range allocs {
		a := &allocs[i]
		inc.Allocs = append(inc.Allocs, Alloc{
			Time: a.Time, Order: a.Order, GFP: a.GFP, GFPText: c.sess.FormatGFP(a.GFP),
			Migratetype: a.Migratetype, MigratetypeName: c.sess.MigratetypeName(int(a.Migratetype)),
			Stack: a.Stack, Hook: a.Hook, Primary: i == primary,
		})
	}
	for _, s := range p.slabs {
		inc.Slabs = append(inc.Slabs, Slab{Name: s.Name, Group: slabname.Group(s.Name), Size: s.Size})
	}
	for _, n := range p.netns {
		e := aggregate.AbsErrno(n.Errno)
		inc.Netns = append(inc.Netns, Netns{Errno: e, ErrnoName: aggregate.ErrnoName(e)})
	}

	var prim *event.AllocFail
	if primary >= 0 {
		prim = &allocs[primary]
	}
	if slot := c.snapshotFor(p.firstSeq); slot != nil {
		inc.Memory = c.picture(slot, prim)
	}
	inc.Chain = chain(inc, prim)
	inc.Verdict = c.classify(inc, prim)
	inc.Top = c.topCgroups(at)
	inc.NextSteps = c.nextSteps(inc)
	return inc
}

// primary picks the allocation failure the verdict is about: the latest
// one that was not an opportunistic attempt, else the latest. Opportunistic
// attempts (__GFP_NORETRY or __GFP_NOWARN, as SLUB's try at a cache's
// preferred order is) are usually followed by a smaller retry, so the last
// plain failure is the one whose NULL travelled back to the syscall.
func (c *Correlator) primary(allocs []event.AllocFail) int {
	for i := len(allocs) - 1; i >= 0; i-- {
		if !c.opportunistic(allocs[i].GFP) {
			return i
		}
	}
	return len(allocs) - 1
}

func (c *Correlator) opportunistic(g uint64) bool {
	return c.sess.GFP().Has(g, "__GFP_NORETRY") || c.sess.GFP().Has(g, "__GFP_NOWARN")
}

// accounted reports whether an allocation is charged to a memory cgroup:
// __GFP_ACCOUNT since 4.5, __GFP_KMEMCG in 3.8 .. 4.4 (the seed's 3.10).
func (c *Correlator) accounted(g uint64) (string, bool) {
	for _, n := range []string{"__GFP_ACCOUNT", "__GFP_KMEMCG"} {
		if c.sess.GFP().Has(g, n) {
			return n, true
		}
	}
	return "", false
}

// Zone ranks in enum zone_type order. Only the order matters: the
// allocator falls back from the highest zone an allocation may use to the
// ones below it, never above.
var zoneRank = map[string]int{"DMA": 0, "DMA32": 1, "Normal": 2, "HighMem": 3, "Movable": 4}

// lowmemReserveRatio is the default vm.lowmem_reserve_ratio per lower zone
// (mm/page_alloc.c): DMA 256 and DMA32 256 in every kernel from 3.10 to
// 6.18; Normal 32 (before ~4.x only #ifdef CONFIG_HIGHMEM, which matters
// only for allocations that may use a zone above Normal); HighMem and
// Movable 0, no reserve.
var lowmemReserveRatio = map[string]uint64{"DMA": 256, "DMA32": 256, "Normal": 32}

// Zone modifier bits of gfp. They have been the low four bits in every
// kernel from 2.6 to 6.18 (___GFP_DMA 0x01, HIGHMEM 0x02, DMA32 0x04,
// MOVABLE 0x08; 6.10+ enum bits 0..3), and some flag tables omit them (the
// 3.10 print table has no DMA, DMA32 or HIGHMEM entry), so the table is
// asked first and these are the fallback.
const (
	gfpDMA     = 0x01
	gfpHighmem = 0x02
	gfpDMA32   = 0x04
	gfpMovable = 0x08
)

func (c *Correlator) bit(g uint64, name string, fallback uint64) bool {
	if m, ok := c.sess.GFP().Lookup(name); ok {
		return g&m == m
	}
	return g&fallback != 0
}

// targetRank is gfp_zone(): the highest zone the allocation may use.
// __GFP_DMA -> DMA, __GFP_DMA32 -> DMA32, __GFP_HIGHMEM|__GFP_MOVABLE ->
// Movable, __GFP_HIGHMEM -> HighMem, anything else -> Normal. Zones a
// machine lacks (HighMem on 64-bit, Movable without kernelcore=) fall to the
// next one below, as the kernel's zonelists do.
func (c *Correlator) targetRank(g uint64) int {
	switch {
	case c.bit(g, "__GFP_DMA", gfpDMA):
		return zoneRank["DMA"]
	case c.bit(g, "__GFP_DMA32", gfpDMA32):
		return zoneRank["DMA32"]
	case c.bit(g, "__GFP_HIGHMEM", gfpHighmem) && c.bit(g, "__GFP_MOVABLE", gfpMovable):
		return zoneRank["Movable"]
	case c.bit(g, "__GFP_HIGHMEM", gfpHighmem):
		return zoneRank["HighMem"]
	}
	return zoneRank["Normal"]
}

// picture converts a kept snapshot into the incident's Memory and, with a
// primary allocation, decides for each eligible zone.
func (c *Correlator) picture(slot *session.Snapshot, prim *event.AllocFail) *Memory {
	s := slot.Snapshot
	ps := uint64(s.PageSize)
	if ps == 0 {
		ps = 4096
	}
	kb := func(pages uint64) uint64 { return pages * ps / 1024 }
	th := s.Threshold()
	m := &Memory{Time: s.Time, Reason: slot.Reason, PageSize: uint32(ps), ExtfragThreshold: th, Order: -1}
	target := -1
	if prim != nil {
		m.Order = int(prim.Order)
		target = c.targetRank(prim.GFP)
		best := -1
		for i := range s.Zones {
			z := &s.Zones[i]
			if r, ok := zoneRank[z.Name]; ok && r <= target && r > best && !z.Empty() {
				best, m.TargetZone = r, z.Name
			}
		}
	}
	for i := range s.Zones {
		z := &s.Zones[i]
		if z.Empty() {
			continue
		}
		free := z.NrFree
		if free == 0 {
			free = z.FreePages()
		}
		v := Zone{
			Node: z.Node, Name: z.Name, FreeBlocks: slices.Clone(z.FreeBlocks), FreeKB: kb(free),
			LargestFreeOrder: z.LargestFreeOrder(), HaveWatermarks: z.HaveWatermarks,
			MinKB: kb(z.Min), LowKB: kb(z.Low), HighKB: kb(z.High),
		}
		for o := range z.FreeBlocks {
			v.FragIndex = append(v.FragIndex, z.FragIndex(o))
		}
		if r, ok := zoneRank[z.Name]; ok && prim != nil && r <= target {
			v.Eligible = true
			res := reserve(s, z, target)
			v.ReserveKB = kb(res)
			v.Verdict = zoneVerdict(z, int(prim.Order), th, res)
		}
		m.Zones = append(m.Zones, v)
	}
	return m
}

// verdictReserved: the zone could serve the order were it not for the
// lowmem_reserve it keeps back from allocations that may use higher zones.
const verdictReserved = "reserved"

// zoneVerdict is snapshot.Zone.VerdictAt with the zone's lowmem_reserve
// added to its min watermark, which is what __zone_watermark_ok checks for
// an allocation whose highest zone is above this one.
func zoneVerdict(z *snapshot.Zone, order, th int, res uint64) string {
	plain := z.VerdictAt(order, th)
	if res == 0 || !z.HaveWatermarks {
		return string(plain)
	}
	zz := *z
	zz.Min += res
	v := zz.VerdictAt(order, th)
	if v != plain && v == snapshot.VerdictExhaustion {
		return verdictReserved
	}
	return string(v)
}

// reserve estimates lowmem_reserve[target] of zone z: the managed pages of
// the zones above z up to the target on the same node, divided by z's
// lowmem_reserve_ratio (setup_per_zone_lowmem_reserve). It is what keeps a
// GFP_KERNEL allocation out of the 16 MB DMA zone on any machine with more
// than about 4 GB: the seed's DMA zone had order-10 blocks free, and the
// kernel rightly did not use them. A zone with unknown managed pages counts
// with its free pages, a lower bound.
func reserve(s *snapshot.Snapshot, z *snapshot.Zone, target int) uint64 {
	ratio := lowmemReserveRatio[z.Name]
	rz := zoneRank[z.Name]
	if ratio == 0 || rz >= target {
		return 0
	}
	var upper uint64
	for i := range s.Zones {
		y := &s.Zones[i]
		ry, ok := zoneRank[y.Name]
		if !ok || y.Node != z.Node || ry <= rz || ry > target {
			continue
		}
		upper += max(y.Managed, y.FreePages())
	}
	return upper / ratio
}

// chain is the path from the syscall to the failed allocation, outermost
// first, from whatever evidence exists: the syscall, copy_net_ns (its
// failure, or its frame in the allocation's stack), the slab cache, the
// allocation.
func chain(inc *Incident, prim *event.AllocFail) []string {
	var out []string
	if inc.Syscall.Name != "" {
		out = append(out, fmt.Sprintf("%s(%s)", inc.Syscall.Name, inc.Syscall.FlagsText))
	}
	inStack := func(fn string) bool { return prim != nil && slices.Contains(prim.Stack, fn) }
	if len(inc.Netns) > 0 || inStack("copy_net_ns") {
		out = append(out, "copy_net_ns")
	}
	switch {
	case len(inc.Slabs) > 0:
		out = append(out, fmt.Sprintf("kmem_cache_create(%s)", inc.Slabs[0].Name))
	case inStack("kmem_cache_create"):
		out = append(out, "kmem_cache_create")
	}
	if prim != nil {
		out = append(out, fmt.Sprintf("order-%d allocation failed", prim.Order))
	}
	return out
}

// sortedHooks lists the Start's hooks sorted by name, for stable output.
func (c *Correlator) sortedHooks() []event.HookStatus { return c.sess.Hooks() }
