package incident

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/session"
)

// CauseOpportunistic: the failed attempt was one the caller makes expecting
// it may fail (__GFP_NORETRY or __GFP_NOWARN) and has a fallback for: the
// failure by itself cost nothing.
const CauseOpportunistic Cause = "opportunistic"

// ClosedByKernelLog: the incident was closed by the last kernel report of
// a failure (event.KernelReport), since no syscall exit will come for it.
const ClosedByKernelLog = "kernel_log"

// KernelLog is what the kernel log said about an incident.
type KernelLog struct {
	Source        string `json:"source,omitempty"`
	KernelRelease string `json:"kernel_release,omitempty"`
	// What is what failed, as the headline names it: "order-6 page
	// allocation", "kmem_cache_create(nf_conntrack_ffff8803eef66180)"...
	What    string         `json:"what"`
	Reports []KernelReport `json:"reports"`
	// Paths are the known code paths the call traces show (Path* values),
	// outermost first; Fallback is what the caller does when the attempt
	// fails, when the trace shows a caller with one.
	Paths    []string `json:"paths,omitempty"`
	Fallback string   `json:"fallback,omitempty"`
}

// KernelReport is one report of the incident, and what of it could not be read.
type KernelReport struct {
	Time         time.Time `json:"time"`
	Kind         string    `json:"kind"`
	Header       string    `json:"header"`
	FirstLine    int       `json:"first_line"`
	LastLine     int       `json:"last_line"`
	HaveMemInfo  bool      `json:"have_mem_info"`
	Suppressed   int       `json:"suppressed,omitempty"`
	SuppressedBy string    `json:"suppressed_by,omitempty"`
	Unreadable   []string  `json:"unreadable,omitempty"`
}

// maxReportsPerTask bounds the reports kept for one pending failure.
const maxReportsPerTask = 16

// kernelEvidence returns the pending record of task for evidence read from
// the kernel log. Unlike evidence, it joins whatever the thread has pending,
// inside a syscall or not: the log cannot say which syscall it was in, and
// the BPF events of the same failure are the better half of it.
func (c *Correlator) kernelEvidence(task event.Task, t time.Time) *pending {
	p := c.pending[task.TID]
	if p == nil {
		if len(c.pending) >= c.opt.MaxPending {
			c.evictOldest()
		}
		p = &pending{firstSeq: c.sess.Seq(), task: task}
		c.pending[task.TID] = p
	}
	if p.task.Comm == "" {
		p.task = task // a BPF task (with its cgroup) is kept when there is one
	}
	if t.After(p.last) {
		p.last = t
	}
	return p
}

// kernelAlloc keeps a page allocation failure read from the log. One a BPF
// hook of the same thread already reported is not listed twice.
func (c *Correlator) kernelAlloc(e *event.AllocFail) {
	p := c.kernelEvidence(e.Task, e.Time)
	if e.Duplicate && slices.ContainsFunc(p.allocs, func(a event.AllocFail) bool {
		return a.Hook != hookKmsg && a.Order == e.Order
	}) {
		return
	}
	if len(p.allocs) == maxAllocsPerTask {
		p.allocs = slices.Delete(p.allocs, 0, 1)
	}
	a := *e
	a.Stack = slices.Clone(e.Stack)
	p.allocs = append(p.allocs, a)
}

// kernelSlab keeps a failed slab creation read from the log and reports
// whether e was one: with the kmsg hook attached and the BPF slab_create
// hook not, a SlabCreate can only have come from the log, and it waits for
// the report that closes its failure instead of closing it.
func (c *Correlator) kernelSlab(e *event.SlabCreate) bool {
	if !c.sess.Attached(hookKmsg) || c.attached(hookSlabCreate) {
		return false
	}
	if e.Failed {
		p := c.kernelEvidence(e.Task, e.Time)
		if len(p.slabs) < maxSlabsPerTask {
			p.slabs = append(p.slabs, *e)
		}
	}
	return true
}

// noteSyscallClose remembers when a thread's incident closed at its exit.
func (c *Correlator) noteSyscallClose(tid uint32, at time.Time) {
	if c.syscallClosed == nil {
		c.syscallClosed = map[uint32]time.Time{}
	}
	c.syscallClosed[tid] = at
}

