package report

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/fragscope/fragscope/internal/aggregate"
	"github.com/fragscope/fragscope/internal/event"
	"github.com/fragscope/fragscope/internal/incident"
	"github.com/fragscope/fragscope/internal/snapshot"
)

//go:embed report.html.tmpl
var pageTemplate string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"clock": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000Z") },
	"join":  strings.Join,
}).Parse(pageTemplate))

// pageData is what the template shows; every field is computed here so
// the template only lays it out.
type pageData struct {
	CSP          string
	Title, Input string
	Host, Kernel string
	Version      string
	First, Last  time.Time
	Span         time.Duration
	Events       uint64
	Width        time.Duration // column width of the charts over time

	Verdict []string
	Causes  []namedInt

	Cards        []card
	Listed       []listedIncident
	MoreListed   int
	CardsOmitted int

	Heatmaps []*chart
	Frag     []*chart
	Rates    []*chart
	Extfrag  *chart
	Top      *chart
	TopRows  []aggregate.CgroupRank
	Stalls   *chart
	Drops    *chart
	DropNote string
	Hooks    []event.HookStatus
	Reports  []kernelReport
	Notes    []string
}

type namedInt struct {
	Name  string
	Count int
}

type card struct {
	N         int
	Headline  string
	Cause     string
	Time      time.Time
	Task      string
	Container string
	Memcg     string // the memory cgroup chain read for the failure, when it was
	Chain     string
	Allocs    []string
	Stack     string
	Slabs     []string
	Kernel    []string
	Memory    *memTable
	Picture   *chart
	Reasons   []string
	Advice    []string
	Top       []string
}

type memTable struct {
	Caption string
	Orders  []int
	Failed  int
	Rows    []memRow
	Frag    bool // FragIndex column present
}

type memRow struct {
	Zone     string
	Cells    []memCell
	FreeKB   uint64
	MinKB    string
	LowKB    string
	Largest  int
	FragIdx  string
	Verdict  string
	Eligible bool
}

type memCell struct {
	N     uint64
	Style template.CSS
}

type kernelReport struct {
	Time   time.Time
	Kind   string
	Header string
	Lines  string
}

// WriteHTML writes the report. Call it after the pipeline has run (Close).
func (r *Report) WriteHTML(w io.Writer) error {
	d, err := r.pageData()
	if err != nil {
		return err
	}
	return page.Execute(w, d)
}

func (r *Report) pageData() (*pageData, error) {
	d := &pageData{CSP: ContentSecurityPolicy, Title: r.opt.Title, Input: r.opt.Input, First: r.first, Last: r.last,
		Span: r.last.Sub(r.first), Events: r.summary.Events, Width: r.tl.width,
		Hooks: r.hooks, Listed: r.listed, Reports: r.reports}
	if st := r.start; st != nil {
		d.Host, d.Kernel, d.Version = st.Hostname, st.KernelRelease, st.Version
	}
	if r.incidents > len(r.listed) {
		d.MoreListed = r.incidents - len(r.listed)
	}
	d.Verdict, d.Causes = r.verdict()
	kept := r.keptIncidents()
	d.CardsOmitted = r.incidents - len(kept)
	for i, inc := range kept {
		c, err := r.card(i+1, inc)
		if err != nil {
			return nil, err
		}
		d.Cards = append(d.Cards, c)
	}
	if err := r.overTime(d); err != nil {
		return nil, err
	}
	return d, nil
}

