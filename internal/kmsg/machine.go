package kmsg

import (
	"fmt"
	"sort"
	"strings"
)

// phase is how far an open report has got: frames are taken only before
// its Mem-Info, so a later WARN's stack is not read into it.
type phase uint8

const (
	phaseHeader phase = iota
	phaseTrace
	phaseMemInfo
)

// machine assembles reports from message lines.
type machine struct {
	opts Options
	emit func(Report)

	open  *Report
	phase phase
	gap   int // consecutive lines since the open report last took one
	// held are complete one-line reports printed while open was still open;
	// they are emitted after it, in input order.
	held []Report

	// hdr is set while the header may continue on the next lines (wrapped
	// before "order:" or inside the flag names); names while inside "(...)".
	hdr   int
	names bool
	// glue holds a line that ended inside "page allocation" ("... page
	// allocation" / "failure: order:..."), joined with the next line.
	glue string
	// release is set when the "CPU:" line ended before the kernel release.
	release bool

	mem memState
	// elided are elision marks seen since the open report last took a line.
	elided []string
}

func (m *machine) init(opts Options, emit func(Report)) {
	m.opts = opts
	m.emit = emit
}

func (m *machine) flush() {
	m.close()
	m.glue = ""
}

// note records an unreadable part of the open report.
func (m *machine) note(n int, format string, args ...any) {
	if m.open == nil {
		return
	}
	m.flushElided()
	m.open.Unreadable = append(m.open.Unreadable, fmt.Sprintf("line %d: ", n)+fmt.Sprintf(format, args...))
}

// flushElided tells the open report of the elisions inside it.
func (m *machine) flushElided() {
	if m.open != nil && len(m.elided) > 0 {
		m.open.Unreadable = append(m.open.Unreadable, m.elided...)
	}
	m.elided = m.elided[:0]
}

// start closes the open report and opens r.
func (m *machine) start(r *Report, l msgLine) {
	m.close()
	r.Time = l.ts
	r.Lines = LineRange{First: l.n, Last: l.n}
	r.Order = -1 // until the header says
	if r.Task.PID == 0 {
		r.Task.PID, r.Task.CPU = -1, -1
	}
	m.open = r
	m.elided = m.elided[:0]
	m.phase = phaseHeader
	m.gap = 0
	m.mem = memState{}
}

// minor emits a one-line report, after the open one if there is one.
func (m *machine) minor(r Report, l msgLine) {
	r.Time = l.ts
	r.Lines = LineRange{First: l.n, Last: l.n}
	if r.Task.PID == 0 {
		r.Task.PID, r.Task.CPU = -1, -1
	}
	if r.Order == 0 {
		r.Order = -1
	}
	if m.open != nil {
		m.held = append(m.held, r)
		return
	}
	m.emit(r)
}

func (m *machine) close() {
	if m.open != nil {
		m.endMem()
		r := m.open
		m.open = nil
		m.hdr, m.names, m.release = 0, false, false
		m.emit(*r)
	}
	if len(m.held) > 0 {
		sort.SliceStable(m.held, func(i, j int) bool { return m.held[i].Lines.First < m.held[j].Lines.First })
		for _, r := range m.held {
			m.emit(r)
		}
		m.held = m.held[:0]
	}
}

// line takes one message line.
func (m *machine) line(l msgLine) {
	t := strings.TrimSpace(l.text)
	if m.glue != "" {
		if strings.HasPrefix(t, "failure") || strings.HasPrefix(t, "stalls") {
			t = m.glue + " " + t
		}
		m.glue = ""
	}
	if t == "" {
		m.idle()
		return
	}
	if m.header(l, t) {
		return
	}
	if m.open != nil && m.body(l, t) {
		if m.open != nil { // the kill line closes an OOM report
			m.open.Lines.Last = l.n
		}
		m.flushElided()
		m.gap = 0
		return
	}
	if (m.open == nil || !memKind(m.open.Kind)) && m.orphanMem(l, t) {
		return
	}
	if strings.HasSuffix(t, "page allocation") {
		m.glue = t
	}
	m.idle()
}

// idle counts a line the open report did not take.
func (m *machine) idle() {
	if m.open == nil {
		return
	}
	m.gap++
	if m.hdr > 0 {
		m.hdr--
	}
	if m.gap > m.opts.maxGap() {
		m.close()
	}
}