// kernelReport keeps a report and, at the last report of a failure, closes
// its incident. When the thread is inside a watched syscall, the syscall's
// exit closes it instead, with this report as part of the evidence.
func (c *Correlator) kernelReport(e *event.KernelReport) *Incident {
	p := c.kernelEvidence(e.Task, e.Time)
	if len(p.reports) < maxReportsPerTask {
		r := *e
		r.Trace, r.GFPNames, r.Unreadable = slices.Clone(e.Trace), slices.Clone(e.GFPNames), slices.Clone(e.Unreadable)
		if e.OOM != nil {
			o := *e.OOM
			o.Counters = slices.Clone(e.OOM.Counters)
			r.OOM = &o
		}
		p.reports = append(p.reports, r)
	}
	if e.More || (p.syscall != "" && c.attached(hookNsSyscall)) {
		return nil
	}
	delete(c.pending, e.Task.TID)
	if c.explainedAlready(p, e) {
		return nil
	}
	if len(p.allocs) == 0 {
		if r := requestReport(p.reports); r != nil {
			// The request the OOM killer (or a stall) was invoked for: the
			// zones are judged for it, though no NULL was returned yet.
			p.allocs = append(p.allocs, event.AllocFail{Time: r.Time, Task: p.task, Order: uint8(r.Order),
				GFP: r.GFP, Migratetype: -1, Stack: r.Trace, Hook: hookKmsg})
		}
	}
	c.kernelSnap = &struct{ slot *session.Snapshot }{c.kernelPicture(p)}
	inc := c.build(p, p.task, e.Time, ClosedByKernelLog, nil)
	c.kernelSnap = nil
	c.addKernelLog(inc, p)
	inc.Stalls = c.stallsFor(p.task, e.Time)
	return inc
}

// explainedAlready reports whether the failure of these reports was the
// evidence of an incident a syscall exit already closed: every allocation
// of it was a duplicate of a BPF event, and the thread's last incident
// closed at most a few seconds before.
func (c *Correlator) explainedAlready(p *pending, e *event.KernelReport) bool {
	if len(p.allocs) == 0 || slices.ContainsFunc(p.allocs, func(a event.AllocFail) bool { return !a.Duplicate }) {
		return false
	}
	at, ok := c.syscallClosed[e.Task.TID]
	return ok && e.Time.Sub(at) < 5*time.Second && e.Time.Sub(at) > -5*time.Second
}

// requestReport is the report whose order and gfp stand for the request
// when no page allocation failure was printed: a global OOM's or a stall's.
func requestReport(rs []event.KernelReport) *event.KernelReport {
	for i := range rs {
		r := &rs[i]
		if !r.HaveGFP || r.Order < 0 || r.Order >= event.Orders {
			continue
		}
		if r.ReportKind == "page_alloc_stall" || (r.ReportKind == "oom" && !memcgOOM(r)) {
			return r
		}
	}
	return nil
}

// memcgOOM reports whether an OOM report is a memory cgroup's: its
// constraint, its memcg lines, or a trace through the memcg charge path
// (mem_cgroup_out_of_memory <- try_charge; mem_cgroup_oom_synchronize).
func memcgOOM(r *event.KernelReport) bool {
	if r.OOM == nil {
		return false
	}
	if r.OOM.Constraint == "CONSTRAINT_MEMCG" || len(r.OOM.Counters) > 0 || r.OOM.Memcg != "" ||
		strings.Contains(strings.ToLower(r.Header), "memory cgroup") {
		return true
	}
	return slices.ContainsFunc(r.Trace, func(f string) bool {
		switch frameFunc(f) {
		case "mem_cgroup_out_of_memory", "try_charge", "try_charge_memcg", "mem_cgroup_oom_synchronize",
			"mem_cgroup_oom", "__mem_cgroup_try_charge", "mem_cgroup_charge_common":
			return true
		}
		return false
	})
}

