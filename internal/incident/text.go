package incident

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/fragscope/fragscope/internal/memcg"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// Layout: at most width columns; tables use a 10-character row label and
// 7-character columns, 12 orders per band (x86_64 has 11; arm64 with 64 KiB
// pages and CONFIG_ARCH_FORCE_MAX_ORDER can have more, which wrap).
const (
	width         = 100
	labelW        = 10
	colW          = 7
	ordersPerBand = 12
	timeLayout    = "2006-01-02 15:04:05.000 MST"
)

// causeWords is the headline's wording of each cause.
var causeWords = map[Cause]string{
	CauseFragmentation:  "memory fragmentation",
	CauseExhaustion:     "memory exhaustion",
	CauseMemcgLimit:     "memory cgroup limit",
	CauseNamespaceLimit: "namespace limit",
	CauseUnknown:        "cause unknown",
	CauseOpportunistic:  "an opportunistic attempt (fails by design)",
}

var verdictWords = map[string]string{
	string(snapshot.VerdictOK):            "ok",
	string(snapshot.VerdictFragmentation): "FRAG",
	string(snapshot.VerdictExhaustion):    "EXHAUST",
	string(snapshot.VerdictNone):          "-",
	verdictReserved:                       "RESERVED",
	"":                                    "not eligible",
}

// WriteText renders inc as the explanation an operator reads: a headline,
// the chain from the syscall to the failed allocation, the allocation with
// its gfp flags and stack, the free blocks of every zone at that second
// with the fragmentation indices that matter, the verdict and its reasons,
// the cgroups that fragmented memory before, and what to do. Lines stay
// within 100 columns.
func WriteText(w io.Writer, inc *Incident) error {
	bw := bufio.NewWriter(w)
	p := func(indent, rest string, s string) { wrap(bw, s, indent, rest) }

	p("", "  ", headline(inc))
	who := fmt.Sprintf("at %s", inc.Time.Format(timeLayout))
	if inc.Syscall.Name != "" {
		who += fmt.Sprintf(" after %s in the call", inc.Syscall.Latency)
	}
	who += fmt.Sprintf("; pid %d tid %d, cgroup %d", inc.Task.PID, inc.Task.TID, inc.Task.CgroupID)
	if inc.Task.CgroupPath != "" {
		who += " " + inc.Task.CgroupPath
	}
	p("", "  ", who)
	if c := inc.Task.Container; c != nil {
		p("", "  ", containerLine(c))
	}
	if f := inc.Memcg; f != nil {
		p(fmt.Sprintf("memory cgroups (v%d): ", f.Version), "    ", memcgLevels(f))
	}
	writeKernelLog(bw, inc)

	if len(inc.Chain) > 0 {
		fmt.Fprintln(bw)
		p("chain: ", "       ", strings.Join(inc.Chain, " -> "))
	}
	page := uint64(4096)
	if inc.Memory != nil && inc.Memory.PageSize != 0 {
		page = uint64(inc.Memory.PageSize)
	}
	for _, a := range inc.Allocs {
		tag := "allocation"
		if len(inc.Allocs) > 1 && !a.Primary {
			tag = "also failed"
		}
		p("", "  ", fmt.Sprintf("%s: order %d (%d kB contiguous), gfp %#x %s, %s, hook %s", tag, a.Order,
			(page<<a.Order)/1024, a.GFP, a.GFPText, a.MigratetypeName, a.Hook))
		if len(a.Stack) > 0 && a.Primary {
			p("  stack: ", "    ", strings.Join(a.Stack, " <- "))
		}
	}
	for _, s := range inc.Slabs {
		p("", "  ", fmt.Sprintf("slab cache %s (%s) could not be created", s.Name, s.Group))
	}
	for _, n := range inc.Netns {
		p("", "  ", "copy_net_ns failed with "+orErrno(n.ErrnoName, n.Errno))
	}

	if m := inc.Memory; m != nil {
		fmt.Fprintln(bw)
		writeMemory(bw, inc, m)
	}

	fmt.Fprintln(bw)
	fmt.Fprintf(bw, "verdict: %s\n", inc.Verdict.Cause)
	for _, r := range inc.Verdict.Reasons {
		p("  - ", "    ", r)
	}
	writeStalls(bw, inc)
	if t := inc.Top; t.Ticks > 0 {
		fmt.Fprintf(bw, "fragmenting fallbacks in the last %s: %d in %d intervals, by cgroup:\n",
			seconds(t.Window), t.Total, t.Ticks)
		for _, cg := range t.Cgroups {
			path := cg.Path
			if path == "" {
				path = "(path unknown)"
			}
			p(fmt.Sprintf("  %8d  ", cg.Fragmenting), "            ", fmt.Sprintf("%s (cgroup %d)", path, cg.ID))
		}
	}
	if len(inc.NextSteps) > 0 {
		fmt.Fprintln(bw, "next steps:")
		for _, s := range inc.NextSteps {
			p("  - ", "    ", s)
		}
	}
	return bw.Flush()
}