// verdict is the report's first lines: what happened, in words.
func (r *Report) verdict() ([]string, []namedInt) {
	var out []string
	var causes []namedInt
	for c, n := range r.byCause {
		causes = append(causes, namedInt{string(c), n})
	}
	sort.Slice(causes, func(i, j int) bool {
		if causes[i].Count != causes[j].Count {
			return causes[i].Count > causes[j].Count
		}
		return causes[i].Name < causes[j].Name
	})
	if r.incidents > 0 {
		parts := make([]string, len(causes))
		for i, c := range causes {
			parts[i] = fmt.Sprintf("%d %s", c.Count, c.Name)
		}
		out = append(out, fmt.Sprintf("%d %s: %s.", r.incidents, plural(r.incidents, "incident"), strings.Join(parts, ", ")))
		kept := r.keptIncidents()
		out = append(out, "Latest: "+incident.Headline(kept[len(kept)-1])+".")
	}
	var failed []string
	var total uint64
	for o, n := range r.failedOrders {
		if n > 0 {
			failed = append(failed, fmt.Sprintf("order %d: %d", o, n))
			total += n
		}
	}
	if total > 0 {
		out = append(out, fmt.Sprintf("%d failed page %s (%s).", total, plural(int(total), "allocation"), strings.Join(failed, ", ")))
	}
	if sf := r.summary.SyscallFailures; sf > 0 {
		out = append(out, fmt.Sprintf("%d failed namespace %s or forks.", sf, plural(int(sf), "syscall")))
	}
	if len(out) == 0 {
		out = append(out, "No failed allocation, no failed namespace syscall and no incident in this "+r.opt.Input+".")
	}
	if r.opt.Input == InputKernelLog && len(r.reports) == 0 {
		out = append(out, "No kernel report (page allocation failure, OOM, slab or vmalloc failure, Mem-Info) was found in this log.")
	}
	// A kernel log's last snapshot is its last report's Mem-Info, which
	// the cards show: "at the end" says something only of a recording.
	if s := r.summary.Snapshot; s != nil && s.Snapshot != nil && r.opt.Input != InputKernelLog {
		var zs []string
		for i := range s.Snapshot.Zones {
			z := &s.Snapshot.Zones[i]
			if z.Empty() && z.Managed == 0 {
				continue
			}
			zs = append(zs, fmt.Sprintf("%s largest free order %d", z.Name, z.LargestFreeOrder()))
		}
		if len(zs) > 0 {
			out = append(out, fmt.Sprintf("At the end (%s): %s.", s.Snapshot.Time.UTC().Format("15:04:05"), strings.Join(zs, ", ")))
		}
	}
	if r.summary.Drops > 0 {
		out = append(out, fmt.Sprintf("%d events were lost to a full ring buffer: event counts are lower bounds.", r.summary.Drops))
	}
	return out, causes
}

func plural(n int, s string) string {
	if n == 1 {
		return s
	}
	return s + "s"
}