// kernelPicture picks the free-memory picture of a kernel-log failure: the
// Mem-Info printed with it; without one, a live snapshot taken after the
// first evidence or a periodic one; never the dump of another report.
func (c *Correlator) kernelPicture(p *pending) *session.Snapshot {
	f := c.sess.FailureSnapshot()
	if slices.ContainsFunc(p.reports, func(r event.KernelReport) bool { return r.HaveMemInfo }) && f.MemSnapshot != nil {
		return &f
	}
	if f.MemSnapshot != nil && f.Seq >= p.firstSeq {
		return &f
	}
	if l := c.sess.Snapshot(); l.MemSnapshot != nil && l.Reason != "failure" {
		return &l
	}
	return nil
}

// addKernelLog adds what the kernel log said to an incident, the chain and
// the advice its call traces show, and corrects the verdict where a
// kernel report decides more than a snapshot would.
func (c *Correlator) addKernelLog(inc *Incident, p *pending) {
	if len(p.reports) == 0 {
		return
	}
	k := &KernelLog{}
	for _, r := range p.reports {
		if k.Source == "" {
			k.Source = r.Source
		}
		if k.KernelRelease == "" {
			k.KernelRelease = r.KernelRelease
		}
		k.Reports = append(k.Reports, KernelReport{Time: r.Time, Kind: r.ReportKind, Header: r.Header,
			FirstLine: r.FirstLine, LastLine: r.LastLine, HaveMemInfo: r.HaveMemInfo,
			Suppressed: r.Suppressed, SuppressedBy: r.SuppressedBy, Unreadable: r.Unreadable})
	}
	if k.KernelRelease == "" && c.sess.Start() != nil {
		k.KernelRelease = c.sess.Start().KernelRelease
	}
	inc.Kernel = k
	frames := kernelFrames(p)
	paths := findPaths(frames)
	for _, r := range p.reports {
		if perMemcgCache(r.Slab) {
			paths.has[PathMemcgCache] = true // 3.10's per-memcg copy of a cache, by its name
		}
	}
	k.Paths = paths.names()
	k.Fallback = paths.fallback
	k.What = kernelWhat(inc, p)
	if inc.Syscall.Name == "" {
		inc.Chain = kernelChain(inc, p, frames, paths)
	}
	c.kernelVerdict(inc, p, paths)
	inc.NextSteps = c.kernelSteps(inc, paths)
}

// kernelFrames are the function names of every trace of the failure,
// innermost first, report by report.
func kernelFrames(p *pending) []string {
	var out []string
	seen := func(tr []string) {
		for _, f := range tr {
			out = append(out, frameFunc(f))
		}
	}
	for _, r := range p.reports {
		seen(r.Trace)
	}
	if len(out) == 0 {
		for _, a := range p.allocs {
			seen(a.Stack)
		}
	}
	return out
}

// frameFunc is the function of "? func+0x1/0x2 [mod]".
func frameFunc(f string) string {
	f = strings.TrimPrefix(f, "? ")
	if i := strings.IndexAny(f, "+ "); i >= 0 {
		f = f[:i]
	}
	// Compiler suffixes: "nf_conntrack_init_net.part.3", "foo.isra.0", "bar.cold".
	if i := strings.IndexByte(f, '.'); i > 0 {
		f = f[:i]
	}
	return f
}

// mainReport is the report the incident is about: the page allocation
// failure, else the OOM report, else the first with a header of its own.
func mainReport(rs []event.KernelReport) *event.KernelReport {
	for _, k := range []string{"page_alloc_failure", "vmalloc_failure", "oom", "slab_create_failure", "page_alloc_stall"} {
		for i := range rs {
			if rs[i].ReportKind == k {
				return &rs[i]
			}
		}
	}
	for i := range rs {
		if rs[i].ReportKind != "callbacks_suppressed" {
			return &rs[i]
		}
	}
	return &rs[0]
}