func headline(inc *Incident) string {
	if h := kernelHeadline(inc); h != "" {
		return h
	}
	var what string
	switch {
	case inc.Syscall.Name != "":
		what = fmt.Sprintf("%s(%s)", inc.Syscall.Name, inc.Syscall.FlagsText)
	case inc.Kernel != nil && inc.Kernel.What != "":
		what = inc.Kernel.What
	case len(inc.Netns) > 0:
		what = "copy_net_ns"
	case len(inc.Slabs) > 0:
		what = "kmem_cache_create(" + inc.Slabs[0].Name + ")"
	default:
		what = "namespace creation"
	}
	errno := orErrno(inc.Syscall.ErrnoName, inc.Syscall.Errno)
	if inc.Syscall.Name == "" {
		errno = "ENOMEM"
		if len(inc.Netns) > 0 {
			errno = orErrno(inc.Netns[0].ErrnoName, inc.Netns[0].Errno)
		}
	}
	return fmt.Sprintf("%s by %s[%d] failed with %s: %s", what, inc.Task.Comm, inc.Task.PID, errno,
		causeWords[inc.Verdict.Cause])
}

func writeMemory(w io.Writer, inc *Incident, m *Memory) {
	// Relative to the failed allocation when there is one: that is the
	// moment the picture should show.
	ref, what := inc.Time, "the exit"
	for _, a := range inc.Allocs {
		if a.Primary {
			ref, what = a.Time, "the allocation failed"
		}
	}
	when := "after"
	d := m.Time.Sub(ref)
	if d < 0 {
		when, d = "before", -d
	}
	// "failure" pictures are read after the failure (/proc) or printed
	// with it (a log's Mem-Info); the time says which side of it.
	taken := m.Reason + " snapshot"
	if m.Reason == snapshot.ReasonAtFailure {
		taken = "captured by the kernel at the failure"
	}
	wrap(w, fmt.Sprintf("free blocks by order at %s (%s, %s %s %s), %d kB pages:",
		m.Time.Format(timeLayout), taken, d, when, what, m.PageSize/1024), "", "  ")
	multiNode := false
	for _, z := range m.Zones {
		multiNode = multiNode || z.Node != m.Zones[0].Node
	}
	label := func(z Zone) string {
		if multiNode {
			return fmt.Sprintf("%d/%s", z.Node, z.Name)
		}
		return z.Name
	}
	orders := 0
	for _, z := range m.Zones {
		orders = max(orders, len(z.FreeBlocks))
	}
	bands(w, 0, orders, m.Zones, label, func(z Zone, o int) string {
		if o >= len(z.FreeBlocks) {
			return ""
		}
		return fmt.Sprint(z.FreeBlocks[o])
	})

	verdictHead := "verdict"
	if m.Order >= 0 {
		verdictHead = fmt.Sprintf("order-%d verdict", m.Order)
	}
	fmt.Fprintf(w, "%-*s%10s%10s%10s%10s  %s\n", labelW, "zone", "free kB", "min kB", "low kB", "largest",
		verdictHead)
	for _, z := range m.Zones {
		wm := func(kb uint64) string {
			if !z.HaveWatermarks {
				return "?"
			}
			return fmt.Sprint(kb)
		}
		v := verdictWords[z.Verdict]
		if v == "" {
			v = z.Verdict
		}
		if z.Verdict == verdictReserved {
			v += fmt.Sprintf(" (lowmem_reserve %d kB)", z.ReserveKB)
		}
		if m.Order < 0 {
			v = ""
		}
		fmt.Fprintf(w, "%-*s%10d%10s%10s%10d  %s\n", labelW, label(z), z.FreeKB, wm(z.MinKB), wm(z.LowKB),
			z.LargestFreeOrder, v)
	}
	if m.Order < 0 || m.Order >= orders {
		return
	}
	fmt.Fprintf(w, "frag index, orders >= %d (1.000: free but in pieces, 0: nothing free, "+
		"-1.000: would succeed):\n", m.Order)
	bands(w, m.Order, orders, m.Zones, label, func(z Zone, o int) string {
		if o >= len(z.FragIndex) {
			return ""
		}
		return snapshot.FormatIndex(z.FragIndex[o])
	})
}

