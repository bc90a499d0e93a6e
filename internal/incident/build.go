package incident

import (
	"fmt"
	"slices"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/allocrule"
	"github.com/fragscope/fragscope/internal/container"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/session"
	"github.com/fragscope/fragscope/internal/slabname"
)

// build assembles the incident from the pending evidence p.
func (c *Correlator) build(p *pending, task event.Task, at time.Time, closedBy string, sys *event.NsSyscall) *Incident {
	inc := &Incident{
		Time:     at,
		ClosedBy: closedBy,
		Task: Task{PID: task.PID, TID: task.TID, Comm: task.Comm, CgroupID: task.CgroupID,
			CgroupPath: c.sess.CgroupPath(task.CgroupID), Container: c.container(task.CgroupID)},
	}
	if sys != nil && sys.Sandbox != nil && (inc.Task.Container == nil || inc.Task.Container.PodName == "") {
		inc.Task.Container = sandboxContainer(task, sys.Sandbox)
	}
	if sys != nil && sys.Runc != nil && (inc.Task.Container == nil || inc.Task.Container.ID == "") {
		inc.Task.Container = &Container{Runtime: container.RuntimeRunc, ID: sys.Runc.ID, Attribution: AttributedRuncCommand}
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
	var judged *allocrule.Judgment
	// The primary failure's own capture, made by the kernel at the
	// failure, before kcompactd (which the failure woke) or frees could
	// change the free lists that /proc shows a moment later; else the
	// snapshot the stream offers. A kernel-log incident keeps its dump.
	var slot *session.Snapshot
	if prim != nil && c.kernelSnap == nil {
		slot = p.atFail[prim.Time.UnixNano()]
	}
	if slot == nil {
		slot = c.snapshotFor(p.firstSeq)
	}
	if slot != nil {
		inc.Memory, judged = c.picture(slot, prim)
	}
	enter := p.enter
	if sys != nil {
		enter = sys.Enter // zero for a call untracked at entry
	}
	inc.Memcg = c.memcgFinding(task.TID, enter, at)
	inc.Chain = chain(inc, prim)
	inc.Verdict = c.classify(inc, prim, judged)
	if inc.Memcg != nil && inc.Verdict.Cause != CauseMemcgLimit {
		inc.Verdict.Reasons = append(inc.Verdict.Reasons, "also: "+memcgText(inc.Memcg))
	}
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

// picture converts a kept snapshot into the incident's Memory and, with a
// primary allocation, has internal/allocrule judge each zone for it: the
// same rule `snapshot --order` and the watch panel use, with the gfp table
// and the kernel era of the recording. The judgment (nil without a primary)
// carries what Memory does not: where each reserve came from, the reasons.
func (c *Correlator) picture(slot *session.Snapshot, prim *event.AllocFail) (*Memory, *allocrule.Judgment) {
	s := slot.Snapshot
	ps := uint64(s.PageBytes())
	kb := func(pages uint64) uint64 { return pages * ps / 1024 }
	th := s.Threshold()
	m := &Memory{Time: s.Time, Reason: slot.Reason, PageSize: uint32(ps), ExtfragThreshold: th, Order: -1}
	var j *allocrule.Judgment
	if prim != nil {
		m.Order = int(prim.Order)
		j = allocrule.Judge(s, c.request(prim))
		m.TargetZone = j.Target
	}
	for i := range s.Zones {
		z := &s.Zones[i]
		if z.Empty() {
			continue
		}
		v := Zone{
			Node: z.Node, Name: z.Name, FreeBlocks: slices.Clone(z.FreeBlocks), FreeKB: kb(z.FreeCounter()),
			LargestFreeOrder: z.LargestFreeOrder(), HaveWatermarks: z.HaveWatermarks,
			MinKB: kb(z.Min), LowKB: kb(z.Low), HighKB: kb(z.High),
		}
		for o := range z.FreeBlocks {
			v.FragIndex = append(v.FragIndex, z.FragIndex(o))
		}
		if j != nil && j.Zones[i].Eligible {
			jz := &j.Zones[i]
			v.Eligible = true
			v.ReserveKB = kb(jz.Reserve)
			v.Verdict = string(jz.Verdict)
		}
		m.Zones = append(m.Zones, v)
	}
	return m, j
}

// request is the primary allocation as the recording kernel's allocator
// read it: its gfp with the session's table, its kernel era.
func (c *Correlator) request(a *event.AllocFail) allocrule.Request {
	var release string
	if st := c.sess.Start(); st != nil {
		release = st.KernelRelease
	}
	r := allocrule.NewRequest(a.GFP, int(a.Order), c.sess.GFP(), allocrule.ParseRelease(release))
	r.GFPText = c.sess.FormatGFP(a.GFP)
	return r
}

// verdictReserved is allocrule's "reserved": the zone could serve the
// order were it not for the lowmem_reserve it keeps back from allocations
// that may use higher zones.
const verdictReserved = string(allocrule.VerdictReserved)

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

// container names the cgroup's container and pod as the session knows them.
func (c *Correlator) container(id uint64) *Container {
	cg, ok := c.sess.Cgroup(id)
	if !ok || (cg.Container.IsZero() && cg.PodName == "") {
		return nil
	}
	ci := cg.Container
	if ci.ContainerID == "" && ci.PodUID == "" && cg.PodName == "" {
		return nil // a kubepods QoS level alone names no one
	}
	how := AttributedPath
	if cg.Confirmed {
		how = AttributedRuntime
	}
	return &Container{Runtime: ci.Runtime, ID: ci.ContainerID, Name: cg.ContainerName,
		RuntimeNamespace: cg.RuntimeNamespace, PodUID: ci.PodUID,
		PodName: cg.PodName, PodNamespace: cg.PodNamespace, QoS: ci.QoS, Attribution: how}
}

// sandboxContainer is the pod a runtime was guessed to be creating when
// its own netns creation failed: the task is the runtime, the pod a guess.
func sandboxContainer(task event.Task, g *event.SandboxGuess) *Container {
	rt := ""
	switch task.Comm {
	case "containerd":
		rt = container.RuntimeContainerd
	case "crio", "pinns":
		rt = container.RuntimeCRIO
	}
	why := g.Why
	if g.Candidates > 1 {
		why += fmt.Sprintf("; %d pods fitted", g.Candidates)
	}
	return &Container{Runtime: rt, PodUID: g.PodUID, PodName: g.PodName, PodNamespace: g.PodNamespace,
		SandboxID: g.SandboxID, Attribution: AttributedSandbox, Guess: why}
}
