package view

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/allocrule"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/incident"
	"github.com/fragscope/fragscope/internal/snapshot"
)

// width is the terminal width the layout is made for.
const width = 100

// topN bounds the rows of a ranked list (extfrag pairs and cgroups).
const topN = 5

// clearScreen moves the cursor home and clears the screen (ECMA-48 CUP, ED).
const clearScreen = "\x1b[H\x1b[2J"

// Terminal renders a screen per Tick for people; see the package doc for
// how it behaves on a tty and on a file.
type Terminal struct {
	w   io.Writer
	tty bool
	buf bytes.Buffer // one Write per screen: no flicker, one syscall

	incidents int                  // incidents seen
	recent    []*incident.Incident // the newest few, oldest first
}

// NewTerminal returns a terminal view writing to w; tty says whether w is
// a terminal that understands ANSI escapes.
func NewTerminal(w io.Writer, tty bool) *Terminal { return &Terminal{w: w, tty: tty} }

// Event renders a screen at each Tick and, when not on a tty, a notice line
// for each failure as it arrives.
func (t *Terminal) Event(ev event.Event, agg *aggregate.Aggregator) error {
	t.buf.Reset()
	switch e := ev.(type) {
	case *event.Tick:
		t.screen(agg)
	case *event.Start:
		if !t.tty {
			writeStart(&t.buf, e)
		}
	default:
		if !t.tty {
			writeNotice(&t.buf, ev, agg)
		}
	}
	if t.buf.Len() == 0 {
		return nil
	}
	_, err := t.w.Write(t.buf.Bytes())
	return err
}

// Close writes the final summary.
func (t *Terminal) Close(agg *aggregate.Aggregator) error {
	t.buf.Reset()
	if !t.tty {
		t.buf.WriteString(strings.Repeat("=", width) + "\n")
	}
	writeSummary(&t.buf, agg)
	t.writeIncidents(true)
	_, err := t.w.Write(t.buf.Bytes())
	return err
}

// FinalSummary writes the session summary that Close writes, to any writer.
func FinalSummary(w io.Writer, agg *aggregate.Aggregator) error {
	var b bytes.Buffer
	writeSummary(&b, agg)
	_, err := w.Write(b.Bytes())
	return err
}

func (t *Terminal) screen(agg *aggregate.Aggregator) {
	b := &t.buf
	iv := agg.Interval()
	s := agg.Summary()
	if t.tty {
		b.WriteString(clearScreen)
	} else {
		b.WriteString(strings.Repeat("-", width) + "\n")
	}
	fmt.Fprintf(b, "fragscope  %s  interval %d: %s - %s (%s)\n",
		hostKernel(agg), iv.Seq, clock(iv.Begin), clock(iv.End), iv.Covered)
	writeHookProblems(b, agg)
	t.writeIncidents(t.tty)
	writeStalls(b, agg, iv.End)
	writeDrops(b, &iv.Counts, &s.Counts)
	writeAllocs(b, &iv.Counts, &s.Counts)
	writeFreeMemory(b, agg, &s)
	// On a tty the screen is all there is: always show the newest stack.
	// In a log, show it in the interval it happened in only (a failure in
	// this interval is the newest one).
	writeAllocFailures(b, agg, &s, t.tty || iv.Failures > 0)
	writeSlabs(b, &iv.Counts, &s)
	writeNetns(b, &iv.Counts, &s)
	writeSyscalls(b, &iv.Counts, &s)
	writeTopFragmenters(b, agg, true)
	writeExtfrag(b, &iv.Counts, &s.Counts)
	writeMemStalls(b, agg, true)
}

func writeSummary(b *bytes.Buffer, agg *aggregate.Aggregator) {
	s := agg.Summary()
	fmt.Fprintf(b, "fragscope session summary  %s\n", hostKernel(agg))
	fmt.Fprintf(b, "%s - %s  %d intervals (%s), %d events\n",
		stamp(s.Begin), stamp(s.End), s.Ticks, s.Covered, s.Events)
	writeHookProblems(b, agg)
	writeDrops(b, nil, &s.Counts)
	writeAllocs(b, nil, &s.Counts)
	writeFreeMemory(b, agg, &s)
	writeAllocFailures(b, agg, &s, true)
	writeSlabs(b, nil, &s)
	writeNetns(b, nil, &s)
	writeSyscalls(b, nil, &s)
	writeStalls(b, agg, s.End)
	writeTopFragmenters(b, agg, false)
	writeExtfrag(b, nil, &s.Counts)
	writeMemStalls(b, agg, false)
}