func kernelWhat(inc *Incident, p *pending) string {
	if len(inc.Slabs) > 0 {
		return "kmem_cache_create(" + inc.Slabs[0].Name + ")"
	}
	m := mainReport(p.reports)
	switch m.ReportKind {
	case "page_alloc_failure":
		return fmt.Sprintf("order-%d page allocation", m.Order)
	case "vmalloc_failure":
		return "vmalloc"
	case "oom":
		if memcgOOM(m) {
			return "memory cgroup charge (OOM killer invoked)"
		}
		return fmt.Sprintf("order-%d allocation (OOM killer invoked)", max(m.Order, 0))
	case "page_alloc_stall":
		return fmt.Sprintf("order-%d page allocation (stalled)", m.Order)
	case "slab_create_failure", "conntrack_slab":
		return "slab cache creation"
	case "slub_alloc_failure", "slab_alloc_failure":
		return "slab page allocation"
	case "mem_info":
		return "Mem-Info excerpt"
	case "callbacks_suppressed":
		return "suppressed reports"
	}
	return m.ReportKind
}

// kernelVerdict corrects the verdict classify made from the evidence, for
// what only a kernel report tells: a memcg OOM's own numbers, an excerpt, a
// dump that contradicts the printed failure, and opportunistic attempts.
func (c *Correlator) kernelVerdict(inc *Incident, p *pending, paths pathSet) {
	m := mainReport(p.reports)
	v := &inc.Verdict
	add := func(format string, args ...any) { v.Reasons = append(v.Reasons, fmt.Sprintf(format, args...)) }
	var prim *Alloc
	for i := range inc.Allocs {
		if inc.Allocs[i].Primary {
			prim = &inc.Allocs[i]
		}
	}
	kinds := map[string]bool{}
	for _, r := range p.reports {
		kinds[r.ReportKind] = true
	}
	switch {
	case m.ReportKind == "oom" && memcgOOM(m):
		*v = Verdict{Cause: CauseMemcgLimit}
		o := m.OOM
		cg := o.Memcg
		if cg == "" {
			cg = "(not printed)"
		} else if inc.Task.CgroupPath == "" {
			inc.Task.CgroupPath = cg
		}
		if o.Constraint != "" {
			add("the OOM killer ran with %s for memory cgroup %s: the cgroup's limit, not the node, ran out", o.Constraint, cg)
		} else {
			add("the OOM report is a memory cgroup's (%s): the cgroup's limit, not the node, ran out", cg)
		}
		for _, x := range o.Counters {
			at := "below"
			if x.LimitKB > 0 && x.UsageKB+4 >= x.LimitKB {
				at = "at"
			}
			add("%s: usage %d kB, %s its limit %d kB, failcnt %d", x.Name, x.UsageKB, at, x.LimitKB, x.Failcnt)
		}
		if o.KilledComm != "" {
			add("killed %s[%d] to bring the cgroup back under its limit", o.KilledComm, o.KilledPID)
		}
		return
	case prim == nil && kinds["mem_info"] && onlyKinds(kinds, "mem_info", "slub_alloc_failure", "slab_alloc_failure", "conntrack_slab"):
		*v = Verdict{Cause: CauseUnknown}
		// The dump's own zones, including those with no free block at all,
		// which the picture leaves out.
		if f := c.sess.FailureSnapshot(); inc.Memory != nil && f.MemSnapshot != nil {
			kb := uint64(f.Snapshot.PageBytes()) / 1024
			for _, z := range f.Snapshot.Zones {
				if z.HaveWatermarks && z.NrFree <= z.Min {
					v.Cause = CauseExhaustion
					add("%s: %d kB free, at or below its min watermark %d kB: no request that must come "+
						"from %s can be served there, whatever its order", z.Name, z.NrFree*kb, z.Min*kb, z.Name)
				}
			}
		}
		add("an excerpt: a Mem-Info dump without the report that printed it, so the order and gfp " +
			"of the request are unknown and no zone can be judged for it")
		return
	case prim == nil && onlyKinds(kinds, "slub_alloc_failure", "slab_alloc_failure"):
		*v = Verdict{Cause: CauseUnknown}
		if perMemcgCache(m.Slab) {
			v.Cause = CauseMemcgLimit
			add("the cache %s is a per-memcg copy (3.10's name(ID:cgroup)): with kmem accounting on, its slab "+
				"pages are charged to that cgroup, and its kmem limit or the cgroup's is what failed the new slab",
				m.Slab)
		} else if c.kernelAtomic(m.GFP, m) || c.kernelOpportunistic(m.GFP, m) {
			v.Cause = CauseOpportunistic
			add("%s could not get a new slab for %s, an atomic or no-retry request: it fails as soon as no "+
				"page is at hand, and its caller copes with NULL", orUnknown(m.Slab), c.sess.FormatGFP(m.GFP))
		} else {
			add("the slab allocator could not get a new slab for %s, and the log has no page allocation "+
				"failure or Mem-Info to say why", orUnknown(m.Slab))
		}
		return
	case m.ReportKind == "vmalloc_failure":
		*v = Verdict{Cause: CauseUnknown}
		add("a vmalloc failure: vmalloc needs virtual address space in the vmalloc area and order-0 pages, " +
			"not contiguous blocks; when free pages are plenty (see the zones) the area is what ran out or the " +
			"size asked was wrong (on 32-bit kernels the area is small: boot with vmalloc=<size>)")
		if inc.Memory != nil {
			for _, z := range inc.Memory.Zones {
				if z.HaveWatermarks && z.FreeKB > z.MinKB {
					add("%s: %d kB free, above min %d kB: not a shortage of pages", zoneLabel(inc.Memory, &z), z.FreeKB, z.MinKB)
				}
			}
		}
		return
	case len(kinds) == 1 && kinds["callbacks_suppressed"]:
		*v = Verdict{Cause: CauseUnknown}
		add("%d reports of %s were dropped by printk's ratelimit and are not in the log", m.Suppressed, orUnknown(m.SuppressedBy))
		return
	}
	// A printed page allocation failure is the page allocator's own: a dump
	// that shows a zone able to serve it contradicts it.
	if prim != nil && m.ReportKind == "page_alloc_failure" && inc.Memory != nil {
		if z := servingZone(inc.Memory); z != nil && (v.Cause == CauseMemcgLimit || v.Cause == CauseUnknown) {
			*v = Verdict{Cause: CauseUnknown}
			add("the Mem-Info printed with the failure shows %s could serve order %d (largest free order %d, "+
				"%d kB free above %s): memory moved between the failure and the dump, or the request was "+
				"restricted in a way the dump does not show (cpuset, __GFP_THISNODE, a mempolicy)",
				zoneLabel(inc.Memory, z), prim.Order, z.LargestFreeOrder, z.FreeKB, minText(z, nil))
		}
	}
	if prim != nil && inc.Memory == nil {
		for i, r := range v.Reasons {
			if strings.HasPrefix(r, "no free-memory snapshot") {
				v.Reasons[i] = "the log has no Mem-Info for this report (cut from the excerpt, or not printed): " +
					"fragmentation and exhaustion cannot be told apart"
			}
		}
	}
	if prim == nil && len(inc.Slabs) > 0 {
		*v = Verdict{Cause: CauseUnknown}
		add("kmem_cache_create(%s) failed with ENOMEM and the log has no page allocation failure for it: "+
			"the allocation that failed was not printed (__GFP_NOWARN, the 10 s ratelimit, cut from the excerpt) "+
			"or was no page allocation (a memcg charge, vmalloc, percpu)", inc.Slabs[0].Name)
		return
	}
	atomic := prim != nil && c.kernelAtomic(prim.GFP, m) && v.Cause != CauseExhaustion
	// A high-order attempt whose caller has a smaller fallback (SLUB's min
	// order, vmalloc, order-0 pages) fails by design as much as a no-retry one.
	fallsBack := prim != nil && prim.Order > 0 && paths.fallback != "" && v.Cause != CauseExhaustion
	if atomic && paths.fallback == "" {
		if paths.has[PathRXRefill] || paths.has[PathSoftirq] {
			paths.fallback = "the network stack drops the packet and the driver refills its ring on a later poll"
		} else {
			paths.fallback = "an atomic caller handles the NULL itself (drops or defers the work)"
		}
		inc.Kernel.Fallback = paths.fallback
	}
	if prim != nil && (c.kernelOpportunistic(prim.GFP, m) || atomic || fallsBack) && v.Cause != CauseMemcgLimit {
		was := v.Cause
		zones := v.Reasons
		*v = Verdict{Cause: CauseOpportunistic}
		if fl := c.optFlags(prim.GFP, m); len(fl) > 0 {
			add("gfp has %s: an attempt its caller expects may fail and gives up early, without retrying "+
				"reclaim and compaction", strings.Join(fl, " and "))
		} else if atomic {
			add("an atomic request (gfp %s): it may neither sleep, reclaim nor compact, so it fails as "+
				"soon as no free block is at hand, by design", prim.GFPText)
		} else {
			add("an order-%d attempt whose caller has a smaller fallback", prim.Order)
		}
		if paths.fallback != "" {
			add("the trace shows the fallback: %s", paths.fallback)
		} else {
			add("the trace shows no caller fragscope knows the fallback of: check the caller of the " +
				"allocation for one")
		}
		if was != CauseUnknown || inc.Memory != nil {
			add("what the zones said (%s):", was)
			v.Reasons = append(v.Reasons, zones...)
		}
	}
}

