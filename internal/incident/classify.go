package incident

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/allocrule"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/memcg"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// Errno values the rules test (asm-generic/errno-base.h).
const (
	errnoENOMEM  = 12
	errnoENOSPC  = 28
	errnoENOBUFS = 105
)

// memoryErrno: the call failed for want of memory (ENOMEM, or ENOBUFS from
// a network namespace's set-up), or the incident has no syscall (degraded
// modes), so a memcg refusal can explain it.
func memoryErrno(sc Syscall) bool {
	return sc.Name == "" || sc.Errno == errnoENOMEM || sc.Errno == errnoENOBUFS
}

// memcgText says which memory cgroup refused and what shows it.
func memcgText(f *memcg.Finding) string {
	var b strings.Builder
	fmt.Fprintf(&b, "memory cgroup %s (cgroup v%d) ", f.Path, f.Version)
	switch {
	case f.Delta > 0:
		fmt.Fprintf(&b, "refused charges: %s rose by %d to %d since the reading at %s", f.Counter, f.Delta,
			f.Count, f.Since.Format("15:04:05.000"))
	default:
		fmt.Fprintf(&b, "is at its limit with %s %d", f.Counter, f.Count)
	}
	if f.Limit >= 0 {
		fmt.Fprintf(&b, "; usage %d kB of its %d kB limit", f.Usage/1024, f.Limit/1024)
	}
	if f.From == "cgroup_path" {
		b.WriteString(" (the task had exited before it was read: read at its cgroup's path in the memory hierarchy)")
	}
	return b.String()
}