// clock is a time of day in UTC to the millisecond: events of one failure
// are milliseconds apart.
func clock(t time.Time) string { return t.UTC().Format("15:04:05.000") }

// stamp is a full UTC time for the summary, which may be read days later.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000Z") }

func hostKernel(agg *aggregate.Aggregator) string {
	st := agg.Start()
	if st == nil {
		return "(no session metadata)"
	}
	return st.Hostname + "  kernel " + st.KernelRelease
}

func writeStart(b *bytes.Buffer, st *event.Start) {
	fmt.Fprintf(b, "%s fragscope %s on %s, kernel %s, page size %d, pageblock order %d\n",
		clock(st.Time), st.Version, st.Hostname, st.KernelRelease, st.PageSize, st.PageblockOrder)
	for _, h := range st.Hooks {
		if h.Attached {
			fmt.Fprintf(b, "  hook %-14s %s %s\n", h.Hook, h.Mechanism, h.Target)
		} else {
			fmt.Fprintf(b, "  hook %-14s NOT ATTACHED: %s\n", h.Hook, h.Reason)
		}
	}
}

// writeHookProblems names the hooks that did not attach: what they would
// have seen is missing from every count below, and the reader must know.
func writeHookProblems(b *bytes.Buffer, agg *aggregate.Aggregator) {
	st := agg.Start()
	if st == nil {
		return
	}
	for _, h := range st.Hooks {
		if !h.Attached {
			fmt.Fprintf(b, "hook %s not attached (%s): its events are missing\n", h.Hook, h.Reason)
		}
	}
}

// writeNotice is the one line a failure gets as it arrives, in a log.
func writeNotice(b *bytes.Buffer, ev event.Event, agg *aggregate.Aggregator) {
	switch e := ev.(type) {
	case *event.AllocFail:
		wrap(b, clock(e.Time)+" ALLOC FAIL   ", allocFailLine(e, agg))
	case *event.SlabCreate:
		if e.Failed {
			wrap(b, clock(e.Time)+" SLAB FAIL    ", slabFailLine(e))
		}
	case *event.NetnsCreate:
		if e.Errno != 0 {
			wrap(b, clock(e.Time)+" NETNS FAIL   ", netnsFailLine(e))
		}
	case *event.NsSyscall:
		wrap(b, clock(e.Time)+" SYSCALL FAIL ", syscallFailLine(e))
	case *event.Stall:
		writeStallNotice(b, e, agg)
	}
}

func task(t event.Task) string { return fmt.Sprintf("%s[%d]", t.Comm, t.PID) }

func inSyscall(r event.SyscallRef) string {
	if !r.Inside() {
		return ""
	}
	return " in " + r.Syscall
}

func allocFailLine(e *event.AllocFail, agg *aggregate.Aggregator) string {
	// Order, migratetype and gfp first: they say what failed; who asked
	// may wrap onto the next line.
	return fmt.Sprintf("order %d %s %s (%#x) by %s%s", e.Order, agg.MigratetypeName(int(e.Migratetype)),
		agg.FormatGFP(e.GFP), e.GFP, task(e.Task), inSyscall(e.In))
}

func slabFailLine(e *event.SlabCreate) string {
	return fmt.Sprintf("%s kmem_cache_create(%s) size %d failed%s", task(e.Task), e.Name, e.Size, inSyscall(e.In))
}

func netnsFailLine(e *event.NetnsCreate) string {
	return fmt.Sprintf("%s copy_net_ns %s after %s%s", task(e.Task), aggregate.ErrnoName(e.Errno), e.Latency, inSyscall(e.In))
}