// servingZone is the first eligible zone the rule found able to serve the
// request, nil without one.
func servingZone(m *Memory) *Zone {
	for i := range m.Zones {
		if z := &m.Zones[i]; z.Eligible && z.Verdict == "ok" {
			return z
		}
	}
	return nil
}

// kernelOpportunistic: __GFP_NORETRY or __GFP_NOWARN, by the session's
// table or by the names the log printed.
func (c *Correlator) kernelOpportunistic(g uint64, m *event.KernelReport) bool {
	return len(c.optFlags(g, m)) > 0
}

func (c *Correlator) optFlags(g uint64, m *event.KernelReport) []string {
	var out []string
	for _, n := range []string{"__GFP_NORETRY", "__GFP_NOWARN"} {
		if c.hasFlag(g, n, m) {
			out = append(out, n)
		}
	}
	return out
}

// hasFlag tests a flag by the session's table or the printed names; tables
// of kernels before 4.x spell the flags without the leading "__"
// (show_gfp_flags: "GFP_WAIT", "GFP_NORETRY").
func (c *Correlator) hasFlag(g uint64, name string, m *event.KernelReport) bool {
	short := strings.TrimPrefix(name, "__")
	return c.sess.GFP().Has(g, name) || c.sess.GFP().Has(g, short) ||
		slices.Contains(m.GFPNames, name) || slices.Contains(m.GFPNames, short)
}