func (r *Report) card(n int, inc *incident.Incident) (card, error) {
	c := card{N: n, Headline: incident.Headline(inc), Cause: string(inc.Verdict.Cause), Time: inc.Time,
		Reasons: inc.Verdict.Reasons, Advice: inc.NextSteps}
	t := inc.Task
	c.Task = fmt.Sprintf("%s pid %d tid %d, cgroup %d", t.Comm, t.PID, t.TID, t.CgroupID)
	if t.CgroupPath != "" {
		c.Task += " " + t.CgroupPath
	}
	if t.Container != nil {
		c.Container = strings.TrimPrefix(incident.ContainerLine(t.Container), "container: ")
	} else {
		c.Container = "not in a container (no runtime or pod in its cgroup path)"
	}
	if f := inc.Memcg; f != nil {
		c.Memcg = fmt.Sprintf("v%d: %s", f.Version, incident.MemcgLine(f))
	}
	c.Chain = strings.Join(inc.Chain, " → ")
	if c.Chain == "" {
		c.Chain = "not known"
	}
	page := uint64(4096)
	if inc.Memory != nil && inc.Memory.PageSize != 0 {
		page = uint64(inc.Memory.PageSize)
	}
	for _, a := range inc.Allocs {
		tag := ""
		if len(inc.Allocs) > 1 && a.Primary {
			tag = " (the one the verdict is about)"
		}
		c.Allocs = append(c.Allocs, fmt.Sprintf("order %d (%d kB contiguous), gfp %#x %s, %s, hook %s%s",
			a.Order, (page<<a.Order)/1024, a.GFP, a.GFPText, a.MigratetypeName, a.Hook, tag))
		if a.Primary || (c.Stack == "" && len(a.Stack) > 0) {
			c.Stack = strings.Join(a.Stack, "\n")
		}
	}
	if len(c.Allocs) == 0 {
		c.Allocs = []string{"no page allocation failed inside the call"}
	}
	if c.Stack == "" {
		c.Stack = "no kernel stack recorded"
	}
	for _, s := range inc.Slabs {
		c.Slabs = append(c.Slabs, fmt.Sprintf("slab cache %s (%s) could not be created", s.Name, s.Group))
	}
	for _, ns := range inc.Netns {
		c.Slabs = append(c.Slabs, "copy_net_ns failed with "+ns.ErrnoName)
	}
	if k := inc.Kernel; k != nil {
		for _, rep := range k.Reports {
			line := fmt.Sprintf("%s, %s lines %d-%d: %s", rep.Kind, k.Source, rep.FirstLine, rep.LastLine, rep.Header)
			if len(rep.Unreadable) > 0 {
				line += " (unreadable: " + strings.Join(rep.Unreadable, "; ") + ")"
			}
			c.Kernel = append(c.Kernel, line)
		}
		if len(k.Paths) > 0 {
			c.Kernel = append(c.Kernel, "code paths: "+strings.Join(k.Paths, ", "))
		}
		if k.Fallback != "" {
			c.Kernel = append(c.Kernel, "the caller's fallback: "+k.Fallback)
		}
	}
	for _, cg := range inc.Top.Cgroups {
		path := cg.Path
		if path == "" {
			path = fmt.Sprintf("cgroup %d (path unknown)", cg.ID)
		}
		c.Top = append(c.Top, fmt.Sprintf("%d fragmenting fallbacks: %s", cg.Fragmenting, path))
	}
	if m := inc.Memory; m != nil {
		c.Memory = memoryTable(m)
		pic := &chart{ID: fmt.Sprintf("zones-%d", n), Title: "Free memory by block size at " + m.Time.UTC().Format("15:04:05.000")}
		var zf []zoneFree
		orders := len(c.Memory.Orders)
		for _, z := range m.Zones {
			if z.FreeKB == 0 && allZero(z.FreeBlocks) {
				continue
			}
			kb := make([]float64, len(z.FreeBlocks))
			for o, b := range z.FreeBlocks {
				kb[o] = float64(b<<o) * float64(page) / 1024
			}
			zf = append(zf, zoneFree{name: fmt.Sprintf("node %d %s", z.Node, z.Name), kB: kb})
		}
		if err := zoneBars(pic, zf, orders, m.Order); err != nil {
			return c, err
		}
		if pic.SVG != "" {
			if m.Order >= 0 {
				pic.Note = fmt.Sprintf("* order %d, the one that failed", m.Order)
			}
			c.Picture = pic
		}
	}
	return c, nil
}

func allZero(v []uint64) bool {
	for _, n := range v {
		if n != 0 {
			return false
		}
	}
	return true
}