func syscallFailLine(e *event.NsSyscall) string {
	ns := aggregate.FormatNamespaces(aggregate.Namespaces(e.Syscall, e.Flags))
	return fmt.Sprintf("%s %s(%s) = %s after %s", task(e.Task), e.Syscall, ns, aggregate.ErrnoName(e.Errno), e.Latency)
}

func cgroup(agg *aggregate.Aggregator, id uint64) string {
	c, ok := agg.Session().Cgroup(id)
	return cgroupLabel(id, c.Path, c.Removed, ok)
}

// cgroupLabel names a cgroup by its last known path, or by id when it was
// never resolved.
func cgroupLabel(id uint64, path string, removed, ok bool) string {
	switch {
	case !ok:
		return fmt.Sprintf("cgroup id %d", id)
	case removed:
		return path + " (removed)"
	}
	return path
}

// writeDrops comes first on the screen: lost events make every event count
// below a lower bound, which changes how the rest is read.
func writeDrops(b *bytes.Buffer, iv, s *aggregate.Counts) {
	switch {
	case iv != nil && iv.Drops > 0:
		fmt.Fprintf(b, "!! %d EVENTS DROPPED in this interval (%d in the session): the ringbuf was full;\n"+
			"!! failure, slab, netns and syscall counts are lower bounds\n", iv.Drops, s.Drops)
	case s.Drops > 0:
		fmt.Fprintf(b, "!! %d EVENTS DROPPED in the session: failure, slab, netns and syscall counts are lower bounds\n", s.Drops)
	}
	writeOverflows(b, s)
}

func orderStat(c *aggregate.Counts, order int) aggregate.OrderStat {
	for _, st := range c.Orders {
		if st.Order == order {
			return st
		}
	}
	return aggregate.OrderStat{Order: order}
}

// writeAllocs lists the orders active in the interval and every order that
// failed in the session, so a failing order stays in sight once it is
// quiet. iv is nil for the session summary.
func writeAllocs(b *bytes.Buffer, iv, s *aggregate.Counts) {
	b.WriteString("\nALLOCATIONS BY ORDER")
	if iv == nil {
		fmt.Fprintf(b, " (session)\n%6s %12s %14s %10s\n", "order", "allocs/s", "allocs", "failures")
		for _, st := range s.Orders {
			fmt.Fprintf(b, "%6d %12.1f %14d %10d\n", st.Order, st.PerSec, st.Allocs, st.Failures)
		}
	} else {
		fmt.Fprintf(b, " (this interval | session)\n%6s %12s %14s %10s | %14s %10s\n",
			"order", "allocs/s", "allocs", "failures", "allocs", "failures")
		for o := range event.Orders {
			cur, all := orderStat(iv, o), orderStat(s, o)
			if cur.Allocs == 0 && cur.Failures == 0 && all.Failures == 0 {
				continue
			}
			fmt.Fprintf(b, "%6d %12.1f %14d %10d | %14d %10d\n", o, cur.PerSec, cur.Allocs, cur.Failures, all.Allocs, all.Failures)
		}
	}
	c := s
	if iv != nil {
		c = iv
	}
	if c.Failures > 0 {
		fmt.Fprintf(b, "failures by gfp class: %s; by migratetype: %s\n",
			namedList(c.FailuresByClass), namedList(c.FailuresByMigratetype))
	}
}

func namedList(s []aggregate.NamedCount) string {
	parts := make([]string, len(s))
	for i, n := range s {
		parts[i] = fmt.Sprintf("%s %d", n.Name, n.Count)
	}
	return strings.Join(parts, ", ")
}