// kernelAtomic: a request that may not enter direct reclaim (GFP_ATOMIC,
// GFP_NOWAIT): no __GFP_DIRECT_RECLAIM (4.4+) or __GFP_WAIT (before), when
// the table or the names say so.
func (c *Correlator) kernelAtomic(g uint64, m *event.KernelReport) bool {
	for _, n := range m.GFPNames {
		switch n {
		case "GFP_ATOMIC", "GFP_NOWAIT", "GFP_ATOMIC|__GFP_COMP":
			return true
		case "GFP_KERNEL", "GFP_USER", "GFP_HIGHUSER", "GFP_HIGHUSER_MOVABLE", "GFP_NOFS", "GFP_NOIO", "GFP_KERNEL_ACCOUNT":
			return false
		}
	}
	for _, n := range []string{"__GFP_DIRECT_RECLAIM", "__GFP_WAIT"} {
		for _, name := range []string{n, strings.TrimPrefix(n, "__")} {
			if _, known := c.sess.GFP().Lookup(name); known {
				return !c.sess.GFP().Has(g, name)
			}
		}
	}
	return false
}

// onlyKinds reports whether every report kind is one of these.
func onlyKinds(kinds map[string]bool, allowed ...string) bool {
	for k := range kinds {
		if !slices.Contains(allowed, k) {
			return false
		}
	}
	return len(kinds) > 0
}

// perMemcgCache: 3.10's per-memcg cache names are "base(ID:cgroup)".
func perMemcgCache(name string) bool {
	i := strings.IndexByte(name, '(')
	if i < 0 || !strings.HasSuffix(name, ")") {
		return false
	}
	id, _, ok := strings.Cut(name[i+1:], ":")
	return ok && id != "" && strings.Trim(id, "0123456789") == ""
}

func orUnknown(s string) string {
	if s == "" {
		return "an unnamed function"
	}
	return s
}