// orphanMem starts a KindMemInfo report at a Mem-Info dump that has no
// header in the input (an excerpt, SysRq-m).
func (m *machine) orphanMem(l msgLine, t string) bool {
	if !isMemInfoStart(t) && !looksZoneStats(t) && !looksFreeList(t) {
		return false
	}
	m.start(&Report{Kind: KindMemInfo, Header: t}, l)
	if !m.body(l, t) {
		m.note(l.n, "unreadable Mem-Info line %q", clip(t))
	}
	return true
}

func isMemInfoStart(t string) bool {
	return t == "Mem-Info:" || t == "Mem-info:" || strings.HasSuffix(t, "Mem-Info:") && len(t) < 40
}

// body offers a line to the open report; it returns whether the line was
// the report's.
func (m *machine) body(l msgLine, t string) bool {
	r := m.open
	if m.hdr > 0 {
		if m.headerMore(l, t) {
			return true
		}
		m.hdr, m.names = 0, false
	}
	if m.release && m.releaseMore(t) {
		return true
	}
	switch {
	case strings.HasPrefix(t, "CPU: ") || strings.HasPrefix(t, "Pid: "):
		if r.Kernel.Release != "" || r.Task.PID >= 0 && m.phase > phaseHeader {
			return false // a second dump_stack: someone else's
		}
		m.taskLine(l, t)
		return true
	case strings.HasPrefix(t, "Hardware name: "):
		if r.Kernel.Hardware == "" {
			r.Kernel.Hardware = strings.TrimPrefix(t, "Hardware name: ")
		}
		return true
	case t == "Call Trace:" || t == "Call trace:" || t == "Backtrace:" || t == "Stack:" && m.phase < phaseMemInfo:
		if m.phase < phaseTrace {
			m.phase = phaseTrace
		}
		return true
	}
	if isElision(t) {
		// Said only if the report goes on after it: an elision after the
		// report's end is the writer's, not a hole in it.
		m.elided = append(m.elided, fmt.Sprintf("line %d: elided (%s)", l.n, clip(t)))
		return false
	}
	if m.phase < phaseMemInfo {
		if f, ok := parseFrame(t); ok {
			r.Trace = append(r.Trace, f)
			return true
		}
		if isTraceNoise(t) {
			return true
		}
	}
	switch r.Kind {
	case KindOOM:
		if m.oomLine(l, t) {
			return true
		}
	case KindSLUBAllocFailure, KindSLABAllocFailure:
		if m.slabAllocLine(l, t) {
			return true
		}
	case KindSlabCreateFailure:
		return false
	}
	return m.memLine(l, t)
}

// isElision matches the marks people leave where they cut a log.
func isElision(t string) bool {
	switch strings.ToLower(strings.Trim(t, " \t")) {
	case "...", "[...]", "(...)", "…", "[…]", "<snip>", "[snip]", "(snip)", "(snipped)", "[snipped]", "<snipped>", "snip", "...snip...", "[ ... ]", "--snip--", "-- snip --", "<...>":
		return true
	}
	return false
}

// isTraceNoise matches what dump_stack prints around the frames: stack
// hex words (3.x), "<IRQ>"/"<TASK>" markers, register dumps, "Code:".
func isTraceNoise(t string) bool {
	if t[0] == '<' && t[len(t)-1] == '>' && len(t) < 12 || t == "[<" || strings.Trim(t, "=") == "" {
		return true // markers, a frame wrapped after "[<", 2.6's "=====" end
	}
	for _, p := range []string{"RIP: ", "RSP: ", "Code: ", "Workqueue: ", "task: ", "Modules linked in:", "Tainted: ", "Stack:", "Exception stack", "pc : ", "lr : ", "sp : ", "---[ end trace"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	if len(t) > 4 && t[0] == 'R' && t[3] == ':' || len(t) > 4 && t[2] == ':' && t[0] >= 'A' && t[0] <= 'Z' && t[1] >= 'A' && t[1] <= 'Z' {
		return true // RAX: R10: FS: CS: registers
	}
	// "000000000010c0d0 000000006565c63b ffff8803f7f8b928 ffffffff81685fac"
	hex := 0
	for _, w := range strings.Fields(t) {
		if len(w) < 8 || !allHex(w) {
			return false
		}
		hex++
	}
	return hex > 0
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// clip shortens a line quoted in an Unreadable entry.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