// writeFreeMemory shows the latest free-block table (its verdict row for
// GFP_KERNEL), then answers for each order that failed in the session
// whether that failure's request could be served, from the snapshot taken
// right after a failure when there is one. Both ask internal/allocrule with
// the recording kernel's era and gfp table, as incidents do.
func writeFreeMemory(b *bytes.Buffer, agg *aggregate.Aggregator, s *aggregate.Summary) {
	if s.Snapshot == nil {
		return
	}
	sess := agg.Session()
	var release string
	if st := sess.Start(); st != nil {
		release = st.KernelRelease
	}
	era := allocrule.ParseRelease(release)
	fmt.Fprintf(b, "\nFREE MEMORY (%s snapshot)\n", s.Snapshot.Reason)
	latest := s.Snapshot.Snapshot
	snapshot.WriteText(b, latest, allocrule.Row(latest, "GFP_KERNEL",
		func(o int) allocrule.Request { return allocrule.KernelRequest(o, era) }))

	at := s.FailureSnapshot
	if at == nil {
		at = s.Snapshot
	}
	for _, st := range s.Orders {
		if st.Failures == 0 {
			continue
		}
		// The newest failure of this order names the request; a failure
		// that fell out of the recent ring leaves GFP_KERNEL.
		req := allocrule.KernelRequest(int(st.Order), era)
		for i := range s.Recent.AllocFails {
			if f := &s.Recent.AllocFails[i]; int(f.Order) == int(st.Order) {
				req = allocrule.NewRequest(f.GFP, int(f.Order), sess.GFP(), era)
				req.GFPText = sess.FormatGFP(f.GFP)
				break
			}
		}
		fmt.Fprintf(b, "\nWOULD ORDER %d SUCCEED? (%s snapshot at %s)\n", st.Order, at.Reason, clock(at.Snapshot.Time))
		j := allocrule.Judge(at.Snapshot, req)
		line := fmt.Sprintf("request %s, kernel %s", req.GFPText, era)
		if j.Target != "" {
			line += ", zonelist from " + j.Target + " down"
		}
		wrap(b, "  ", strings.Join(append([]string{line}, append(req.Reasons, j.Reasons...)...), "; "))
		for _, z := range j.Zones {
			if z.Verdict == allocrule.VerdictNone {
				continue
			}
			wrap(b, fmt.Sprintf("  Node %d %-8s %-13s ", z.Node, z.Name, z.Verdict),
				z.Summary+": "+strings.Join(z.Reasons, "; "))
		}
	}
}

// wrap writes prefix and text, breaking text at spaces to fit width and
// indenting continuation lines under the text's start.
func wrap(b *bytes.Buffer, prefix, text string) {
	indent := strings.Repeat(" ", len(prefix))
	line := prefix
	lineHasWord := false
	for _, word := range strings.Fields(text) {
		if lineHasWord && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line, lineHasWord = indent, false
		}
		if lineHasWord {
			line += " "
		}
		line += word
		lineHasWord = true
	}
	b.WriteString(line + "\n")
}

// writeAllocFailures lists the latest allocation failures, newest first;
// with withStack the newest one's kernel stack follows, the way the kernel
// prints a "Call Trace:".
func writeAllocFailures(b *bytes.Buffer, agg *aggregate.Aggregator, s *aggregate.Summary, withStack bool) {
	fails := s.Recent.AllocFails
	if len(fails) == 0 {
		return
	}
	fmt.Fprintf(b, "\nALLOCATION FAILURES (latest %d of %d, newest first)\n", len(fails), s.Failures)
	for i := range fails {
		f := &fails[i]
		wrap(b, clock(f.Time)+" ", allocFailLine(f, agg))
		if i > 0 || !withStack {
			continue
		}
		fmt.Fprintf(b, "  cgroup %s  hook %s\n", cgroup(agg, f.Task.CgroupID), f.Hook)
		if len(f.Stack) == 0 {
			b.WriteString("  (no stack)\n")
			continue
		}
		b.WriteString("  Call Trace:\n")
		for _, fn := range f.Stack {
			fmt.Fprintf(b, "   %s\n", fn)
		}
	}
}

func writeSlabs(b *bytes.Buffer, iv *aggregate.Counts, s *aggregate.Summary) {
	if s.SlabCreates == 0 {
		return
	}
	b.WriteString("\nSLAB CACHE CREATIONS (session")
	if iv != nil {
		fmt.Fprintf(b, "; this interval %d, %d failed", iv.SlabCreates, iv.SlabFailures)
	}
	fmt.Fprintf(b, ")\n  %-40s %8s %7s %6s  %s\n", "group", "creates", "failed", "size", "netns of creators")
	for _, g := range s.Slabs {
		fmt.Fprintf(b, "  %-40s %8d %7d %6d  %s\n", g.Group, g.Creates, g.Failures, g.LastSize, inodes(g.Netns))
	}
	for _, f := range s.Recent.SlabFails {
		wrap(b, "  "+clock(f.Time)+" ", slabFailLine(&f))
	}
}