// classify applies the rules, first match wins:
//
//  1. namespace_limit: the syscall (clone, clone3, unshare, setns) asked
//     for CLONE_NEW* namespaces and returned ENOSPC, which is what
//     inc_ucount's user.max_*_namespaces check returns (copy_net_ns:
//     -ENOSPC). The brief's rule adds "and no allocation failure inside";
//     here ENOSPC wins even with failures inside, because a failed page
//     allocation propagates as ENOMEM, never as ENOSPC: the failures are
//     listed and a reason line says they were not what failed the call.
//  2. No failed allocation inside the syscall: unknown, with the reason
//     saying which hooks were missing (from Start.Hooks) or, when every hook
//     was attached, that the failure came from outside the page allocator.
//  3. No snapshot at or before the failure: unknown.
//  4. The primary allocation (see primary) could be served now: some
//     eligible zone is "ok" by internal/allocrule (the zonelist from gfp_zone
//     down, lowmem_reserve, the era's __zone_watermark_ok, the free lists
//     the request may take), j. Then if the allocation
//     was memcg-accounted (__GFP_ACCOUNT; 3.10: __GFP_KMEMCG), the page
//     allocator was not the obstacle, so the charge failed: memcg_limit.
//     Otherwise unknown: the picture changed after the failure, or the
//     allocation was restricted in a way a snapshot cannot see.
//  5. Some eligible zone has enough free memory above its watermarks but
//     no block it may take, with a fragmentation index above
//     vm.extfrag_threshold (allocrule's "fragmentation"): fragmentation.
//  6. Every eligible zone is at or below min (+ reserve), or its index is
//     at or below the threshold (too little free memory for compaction to
//     help): exhaustion.
//  7. Otherwise (the order is beyond every zone's free lists): unknown.
//
// Order-0 failures, opportunistic (__GFP_NORETRY/__GFP_NOWARN) attempts,
// allocations without direct reclaim and memcg-accounted ones that the page
// allocator could not serve each add a reason line.
func (c *Correlator) classify(inc *Incident, prim *event.AllocFail, j *allocrule.Judgment) Verdict {
	var v Verdict
	add := func(format string, args ...any) { v.Reasons = append(v.Reasons, fmt.Sprintf(format, args...)) }
	sc := inc.Syscall
	ns := aggregate.Namespaces(sc.Name, sc.Flags)

	if sc.Errno == errnoENOSPC && ns != 0 && isNsSyscall(sc.Name) {
		v.Cause = CauseNamespaceLimit
		add("%s(%s) returned ENOSPC: a namespace count limit was reached (inc_ucount checks the "+
			"user.max_*_namespaces sysctls of the creating user namespace and its ancestors)", sc.Name, sc.FlagsText)
		for _, n := range inc.Netns {
			if n.Errno == errnoENOSPC {
				add("copy_net_ns returned ENOSPC: user.max_net_namespaces is the one exhausted")
				break
			}
		}
		if len(inc.Allocs) > 0 {
			add("%d page allocation failure(s) inside were absorbed: a failed allocation returns "+
				"ENOMEM, not ENOSPC", len(inc.Allocs))
		}
		return v
	}
	if sc.Name == "" && len(inc.Netns) > 0 && inc.Netns[0].Errno == errnoENOSPC && prim == nil {
		v.Cause = CauseNamespaceLimit
		add("copy_net_ns returned ENOSPC: user.max_net_namespaces was reached")
		return v
	}

	if f := inc.Memcg; f != nil && memoryErrno(sc) {
		acct := true
		if prim != nil {
			_, acct = c.accounted(prim.GFP)
		}
		if acct {
			v.Cause = CauseMemcgLimit
			add("%s", memcgText(f))
			if prim == nil {
				add("no page allocation failed: the refused charges were kernel objects charged to the " +
					"cgroup (GFP_KERNEL_ACCOUNT slab objects of the new task or namespaces), which never " +
					"reach the page allocator")
			} else {
				name, _ := c.accounted(prim.GFP)
				add("gfp has %s: the order-%d allocation was charged to the cgroup, and the charge is what "+
					"failed", name, prim.Order)
			}
			if sc.Errno == errnoENOBUFS {
				add("ENOBUFS rather than ENOMEM: a network subsystem's per-namespace set-up reports its " +
					"failed allocation so")
			}
			return v
		}
	}

	if prim == nil {
		v.Cause = CauseUnknown
		switch {
		case sc.Name != "" && sc.Errno != errnoENOMEM:
			add("%s returned %s, not ENOMEM, and no page allocation failed inside it: %s",
				sc.Name, orErrno(sc.ErrnoName, sc.Errno), errnoHint(sc.Errno))
		default:
			what := "the failure"
			if sc.Name != "" {
				what = sc.Name + " returned ENOMEM but"
			}
			if len(inc.Slabs) > 0 || len(inc.Netns) > 0 {
				add("%s no failed page allocation was seen under %s", what, strings.Join(inc.Chain, " -> "))
			} else {
				add("%s no failed page allocation, slab cache creation or copy_net_ns was seen", what)
			}
		}
		v.Reasons = append(v.Reasons, c.missingHooks()...)
		return v
	}

	order := int(prim.Order)
	c.flagReasons(&v, prim)
	if inc.Memory == nil {
		v.Cause = CauseUnknown
		add("no free-memory snapshot had been taken before the failure: fragmentation and " +
			"exhaustion cannot be told apart")
		if name, ok := c.accounted(prim.GFP); ok {
			add("gfp has %s: a memcg charge failure would also end in this NULL", name)
		}
		return v
	}
	m := inc.Memory
	judged := func(z *Zone) *allocrule.Zone {
		if j != nil {
			for i := range j.Zones {
				if jz := &j.Zones[i]; jz.Node == z.Node && jz.Name == z.Name {
					return jz
				}
			}
		}
		return nil
	}
	minText := func(z *Zone) string { return minText(z, judged(z)) }
	var served, frag, exhaust []*Zone
	for i := range m.Zones {
		z := &m.Zones[i]
		switch allocrule.Verdict(z.Verdict) {
		case allocrule.VerdictOK:
			served = append(served, z)
		case allocrule.VerdictFragmentation:
			frag = append(frag, z)
		case allocrule.VerdictExhaustion, allocrule.VerdictReserved:
			exhaust = append(exhaust, z)
		}
	}
	// Reasons follow the zonelist: the target zone first, then the ones the
	// allocator fell back to.
	for _, zs := range [][]*Zone{served, frag, exhaust} {
		slices.SortStableFunc(zs, func(a, b *Zone) int { return cmp.Compare(allocrule.ZoneRank(b.Name), allocrule.ZoneRank(a.Name)) })
	}
	age := m.Time.Sub(prim.Time)
	switch {
	case len(served) > 0:
		z := served[0]
		if name, ok := c.accounted(prim.GFP); ok {
			v.Cause = CauseMemcgLimit
			add("%s had free blocks up to order %d and %d kB free, above %s: the page "+
				"allocator could serve this order-%d allocation", zoneLabel(m, z), z.LargestFreeOrder,
				z.FreeKB, minText(z), order)
			add("gfp has %s: the allocation was charged to the task's memory cgroup, and the charge is "+
				"what failed", name)
		} else if m.Reason == snapshot.ReasonAtFailure {
			v.Cause = CauseUnknown
			add("the kernel's reading of the free lists at the failure shows %s could serve order %d "+
				"(largest free order %d): the allocation was restricted in a way the free lists cannot "+
				"show (cpuset, __GFP_THISNODE, a mempolicy, another node), or a block was freed between "+
				"the allocator's last attempt and the reading", zoneLabel(m, z), order, z.LargestFreeOrder)
		} else {
			v.Cause = CauseUnknown
			add("the snapshot (%s after the allocation failed) shows %s could serve order %d now (largest free "+
				"order %d): memory changed between the failure and the snapshot, or the allocation was "+
				"restricted in a way a snapshot cannot see (cpuset, __GFP_THISNODE, a mempolicy)",
				fmtAge(age), zoneLabel(m, z), order, z.LargestFreeOrder)
		}
	case len(frag) > 0:
		v.Cause = CauseFragmentation
		for _, z := range frag {
			if z.LargestFreeOrder >= order {
				// A block that size is free, but on a list this
				// request may not take: allocrule says which.
				jz := judged(z)
				add("%s: %d kB free, above %s, but the free blocks of order %d or more sit on "+
					"lists this request may not take (HighAtomic, CMA, Isolate)%s", zoneLabel(m, z),
					z.FreeKB, minText(z), order, reasonSuffix(jz))
				continue
			}
			add("%s: %d kB free, above %s, but the largest free block is order %d (%d kB) and "+
				"order %d needs %d kB contiguous; fragmentation index %s > extfrag_threshold %s: "+
				"the memory is there in pieces, compaction could assemble the block", zoneLabel(m, z),
				z.FreeKB, minText(z), z.LargestFreeOrder, blockKB(m, z.LargestFreeOrder), order,
				blockKB(m, order), snapshot.FormatIndex(z.FragIndex[order]),
				snapshot.FormatIndex(m.ExtfragThreshold))
		}
		c.exhaustReasons(&v, m, exhaust, order, judged)
		if name, ok := c.accounted(prim.GFP); ok {
			add("gfp has %s (memcg-accounted), but no eligible zone had a block of order %d, so the "+
				"page allocator itself failed, not the memcg charge", name, order)
		}
	case len(exhaust) > 0:
		v.Cause = CauseExhaustion
		c.exhaustReasons(&v, m, exhaust, order, judged)
	default:
		v.Cause = CauseUnknown
		add("order %d is beyond the free lists of every eligible zone: the allocator refuses such "+
			"a request outright", order)
	}
	return v
}