// memoryTable is the zone table of a card: free blocks by order, coloured
// like the heatmaps, with the watermarks and the verdict at the failing
// order.
func memoryTable(m *incident.Memory) *memTable {
	t := &memTable{Failed: m.Order}
	t.Caption = fmt.Sprintf("Free blocks by order at %s (%s snapshot)", m.Time.UTC().Format("2006-01-02 15:04:05.000Z"), m.Reason)
	orders := 0
	var top uint64
	for _, z := range m.Zones {
		orders = max(orders, len(z.FreeBlocks))
		for _, n := range z.FreeBlocks {
			top = max(top, n)
		}
	}
	for o := range orders {
		t.Orders = append(t.Orders, o)
	}
	t.Frag = m.Order >= 0 && m.Order < orders
	for _, z := range m.Zones {
		row := memRow{Zone: fmt.Sprintf("node %d %s", z.Node, z.Name), FreeKB: z.FreeKB, Largest: z.LargestFreeOrder,
			Verdict: z.Verdict, Eligible: z.Eligible, MinKB: "?", LowKB: "?"}
		if z.HaveWatermarks {
			row.MinKB, row.LowKB = fmt.Sprint(z.MinKB), fmt.Sprint(z.LowKB)
		}
		if row.Verdict == "" {
			row.Verdict = "not eligible"
		}
		if m.Order < 0 {
			row.Verdict = ""
		}
		for o := range orders {
			var n uint64
			if o < len(z.FreeBlocks) {
				n = z.FreeBlocks[o]
			}
			row.Cells = append(row.Cells, memCell{N: n, Style: heatCSS(n, top)})
		}
		if t.Frag && m.Order < len(z.FragIndex) {
			row.FragIdx = snapshot.FormatIndex(z.FragIndex[m.Order])
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// heatCSS colours a free-block count as the heatmaps do.
func heatCSS(n, top uint64) template.CSS {
	if n == 0 {
		return template.CSS("background:" + emptyC + ";color:#fff")
	}
	cols := heatPalette.Colors()
	f := math.Log10(1+float64(n)) / math.Max(math.Log10(1+float64(top)), 1e-9)
	i := min(int(f*float64(len(cols)-1)+0.5), len(cols)-1)
	fg := "#000"
	if i >= len(cols)/2 {
		fg = "#fff"
	}
	return template.CSS("background:" + hexColor(cols[i]) + ";color:" + fg)
}

// overTime draws the charts over the recording's time.
func (r *Report) overTime(d *pageData) error {
	if len(r.tl.cells) < 2 {
		d.Notes = append(d.Notes, "The input covers less than one chart column: nothing to draw over time.")
		return nil
	}
	if r.opt.Input == InputKernelLog {
		// A log's snapshots are its reports' Mem-Info dumps, minutes or
		// days apart: each is drawn in its card, not stretched over time.
		d.Notes = append(d.Notes, "A kernel log has one free-memory picture per report: each is in its incident card above.")
	}
	for zi := range r.zones {
		if r.opt.Input == InputKernelLog {
			break
		}
		ch, err := r.heatmap(zi)
		if err != nil {
			return err
		}
		if ch.SVG != "" {
			d.Heatmaps = append(d.Heatmaps, ch)
		}
	}
	var failed []int
	for o, n := range r.failedOrders {
		if n > 0 && o < r.orders {
			failed = append(failed, o)
		}
	}
	if len(failed) > 0 && r.opt.Input != InputKernelLog {
		for zi, k := range r.zones {
			ch := &chart{ID: fmt.Sprintf("fragindex-%d-%s", k.node, k.name),
				Title: fmt.Sprintf("Fragmentation index at the failing orders, %s", k),
				Note:  "near 1: memory free but in pieces (compaction could help); near 0: not enough free; below 0: a block that size is free"}
			var specs []lineSpec
			for _, o := range failed {
				specs = append(specs, lineSpec{fmt.Sprintf("order %d", o), func(c *cell) (float64, bool) {
					if zi >= len(c.zones) || !c.zones[zi].have {
						return 0, false
					}
					return float64(c.zones[zi].frag[o]) / 1000, true
				}})
			}
			if err := r.lines(ch, "fragmentation index", specs, false); err != nil {
				return err
			}
			if ch.SVG != "" {
				d.Frag = append(d.Frag, ch)
			}
		}
	}

	var allocOrders []int
	for _, o := range r.summary.Orders {
		if o.Allocs > 0 && o.Order < event.Orders {
			allocOrders = append(allocOrders, o.Order)
		}
	}
	rate := &chart{ID: "alloc-rates", Title: "Page allocations per second by order",
		Note: fmt.Sprintf("counted in the kernel; log scale, zero drawn at %g", logFloor)}
	var specs []lineSpec
	for _, o := range allocOrders {
		specs = append(specs, lineSpec{fmt.Sprintf("order %d", o), func(c *cell) (float64, bool) {
			if c.covered <= 0 {
				return 0, false
			}
			return float64(c.allocs[o]) / c.covered.Seconds(), true
		}})
	}
	if err := r.lines(rate, "allocations/s", specs, true); err != nil {
		return err
	}
	if rate.SVG != "" {
		d.Rates = append(d.Rates, rate)
	}
	if len(failed) > 0 {
		fch := &chart{ID: "failure-rates", Title: "Failed page allocations by order",
			Note: fmt.Sprintf("failures in each column of %s", r.tl.width)}
		specs = specs[:0]
		for _, o := range failed {
			specs = append(specs, lineSpec{fmt.Sprintf("order %d", o), func(c *cell) (float64, bool) {
				return float64(c.fails[o]), true
			}})
		}
		if err := r.lines(fch, "failures", specs, false); err != nil {
			return err
		}
		if fch.SVG != "" {
			d.Rates = append(d.Rates, fch)
		}
	}

	if r.summary.Extfrag.Events > 0 {
		ch := &chart{ID: "extfrag", Title: "Extfrag fallbacks per second",
			Note: "fragmenting: took part of a block smaller than a pageblock, mixing migratetypes inside it"}
		perSec := func(f func(c *cell) uint64) func(c *cell) (float64, bool) {
			return func(c *cell) (float64, bool) {
				if c.covered <= 0 {
					return 0, false
				}
				return float64(f(c)) / c.covered.Seconds(), true
			}
		}
		err := r.lines(ch, "fallbacks/s", []lineSpec{
			{"fragmenting", perSec(func(c *cell) uint64 { return c.fragmenting })},
			{"not fragmenting", perSec(func(c *cell) uint64 { return c.extfrag - c.fragmenting })},
		}, false)
		if err != nil {
			return err
		}
		if ch.SVG != "" {
			d.Extfrag = ch
		}
	}

	for _, row := range r.top {
		if row.Fragmenting > 0 || row.UnmovableHighOrder > 0 || row.Failures > 0 {
			d.TopRows = append(d.TopRows, row)
		}
	}
	var labels []string
	var values []float64
	for _, row := range d.TopRows {
		if row.Fragmenting == 0 {
			continue
		}
		labels = append(labels, shortLabel(cgroupLabel(row.CgroupStat), 60))
		values = append(values, float64(row.Fragmenting))
	}
	top := &chart{ID: "top-cgroups", Title: "Cgroups causing the most fragmenting fallbacks"}
	if err := bars(top, "fragmenting fallbacks", labels, values, "fragmenting fallbacks, whole "+r.opt.Input); err != nil {
		return err
	}
	if top.SVG != "" {
		d.Top = top
	}

	stall := &chart{ID: "stalls", Title: "Time spent in watched calls",
		Note: "the longest call of each kind in each column; compaction and reclaim stalls join here when the trace carries them"}
	specs = specs[:0]
	for k, name := range stallKinds {
		specs = append(specs, lineSpec{name, func(c *cell) (float64, bool) {
			if k >= len(c.stalls) || c.stalls[k] == 0 {
				return 0, false
			}
			return float64(c.stalls[k]) / float64(time.Millisecond), true
		}})
	}
	if err := r.lines(stall, "milliseconds", specs, true); err != nil {
		return err
	}
	if stall.SVG != "" {
		d.Stalls = stall
	}

	if r.summary.Drops > 0 || r.summary.Extfrag.Overflow > 0 || r.summary.CgroupOverflow > 0 {
		ch := &chart{ID: "drops", Title: "Events lost"}
		err := r.lines(ch, "per column", []lineSpec{
			{"ringbuf drops", func(c *cell) (float64, bool) { return float64(c.drops), c.covered > 0 }},
			{"map overflows (extfrag keys, cgroup allocations)", func(c *cell) (float64, bool) { return float64(c.lost), c.covered > 0 }},
		}, false)
		if err != nil {
			return err
		}
		if ch.SVG != "" {
			d.Drops = ch
		}
	}
	d.DropNote = fmt.Sprintf("%d ringbuf drops, %d extfrag keys and %d cgroup allocations not attributed (maps full).",
		r.summary.Drops, r.summary.Extfrag.Overflow, r.summary.CgroupOverflow)
	return nil
}

func cgroupLabel(s aggregate.CgroupStat) string {
	switch {
	case s.PodName != "":
		return "pod " + s.PodNamespace + "/" + s.PodName
	case s.Container.ContainerID != "":
		id := s.Container.ContainerID
		if len(id) > 12 {
			id = id[:12]
		}
		return s.Container.Runtime + " " + id
	}
	return s.Label()
}

// shortLabel keeps the end of a long path: the leaf names the container.
func shortLabel(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n+1:]
}