// inodes lists up to 4 netns inodes: beyond that the count says enough.
func inodes(s []uint32) string {
	const show = 4
	parts := make([]string, 0, show+1)
	for i, ino := range s {
		if i == show {
			parts = append(parts, fmt.Sprintf("+%d more", len(s)-show))
			break
		}
		parts = append(parts, fmt.Sprint(ino))
	}
	return strings.Join(parts, " ")
}

func errnoList(s []aggregate.ErrnoCount) string {
	parts := make([]string, len(s))
	for i, e := range s {
		parts[i] = fmt.Sprintf("%s %d", e.Name, e.Count)
	}
	return strings.Join(parts, ", ")
}

func writeNetns(b *bytes.Buffer, iv *aggregate.Counts, s *aggregate.Summary) {
	n := s.Netns
	if n.Created == 0 && n.Failed == 0 {
		return
	}
	b.WriteString("\nNETNS CREATIONS (copy_net_ns)\n  ")
	if iv != nil {
		fmt.Fprintf(b, "this interval %d created, %d failed; ", iv.Netns.Created, iv.Netns.Failed)
	}
	fmt.Fprintf(b, "session %d created, %d failed", n.Created, n.Failed)
	if n.Failed > 0 {
		fmt.Fprintf(b, " (%s)", errnoList(n.ByErrno))
	}
	b.WriteByte('\n')
	for _, f := range s.Recent.NetnsFails {
		wrap(b, "  "+clock(f.Time)+" ", netnsFailLine(&f))
	}
}

func writeSyscalls(b *bytes.Buffer, iv *aggregate.Counts, s *aggregate.Summary) {
	if s.SyscallFailures == 0 {
		return
	}
	b.WriteString("\nFAILED NAMESPACE SYSCALLS (session")
	if iv != nil {
		fmt.Fprintf(b, "; this interval %d", iv.SyscallFailures)
	}
	b.WriteString(")\n")
	for _, f := range s.Syscalls {
		fmt.Fprintf(b, "  %-8s %-12s %6d  %s\n", f.Syscall, f.ErrnoName, f.Count, f.NamespaceNames)
	}
	for _, f := range s.Recent.NsSyscalls {
		wrap(b, "  "+clock(f.Time)+" ", syscallFailLine(&f))
	}
}

// writeExtfrag shows who has been mixing migratetypes inside pageblocks:
// the slow cause of the fragmentation that a failure reveals.
func writeExtfrag(b *bytes.Buffer, iv, s *aggregate.Counts) {
	x := s.Extfrag
	if x.Events == 0 {
		return
	}
	b.WriteString("\nEXTFRAG FALLBACKS: ")
	if iv != nil {
		fmt.Fprintf(b, "this interval %d (%d fragmenting); ", iv.Extfrag.Events, iv.Extfrag.Fragmenting)
	}
	fmt.Fprintf(b, "session %d (%d fragmenting)\n", x.Events, x.Fragmenting)
	b.WriteString("  (fragmenting: the fallback took part of a pageblock of another migratetype)\n")
	fmt.Fprintf(b, "  %10s %12s  session, by migratetype (request <- fallback)\n", "events", "fragmenting")
	for _, p := range x.ByMigratetype[:min(topN, len(x.ByMigratetype))] {
		fmt.Fprintf(b, "  %10d %12d  %s <- %s\n", p.Events, p.Fragmenting, p.Alloc, p.Fallback)
	}
	fmt.Fprintf(b, "  %10s %12s  session, by cgroup\n", "events", "fragmenting")
	for _, c := range x.ByCgroup[:min(topN, len(x.ByCgroup))] {
		label := cgroupLabel(c.ID, shortenPath(c.Path, width-len("  1234567890 123456789012  ")-len(" (removed)")), c.Removed, c.Path != "")
		fmt.Fprintf(b, "  %10d %12d  %s\n", c.Events, c.Fragmenting, label)
	}
}