func (c *Correlator) exhaustReasons(v *Verdict, m *Memory, zones []*Zone, order int,
	judged func(*Zone) *allocrule.Zone) {
	minText := func(z *Zone) string { return minText(z, judged(z)) }
	for _, z := range zones {
		var r string
		switch {
		case z.Verdict == verdictReserved:
			r = fmt.Sprintf("%s: %d kB free is within its lowmem_reserve of %d kB (+ min %d kB) kept "+
				"back from %s allocations", zoneLabel(m, z), z.FreeKB, z.ReserveKB, z.MinKB, m.TargetZone)
			if estimated(judged(z)) != "" {
				r += "; the reserve is estimated: the snapshot has no protection line"
			}
		case z.FreeKB <= z.MinKB+z.ReserveKB+blockKB(m, order):
			r = fmt.Sprintf("%s: %d kB free, at or below %s after taking the %d kB asked for",
				zoneLabel(m, z), z.FreeKB, minText(z), blockKB(m, order))
		default:
			r = fmt.Sprintf("%s: largest free order %d; fragmentation index for order %d is %s <= "+
				"extfrag_threshold %s: too little free memory, compaction would not help",
				zoneLabel(m, z), z.LargestFreeOrder, order, snapshot.FormatIndex(z.FragIndex[order]),
				snapshot.FormatIndex(m.ExtfragThreshold))
		}
		v.Reasons = append(v.Reasons, r)
	}
}