// bands writes an "order" header row and one row per zone for orders
// [lo, hi), ordersPerBand at a time.
func bands(w io.Writer, lo, hi int, zones []Zone, label func(Zone) string, cell func(Zone, int) string) {
	for b := lo; b < hi; b += ordersPerBand {
		e := min(b+ordersPerBand, hi)
		var sb strings.Builder
		fmt.Fprintf(&sb, "%-*s", labelW, "order")
		for o := b; o < e; o++ {
			fmt.Fprintf(&sb, "%*d", colW, o)
		}
		sb.WriteByte('\n')
		for _, z := range zones {
			fmt.Fprintf(&sb, "%-*s", labelW, label(z))
			for o := b; o < e; o++ {
				fmt.Fprintf(&sb, "%*s", colW, cell(z, o))
			}
			sb.WriteByte('\n')
		}
		io.WriteString(w, sb.String())
	}
}

// wrap writes s at most width columns wide, breaking at spaces; the first
// line starts with first, the others with rest. A word longer than a line
// (a long path) goes on a line of its own rather than being cut.
func wrap(w io.Writer, s, first, rest string) {
	line := first
	empty := true
	for _, word := range strings.Fields(s) {
		if !empty && len(line)+1+len(word) > width {
			io.WriteString(w, line+"\n")
			line, empty = rest, true
		}
		if !empty {
			line += " "
		}
		line += word
		empty = false
	}
	io.WriteString(w, line+"\n")
}

// seconds renders a window as "60s" rather than Duration's "1m0s".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// containerLine is the incident's "container:" line: pod first, as an SRE
// searches for it, then the runtime and container id.
func containerLine(c *Container) string {
	var parts []string
	switch {
	case c.PodName != "":
		parts = append(parts, fmt.Sprintf("pod %s/%s", c.PodNamespace, c.PodName))
		if c.PodUID != "" {
			parts = append(parts, "uid "+c.PodUID)
		}
	case c.PodUID != "":
		parts = append(parts, "pod uid "+c.PodUID+" (name unknown: no CRI answered while recording)")
	}
	if c.ID != "" || c.Name != "" {
		ctr := "container"
		if c.Name != "" {
			ctr += " " + c.Name
			if c.RuntimeNamespace != "" {
				ctr = "container " + c.RuntimeNamespace + "/" + c.Name
			}
		}
		if c.ID != "" && c.ID != c.Name {
			ctr += " " + c.ID
		}
		if c.Runtime != "" {
			ctr = c.Runtime + " " + ctr
		}
		parts = append(parts, ctr)
	} else if c.Attribution == AttributedSandbox {
		sb := "sandbox (not listed by the runtime)"
		if c.SandboxID != "" {
			sb = "sandbox " + c.SandboxID
		}
		parts = append(parts, strings.TrimSpace(c.Runtime+" "+sb))
	}
	if c.QoS != "" {
		parts = append(parts, c.QoS+" QoS")
	}
	line := "container: " + strings.Join(parts, ", ")
	switch c.Attribution {
	case AttributedRuntime:
		line += " (confirmed by the runtime)"
	case AttributedSandbox:
		line += " (a guess: the failing task is " + c.Runtime + " itself; the pod is the sandbox it was most likely creating at that time: " + c.Guess + ")"
	}
	return line
}

// Headline is the incident's one-line summary, as WriteText's first line:
// what failed, for whom, with which errno and why. The report's cards use it.
func Headline(inc *Incident) string { return headline(inc) }

// ContainerLine is the "container: pod ..., runtime container ..." line of
// WriteText.
func ContainerLine(c *Container) string { return containerLine(c) }

// memcgLevels lists the memory cgroup chain read for the failure,
// innermost first, the refusing one marked.
func memcgLevels(f *memcg.Finding) string {
	var parts []string
	for _, l := range f.Levels {
		s := l.Path
		if l.Limit < 0 {
			s += fmt.Sprintf(" no limit, usage %d kB", l.Usage/1024)
		} else {
			s += fmt.Sprintf(" limit %d kB, usage %d kB", l.Limit/1024, l.Usage/1024)
		}
		if f.Version == 1 {
			s += fmt.Sprintf(", failcnt %d", l.Failcnt)
			if l.HaveKmem && l.KmemFailcnt > 0 {
				s += fmt.Sprintf(", kmem failcnt %d", l.KmemFailcnt)
			}
		} else {
			s += fmt.Sprintf(", events max %d oom %d oom_kill %d", l.EventsMax, l.EventsOOM, l.EventsOOMKill)
		}
		if l.Path == f.Path {
			s += " <- refused"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// MemcgLine lists the memory cgroup chain read for the failure, innermost
// first, the refusing one marked: WriteText's "memory cgroups" line.
func MemcgLine(f *memcg.Finding) string { return memcgLevels(f) }