// flagReasons adds the lines about the primary allocation itself.
func (c *Correlator) flagReasons(v *Verdict, a *event.AllocFail) {
	add := func(s string) { v.Reasons = append(v.Reasons, s) }
	if a.Order == 0 {
		add("order 0: any free page serves it, so fragmentation cannot explain it; " +
			"the zones were at their watermarks or a charge failed")
	}
	if c.opportunistic(a.GFP) {
		add("gfp has __GFP_NORETRY/__GFP_NOWARN: an opportunistic attempt that gives up early; " +
			"its caller usually retries smaller (SLUB, AF_PACKET rings)")
	}
	for _, n := range []string{"__GFP_DIRECT_RECLAIM", "__GFP_WAIT"} {
		if _, known := c.sess.GFP().Lookup(n); known {
			if !c.sess.GFP().Has(a.GFP, n) {
				add("gfp lacks " + n + ": the allocator could neither reclaim nor compact for it")
			}
			break
		}
	}
	if a.Hook == hookAllocFexit || a.Hook == "fexit" {
		add("seen by the fexit hook: it also sees failures injected by fail_page_alloc or BPF")
	}
}

// missingHooks says which hooks could not see this failure.
func (c *Correlator) missingHooks() []string {
	if c.sess.Start() == nil {
		return []string{"no session start event: which hooks were attached is unknown"}
	}
	what := map[string]string{
		hookPageAlloc: "failed page allocations are invisible",
		hookAllocFexit: "injected failures (fail_page_alloc, BPF on should_fail_alloc_page) are invisible: " +
			"they return before the kmem:mm_page_alloc tracepoint",
		hookSlabCreate: "failed slab cache creations are invisible",
		hookNetns:      "copy_net_ns results are invisible",
	}
	var out []string
	for _, h := range []string{hookPageAlloc, hookAllocFexit, hookSlabCreate, hookNetns} {
		st, ok := c.sess.Hook(h)
		if ok && st.Attached {
			continue
		}
		line := "the " + h + " hook was not attached"
		if st.Reason != "" {
			line += " (" + st.Reason + ")"
		}
		out = append(out, line+", so "+what[h])
	}
	if len(out) == 0 {
		out = append(out, "every hook was attached and none saw a failure: the error came from "+
			"outside the page allocator (a memcg charge of a slab object, a vmalloc or percpu "+
			"allocation, or a check that fails without allocating)")
	}
	return out
}

func isNsSyscall(name string) bool {
	switch name {
	case "clone", "clone3", "unshare", "setns":
		return true
	}
	return false
}

func errnoHint(e int32) string {
	switch e {
	case 1:
		return "a permission check (CAP_SYS_ADMIN in the owning user namespace, seccomp, LSM)"
	case 11:
		return "a task limit (RLIMIT_NPROC, pids cgroup, kernel.pid_max)"
	case 22:
		return "invalid flags for this kernel or this task (e.g. CLONE_NEWUSER in a multithreaded task)"
	case 87:
		return "user namespaces nested too deep (32 levels)"
	case errnoENOSPC:
		return "ENOSPC without CLONE_NEW* flags is not a namespace limit"
	}
	return "not a memory failure as far as fragscope can see"
}

func orErrno(name string, e int32) string {
	if name != "" {
		return name
	}
	return "errno " + strconv.Itoa(int(e))
}

// zoneLabel names a zone, with its node when the picture has several.
func zoneLabel(m *Memory, z *Zone) string {
	for i := range m.Zones {
		if m.Zones[i].Node != z.Node {
			return fmt.Sprintf("node %d %s", z.Node, z.Name)
		}
	}
	return z.Name
}

// minText is the level a zone must stay above for the allocation: its min
// watermark, plus the lowmem_reserve when the allocation could use a
// higher zone, said to be estimated when allocrule had to estimate it.
func minText(z *Zone, jz *allocrule.Zone) string {
	if z.ReserveKB == 0 {
		return fmt.Sprintf("min %d kB", z.MinKB)
	}
	return fmt.Sprintf("min %d kB + lowmem_reserve %d kB%s", z.MinKB, z.ReserveKB, estimated(jz))
}

// estimated marks a reserve allocrule estimated (no protection line).
func estimated(jz *allocrule.Zone) string {
	if jz != nil && jz.ReserveSource == allocrule.ReserveEstimated && jz.Reserve > 0 {
		return " (estimated: the snapshot has no protection line)"
	}
	return ""
}

// reasonSuffix is allocrule's first reason for a zone, after a colon.
func reasonSuffix(jz *allocrule.Zone) string {
	if jz == nil || len(jz.Reasons) == 0 {
		return ""
	}
	return ": " + jz.Reasons[0]
}

func blockKB(m *Memory, order int) uint64 {
	if order < 0 {
		return 0
	}
	return uint64(m.PageSize) << order / 1024
}

func fmtAge(d time.Duration) string {
	if d < 0 {
		return "-" + (-d).String()
	}
	return d.String()
}
